// What the Dockerfile promises that a build alone would not catch: its default base is the
// official slim image of the Node.js LTS in .node-version, no secret is set in it, and the build
// context keeps out everything but what the build reads (test/container.test.ts builds and runs it).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dockerfile = readFileSync('Dockerfile', 'utf8');
const dockerignore = readFileSync('.dockerignore', 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

describe('the Dockerfile', () => {
  it("defaults its base to the official node slim image of .node-version's LTS", () => {
    const version = readFileSync('.node-version', 'utf8').trim();
    expect(dockerfile).toMatch(new RegExp(`^ARG NODE_IMAGE=node:${version.replaceAll('.', '\\.')}-trixie-slim$`, 'm'));
    // Even major lines are the LTS ones.
    expect(Number(version.split('.')[0]) % 2).toBe(0);
    const base = '$' + '{NODE_IMAGE}';
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual([`FROM ${base} AS build`, `FROM ${base}`]);
  });

  it('sets no secret, runs as a non-root user under tini, with an exec-form HEALTHCHECK', () => {
    const settings = dockerfile.match(/^(ENV|ARG)\s[\s\S]*?[^\\]$/gm) ?? [];
    for (const setting of settings) expect(setting).not.toMatch(/TOKEN|SECRET|PASSWORD|_KEY|CERT/i);
    expect(dockerfile).not.toMatch(/NODE_EXTRA_CA_CERTS|ca-certificates\//);
    expect(dockerfile).toMatch(/^USER postern:postern$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node"/m);
    expect(dockerfile).toMatch(/^ {2}CMD \["node", "\/app\/dist\/main\.js", "health"\]$/m);
  });

  it('installs production dependencies only in the image it runs', () => {
    const [, runStage] = dockerfile.split(/^FROM \$\{NODE_IMAGE\}$/m);
    expect(runStage).toBeDefined();
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(runStage).not.toMatch(/npm (ci|install)/);
  });

  it('sends only package*.json, tsconfig*.json, src/ (no tests) and what deploy/dovecot and deploy/sogo build from as the context', () => {
    expect(dockerignore[0]).toBe('*');
    expect(dockerignore.slice(1).sort()).toEqual(
      [
        '!package.json',
        '!package-lock.json',
        '!tsconfig.json',
        '!tsconfig.build.json',
        '!src/',
        'src/**/*.test.ts',
        'src/**/*.test.tsx',
        '!lua/dovecot/passdb.lua',
        '!deploy/dovecot/',
        '!deploy/sogo/entrypoint.sh',
      ].sort(),
    );
  });
});
