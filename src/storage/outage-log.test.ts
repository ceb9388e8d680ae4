import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { createLogger } from '../log.js';
import { createOutageLog } from './outage-log.js';

function setUp() {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
  let nowMs = 1_000_000;
  const outage = createOutageLog({ log, backend: 'MySQL', now: () => nowMs, summaryEveryMs: 10_000 });
  const refused = new AppError('backend_unavailable', 'MySQL unavailable', {
    cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' }),
  });
  const advance = (ms: number) => {
    nowMs += ms;
  };
  return { lines, outage, refused, advance };
}

describe('createOutageLog', () => {
  it('logs the start once with the cause, a summary at most every interval, and the recovery once', () => {
    const { lines, outage, refused, advance } = setUp();
    outage.noteSuccess();
    expect(lines).toEqual([]);

    // 340 failures a second for 25 s.
    for (let tick = 0; tick < 25 * 340; tick += 1) {
      outage.noteFailure(refused);
      advance(1000 / 340);
    }
    outage.noteSuccess();
    outage.noteSuccess();

    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [50, 'MySQL unavailable'],
      [40, 'MySQL still unavailable'],
      [40, 'MySQL still unavailable'],
      [30, 'MySQL available again'],
    ]);
    expect(lines[0]).toMatchObject({ cause: { message: 'connect ECONNREFUSED 127.0.0.1:3306', code: 'ECONNREFUSED' } });
    expect(JSON.stringify(lines)).not.toContain('stack');
    expect(lines[1]).toMatchObject({ failedQueries: expect.any(Number), outageSeconds: 10 });
    expect(lines[1]?.failedQueries as number).toBeGreaterThan(3000);
    expect(lines[3]).toMatchObject({ failedQueries: 25 * 340, outageSeconds: 25 });
  });

  it('starts afresh after a recovery: a second outage is logged as one again', () => {
    const { lines, outage, refused } = setUp();
    outage.noteFailure(refused);
    outage.noteSuccess();
    outage.noteFailure(refused);
    outage.noteFailure(refused);
    outage.noteSuccess();
    expect(lines.map((line) => line.msg)).toEqual([
      'MySQL unavailable',
      'MySQL available again',
      'MySQL unavailable',
      'MySQL available again',
    ]);
    expect(lines[3]).toMatchObject({ failedQueries: 2 });
  });
});
