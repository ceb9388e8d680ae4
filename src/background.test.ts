import { describe, expect, it } from 'vitest';
import { createBackgroundWork } from './background.js';
import { createLogger } from './log.js';

describe('createBackgroundWork', () => {
  it('aborts its signal at stop and waits for tracked work to finish', async () => {
    const background = createBackgroundWork(createLogger('silent'));
    let finished = false;
    background.track(
      new Promise<void>((resolve) => {
        background.signal.addEventListener('abort', () =>
          setTimeout(() => {
            finished = true;
            resolve();
          }, 20),
        );
      }),
      'test',
    );
    expect(background.signal.aborted).toBe(false);
    expect(await background.stop(5_000)).toBe(true);
    expect(background.signal.aborted).toBe(true);
    expect(finished).toBe(true);
  });

  it('does not wait longer than its timeout, and a failing work is not an unhandled rejection', async () => {
    const background = createBackgroundWork(createLogger('silent'));
    background.track(Promise.reject(new Error('boom')), 'failing');
    background.track(new Promise(() => undefined), 'never ends');
    const started = Date.now();
    expect(await background.stop(50)).toBe(false);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
