// How a backend's outage shows in the log: one error when it starts, a summary at most every
// summaryEveryMs while it lasts, one line when the backend answers again. Requests that fail
// meanwhile add to the count, not to the log (at 340 req/s a line each is megabytes a minute).
import type { Logger } from '../log.js';

export interface OutageLog {
  /** A query failed because the backend is away (never for SQL errors or conflicts). */
  noteFailure(cause: unknown): void;
  /** A query succeeded; cheap when nothing was wrong (called on every query). */
  noteSuccess(): void;
}

const SUMMARY_EVERY_MS = 10_000;

export function createOutageLog(options: {
  log: Logger;
  /** Named in the lines, e.g. "MySQL". */
  backend: string;
  now?: () => number;
  summaryEveryMs?: number;
}): OutageLog {
  const { log, backend } = options;
  const now = options.now ?? Date.now;
  const summaryEveryMs = options.summaryEveryMs ?? SUMMARY_EVERY_MS;
  let isDown = false;
  let downSinceMs = 0;
  let failedQueries = 0;
  let lastSummaryMs = 0;
  let failedSinceSummary = 0;

  const outageSeconds = (atMs: number) => Math.round((atMs - downSinceMs) / 100) / 10;

  return {
    noteFailure(cause) {
      const atMs = now();
      if (!isDown) {
        isDown = true;
        downSinceMs = atMs;
        lastSummaryMs = atMs;
        failedQueries = 1;
        failedSinceSummary = 0;
        // The cause's message and code say what is wrong; its stack (the driver's socket code) does not.
        log.error({ cause: describe(cause) }, `${backend} unavailable`);
        return;
      }
      failedQueries += 1;
      failedSinceSummary += 1;
      if (atMs - lastSummaryMs >= summaryEveryMs) {
        log.warn(
          { failedQueries: failedSinceSummary, outageSeconds: outageSeconds(atMs), cause: describe(cause) },
          `${backend} still unavailable`,
        );
        lastSummaryMs = atMs;
        failedSinceSummary = 0;
      }
    },
    noteSuccess() {
      if (!isDown) return;
      isDown = false;
      log.info({ failedQueries, outageSeconds: outageSeconds(now()) }, `${backend} available again`);
    },
  };
}

/** Message and code of the underlying error (an AppError's cause), never a stack. */
function describe(error: unknown): { message: string; code?: string } {
  const inner = error instanceof Error && error.cause !== undefined ? error.cause : error;
  if (!(inner instanceof Error)) return { message: String(inner) };
  const code = (inner as { code?: unknown }).code;
  return { message: inner.message, ...(typeof code === 'string' ? { code } : {}) };
}
