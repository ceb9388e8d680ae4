// Prints the README's configuration reference from the schema, or rewrites it in place and
// writes docs/configuration.md (every variable with what it accepts) with --write. Tests check
// both match, so the references cannot drift from the code.
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
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

interface JsonSchema {
  type?: string;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  pattern?: string;
  format?: string;
}

/** What a variable accepts, in words, from its zod schema (as read from the environment). */
export function describeAccepted(spec: VariableSpec): string {
  let json: JsonSchema;
  try {
    json = z.toJSONSchema(spec.schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  } catch {
    return 'see the meaning';
  }
  if (json.enum) return `one of ${json.enum.map((value) => `\`${value}\``).join(', ')}`;
  if (json.type === 'integer' || json.type === 'number') {
    const low = json.exclusiveMinimum !== undefined ? json.exclusiveMinimum + 1 : json.minimum;
    const kind = json.type === 'integer' ? 'an integer' : 'a number';
    if (low !== undefined && json.maximum !== undefined) return `${kind} from ${low} to ${json.maximum}`;
    if (low !== undefined) return `${kind} of at least ${low}`;
    return kind;
  }
  const parts: string[] = [];
  if (json.minLength !== undefined && json.minLength > 1) parts.push(`at least ${json.minLength} characters`);
  if (json.pattern?.includes(':\\d{1,5}')) parts.push('`host:port` (IPv6 in brackets; port 0 = any free port)');
  else if (json.pattern) parts.push(`matching \`${json.pattern}\``);
  if (parts.length === 0 && /_URL$/.test(spec.env)) parts.push('a URL');
  return parts.length > 0 ? parts.join(', ') : 'text';
}

export function renderConfigurationDoc(): string {
  const sections = (Object.values(variables) as VariableSpec[]).map((spec) => {
    const lines = [
      `### \`${spec.env}\``,
      '',
      spec.description,
      '',
      `- Default: ${spec.defaultValue === undefined ? 'unset' : `\`${spec.defaultValue}\``}`,
      `- Accepts: ${describeAccepted(spec)}`,
    ];
    if (spec.isSecret) {
      lines.push(
        `- Secret: never logged; give it as a file with \`${spec.env}_FILE=/path\` (one trailing newline is dropped), not both.`,
      );
    }
    return lines.join('\n');
  });
  return [
    '# Configuration',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`; test/configuration-doc.test.ts fails when it is stale. Do not edit by hand. -->',
    '',
    'postern reads its whole configuration from `POSTERN_*` environment variables; there is no',
    'configuration file. Every secret can also come from a file named by the same variable with',
    '`_FILE` appended (Docker and compose secrets). At start postern checks every variable at once',
    'and, if any is wrong (or unknown: a `POSTERN_*` name it does not know, such as a typo), lists',
    'every problem with its variable name and exits with code 2, never echoing a secret.',
    '`postern check` (`npm run check`, or `node /app/dist/main.js check` in the container) then asks',
    'each dependency whether it works.',
    '',
    `${Object.keys(variables).length} variables:`,
    '',
    ...sections.flatMap((section) => [section, '']),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes('--write')) {
    const path = new URL('../README.md', import.meta.url);
    writeFileSync(path, replaceConfigReference(readFileSync(path, 'utf8')));
    writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigurationDoc());
  } else {
    process.stdout.write(`${renderConfigReference()}\n`);
  }
}
