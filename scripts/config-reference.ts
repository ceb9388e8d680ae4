// Prints the README's configuration reference from the schema, or rewrites it in place with
// --write. A test checks the README matches, so the reference cannot drift from the code.
import { readFileSync, writeFileSync } from 'node:fs';
import { type VariableSpec, variables } from '../src/config/schema.js';

export const BEGIN = '<!-- config-reference:begin -->';
export const END = '<!-- config-reference:end -->';

export function renderConfigReference(): string {
  const rows = (Object.values(variables) as VariableSpec[]).map((spec) => {
    const name = spec.isSecret ? `\`${spec.env}\` (or \`${spec.env}_FILE\`)` : `\`${spec.env}\``;
    const fallback = spec.defaultValue === undefined ? '(unset)' : `\`${spec.defaultValue}\``;
    return `| ${name} | ${fallback} | ${spec.description.replaceAll('|', '\\|')} |`;
  });
  return [BEGIN, '| Variable | Default | Meaning |', '|---|---|---|', ...rows, END].join('\n');
}

export function replaceConfigReference(readme: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error('README.md has no config-reference markers');
  return readme.slice(0, start) + renderConfigReference() + readme.slice(end + END.length);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes('--write')) {
    const path = new URL('../README.md', import.meta.url);
    writeFileSync(path, replaceConfigReference(readFileSync(path, 'utf8')));
  } else {
    process.stdout.write(`${renderConfigReference()}\n`);
  }
}
