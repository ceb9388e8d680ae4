import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';

function capture(): { lines: string[]; write: (line: string) => void } {
  const lines: string[] = [];
  return { lines, write: (line) => void lines.push(line) };
}

describe('createLogger', () => {
  // Log lines are read raw (terminals, less, grep): a field must not be able to move the cursor,
  // reorder what is shown (Trojan Source's bidi overrides) or hide text, whatever JSON allows.
  it.each([
    { name: 'DEL', odd: '\u007f' },
    { name: 'a C1 control (CSI)', odd: '\u009b' },
    { name: 'NEL', odd: '\u0085' },
    { name: 'a right-to-left override', odd: '\u202e' },
    { name: 'a bidi isolate', odd: '\u2067' },
    { name: 'a zero-width joiner', odd: '\u200d' },
    { name: 'a line separator', odd: '\u2028' },
    { name: 'a byte-order mark', odd: '\ufeff' },
    { name: 'an astral format character (language tag)', odd: '\u{e0001}' },
    { name: 'an unpaired surrogate', odd: '\ud800' },
  ])('writes $name in a field as a JSON escape, never raw, and the line still parses back', ({ odd }) => {
    const out = capture();
    const log = createLogger('info', out);
    log.info({ user: `eve${odd}@example.org`, nested: { why: `x${odd}y` } }, `message ${odd}`);

    const [line] = out.lines;
    expect(line).toBeDefined();
    expect(line?.endsWith('\n')).toBe(true);
    const body = (line as string).slice(0, -1);
    expect(body).not.toMatch(/[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u);
    const parsed = JSON.parse(body) as { user: string; nested: { why: string }; msg: string };
    expect(parsed.user).toBe(`eve${odd}@example.org`);
    expect(parsed.nested.why).toBe(`x${odd}y`);
    expect(parsed.msg).toBe(`message ${odd}`);
  });

  it('leaves ordinary text, accents and other scripts as they are', () => {
    const out = capture();
    createLogger('info', out).info({ user: 'zoë@пример.рф' }, 'plain');
    expect(out.lines[0]).toContain('"user":"zoë@пример.рф"');
  });
});
