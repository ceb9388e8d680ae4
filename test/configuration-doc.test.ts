// docs/configuration.md is generated from the schema (npm run docs:config): stale means failing.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeAccepted, renderConfigurationDoc } from '../scripts/config-reference.js';
import { type VariableSpec, variables } from '../src/config/schema.js';

const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');

describe('docs/configuration.md', () => {
  it('is what npm run docs:config generates from src/config/schema.ts', () => {
    expect(doc).toBe(renderConfigurationDoc());
  });

  it('has a section for every variable, secrets with their _FILE form', () => {
    for (const spec of Object.values(variables) as VariableSpec[]) {
      expect(doc).toContain(`### \`${spec.env}\`\n`);
      if (spec.isSecret) expect(doc).toContain(`\`${spec.env}_FILE=/path\``);
    }
  });

  it.each([
    ['logLevel', 'one of `fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`'],
    ['shutdownTimeoutMs', 'an integer from 1 to 600000'],
    ['internalToken', 'at least 16 characters'],
    ['internalListen', '`host:port` (IPv6 in brackets; port 0 = any free port)'],
  ] as const)('says what %s accepts, from its zod schema', (key, accepted) => {
    expect(describeAccepted(variables[key] as VariableSpec)).toBe(accepted);
  });
});
