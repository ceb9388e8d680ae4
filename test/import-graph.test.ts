// The floors of the import graph, checked over the source text: only
// src/http may import hono or @hono/* (and only it holds .tsx, whose JSX compiles to imports of
// hono/jsx), and only src/storage may import mysql2. Scope: everything under src/, unit tests
// beside their files included, since they belong to their floor. test/, bench/ and scripts/ are
// not the application: their fixtures open MySQL connections and run hono fakes of outside peers.
// No file is allowed an exception; code that needs one moves into the floor that may.
// Beside that, the floors themselves: no import circle among src/'s files (type-only imports
// count), storage/ builds on nothing but the root's leaf modules, src/http is imported by the
// composition root alone, and cache/ and passwords/ never reach up into login/ or http/.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from './support/source-files.js';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

/** Comments out, strings kept: an import inside a comment is no import. */
function withoutComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      out += ' ';
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * Every module specifier a file names: static imports and re-exports (type-only ones too: they
 * tie the floors together as much as values do), side-effect imports, dynamic import(), and
 * the JSX runtime a .tsx file imports implicitly (tsconfig's jsxImportSource).
 */
function specifiersOf(path: string, text: string): string[] {
  const code = withoutComments(text);
  const found: string[] = [];
  const patterns = [
    /(?:^|[\s;}])(?:import|export)\s+(?:type\s+)?[\w$*{}\s,]*?\s*from\s*['"]([^'"]+)['"]/g,
    /(?:^|[\s;}])import\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.push(match[1] as string);
  if (path.endsWith('.tsx')) found.push('hono/jsx/jsx-runtime');
  return found;
}

const isHono = (specifier: string) => /^(hono|@hono\/[^/]+)(\/|$)/.test(specifier);
const isMysql2 = (specifier: string) => /^mysql2(\/|$)/.test(specifier);

const toPath = (absolute: string) => relative(ROOT, absolute).split('\\').join('/');

const files = sourceFiles(SRC).map((absolute) => {
  const specifiers = specifiersOf(absolute, readFileSync(absolute, 'utf8'));
  return { path: toPath(absolute), specifiers, imports: localImports(absolute, specifiers) };
});

/** The files a file's relative specifiers name (`./x.js` is `./x.ts` or `./x.tsx` in the source). */
function localImports(absolute: string, specifiers: string[]): string[] {
  return specifiers
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => {
      const target = resolve(dirname(absolute), specifier);
      const stem = target.replace(/\.js$/, '');
      const found = [target, `${stem}.ts`, `${stem}.tsx`].find(
        (candidate) => /\.(ts|tsx|json)$/.test(candidate) && existsSync(candidate),
      );
      return found ? toPath(found) : `${toPath(target)} (unresolved)`;
    });
}

/** The floor of a file: its first folder under src/, or '' for the root's files (deps.ts, errors.ts …). */
function floorOf(path: string): string {
  if (!path.startsWith('src/')) return '(outside src)';
  const parts = path.split('/');
  return parts.length > 2 ? (parts[1] as string) : '';
}

/** Every circle a depth-first walk meets, each as `a → b → … → a`. */
function findCircles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const circles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const trail: string[] = [];
  const visit = (path: string) => {
    state.set(path, 'open');
    trail.push(path);
    for (const next of graph.get(path) ?? []) {
      if (state.get(next) === 'open') circles.push([...trail.slice(trail.indexOf(next)), next].join(' → '));
      else if (!state.has(next) && graph.has(next)) visit(next);
    }
    trail.pop();
    state.set(path, 'done');
  };
  for (const path of graph.keys()) if (!state.has(path)) visit(path);
  return circles;
}

const isTestFile = (path: string) => /\.test\.tsx?$/.test(path);

function offenders(isForbidden: (specifier: string) => boolean, allowedUnder: string): string[] {
  return files
    .filter((file) => !file.path.startsWith(allowedUnder))
    .flatMap((file) => file.specifiers.filter(isForbidden).map((specifier) => `${file.path} imports ${specifier}`));
}

describe('the import graph of src/', () => {
  it('reads the imports it checks (the scanner finds the ones that are allowed)', () => {
    const importers = (isForbidden: (specifier: string) => boolean) =>
      files.filter((file) => file.specifiers.some(isForbidden)).map((file) => file.path);
    expect(files.length).toBeGreaterThan(100);
    expect(importers(isHono)).toEqual(expect.arrayContaining(['src/http/internal-app.ts']));
    expect(importers(isMysql2)).toEqual(expect.arrayContaining(['src/storage/db.ts']));
    // Each form the scanner must see, and a comment it must not.
    const sample = [
      "import { Hono } from 'hono';",
      "import type {\n  Context,\n} from 'hono';",
      "export { serve } from '@hono/node-server';",
      "const m = await import('mysql2/promise');",
      "import 'mysql2';",
      "// import { x } from 'hono/cookie';",
    ].join('\n');
    expect(specifiersOf('x.ts', sample)).toEqual(['hono', 'hono', '@hono/node-server', 'mysql2', 'mysql2/promise']);
    expect(specifiersOf('x.tsx', '')).toEqual(['hono/jsx/jsx-runtime']);
    // And the circle finder finds a circle, type-only or not, and nothing in a tree.
    const circular = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
    ]);
    expect(findCircles(circular)).toEqual(['a → b → c → a']);
    expect(
      findCircles(
        new Map([
          ['a', ['b', 'c']],
          ['b', ['c']],
          ['c', []],
        ]),
      ),
    ).toEqual([]);
  });

  it('has hono and @hono/* only in src/http', () => {
    expect(offenders(isHono, 'src/http/')).toEqual([]);
  });

  it('has mysql2 only in src/storage', () => {
    expect(offenders(isMysql2, 'src/storage/')).toEqual([]);
  });

  it('resolves every relative import to a file', () => {
    expect(files.flatMap((file) => file.imports.filter((target) => target.endsWith('(unresolved)')))).toEqual([]);
  });

  it('has no import circle among the source files (type-only imports included)', () => {
    const graph = new Map(
      files.filter((file) => !isTestFile(file.path)).map((file) => [file.path, file.imports] as const),
    );
    const circles = findCircles(graph);
    expect(circles).toEqual([]);
  });

  it('keeps the floors: storage/ on the root alone, http/ below the composition root only, cache/ and passwords/ under login/', () => {
    // Non-test files: a unit test may use test/support beside the floor it tests.
    const crossings = files
      .filter((file) => !isTestFile(file.path))
      .flatMap((file) =>
        file.imports.map((target) => ({
          from: file.path,
          fromFloor: floorOf(file.path),
          to: target,
          toFloor: floorOf(target),
        })),
      );
    const show = (edge: { from: string; to: string }) => `${edge.from} imports ${edge.to}`;
    expect(
      crossings
        .filter((edge) => edge.fromFloor === 'storage' && edge.toFloor !== 'storage' && edge.toFloor !== '')
        .map(show),
    ).toEqual([]);
    expect(
      crossings
        .filter((edge) => edge.toFloor === 'http' && edge.fromFloor !== 'http' && edge.fromFloor !== '')
        .map(show),
    ).toEqual([]);
    expect(
      crossings
        .filter((edge) => ['cache', 'passwords'].includes(edge.fromFloor) && ['login', 'http'].includes(edge.toFloor))
        .map(show),
    ).toEqual([]);
  });
});
