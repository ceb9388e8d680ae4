// The README is part of the product: its configuration reference must match the schema.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { replaceConfigReference } from '../scripts/config-reference.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README.md', () => {
  it('carries the configuration reference generated from the schema (npm run docs:config)', () => {
    expect(replaceConfigReference(readme)).toBe(readme);
  });

  it('has a quick start of exactly two command lines', () => {
    const section = readme.split('## Quick start')[1]?.split('\n## ')[0] ?? '';
    const block = section.match(/```sh\n([\s\S]*?)```/)?.[1] ?? '';
    const lines = block.split('\n').filter((line) => line.trim() && !line.trim().startsWith('#'));
    expect(lines).toHaveLength(2);
  });
});
