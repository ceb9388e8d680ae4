// Source files stay near 300 lines; one that grows past that says why at its top, in its leading
// comment ("Why one file of ~N lines: …", "Long (~N lines) because …"), so the reason is read
// before the length is. 320 is the line: "~300" with a little room, so a small edit to a file of
// 300 lines does not call for a reason. Unit tests beside their files are not counted.
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from './support/source-files.js';

const ROOT = join(import.meta.dirname, '..');
const LIMIT = 320;

/** The comment lines a file opens with, up to the first line that is not one. */
function leadingComment(text: string): string {
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('//')) break;
    lines.push(line);
  }
  return lines.join('\n');
}

const REASON = /(?:~\d+ lines|over 300 lines)\b/;

describe('source file length', () => {
  const long = sourceFiles(join(ROOT, 'src'))
    .filter((path) => !/\.test\.[cm]?tsx?$/.test(path))
    .map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') }))
    .filter(({ text }) => text.split('\n').length > LIMIT);

  it('finds the long files it checks (the walk reads src/)', () => {
    expect(long.map(({ path }) => path)).toContain('src/login/mail-login.ts');
  });

  it(`gives every source file over ${LIMIT} lines its reason at the top`, () => {
    const unexplained = long.filter(({ text }) => !REASON.test(leadingComment(text))).map(({ path }) => path);
    expect(unexplained).toEqual([]);
  });

  it('tells a reason from its absence', () => {
    expect(REASON.test(leadingComment('// Why one file of ~340 lines: one closure.\n//\n// More.\ncode'))).toBe(true);
    expect(REASON.test(leadingComment('// The sync diff, pure.\nconst a = 1;\n// Long (~400 lines) later'))).toBe(
      false,
    );
  });
});
