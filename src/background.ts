// Work that outlives the request that started it (a sync run the caller did not wait for).
// Shutting down aborts it and waits for it, so it ends its own way (a sync run records how it
// ended) before the pools it uses are closed.
import type { Logger } from './log.js';

export interface BackgroundWork {
  /** Aborted when postern shuts down; pass it to the work. */
  readonly signal: AbortSignal;
  /** Keeps `work` until it settles; a rejection is logged, never left unhandled. */
  track(work: Promise<unknown>, what: string): void;
  /** Aborts the signal and waits for the tracked work, at most `timeoutMs`; false if it outlasted that. */
  stop(timeoutMs: number): Promise<boolean>;
}

export function createBackgroundWork(log: Logger): BackgroundWork {
  const controller = new AbortController();
  const running = new Set<Promise<unknown>>();
  return {
    signal: controller.signal,
    track(work, what) {
      const settled = work
        .catch((error: unknown) => log.error({ err: error, work: what }, 'background work failed'))
        .finally(() => running.delete(settled));
      running.add(settled);
    },
    async stop(timeoutMs) {
      controller.abort(new Error('postern is shutting down'));
      if (running.size === 0) return true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          log.warn({ pending: running.size }, 'background work still running at shutdown');
          resolve(false);
        }, timeoutMs);
      });
      const finished = await Promise.race([Promise.allSettled([...running]).then(() => true), timeout]);
      clearTimeout(timer);
      return finished;
    },
  };
}
