import { describe, expect, it } from 'vitest';
import { safeNextPath } from './next-path.js';

describe('safeNextPath', () => {
  it.each([
    ['/', '/'],
    ['/sogo-auth?login=bob%40example.org', '/sogo-auth?login=bob%40example.org'],
    ['/app-passwords#new', '/app-passwords#new'],
    // Dot segments are resolved, and cannot climb out of the site.
    ['/a/../../sogo-auth', '/sogo-auth'],
  ])('keeps the local path %s', (value, expected) => {
    expect(safeNextPath(value)).toBe(expected);
  });

  it.each([
    ['another site, scheme-relative', '//evil.example/x'],
    ['another site, backslash', '/\\evil.example'],
    ['an absolute URL', 'https://evil.example/'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a relative path', 'portal'],
    ['a control character', '/x\r\nSet-Cookie: a=b'],
    ['a tab', '/\t/evil.example'],
    ['the sign-in itself', '/login?next=/login'],
    ['the sign-out', '/logout'],
    ['the SSO start', '/login/sso'],
    ['an empty value', ''],
    ['a very long value', `/${'a'.repeat(600)}`],
    ['not a string', ['/a', '/b']],
  ])('refuses %s', (_label, value) => {
    expect(safeNextPath(value)).toBeUndefined();
  });

  // Each of these resolved to "//evil.example", which a browser reads as another
  // site. The value as received (after the query/form decoding) is what safeNextPath sees.
  it.each([
    '/.//evil.example',
    '/..//evil.example',
    '/%2e//evil.example',
    '/%2E//evil.example',
    '/.%2e//evil.example',
    '/a/..//evil.example',
    '/a/b/../..//evil.example',
    '/././/evil.example/x?y=1#z',
    '/.///evil.example',
  ])('refuses %s, which resolves to another site', (value) => {
    const result = safeNextPath(value);
    expect(result).toBeUndefined();
  });

  it('never returns a path a browser would read as another site', () => {
    const prefixes = ['/', '/.', '/..', '/%2e', '/%2e%2e', '/a/..', '/a/%2e%2e', '/./a/..'];
    const joiners = ['/', '//', '/./', '/../', '\\', '/%2f', '/%5c'];
    for (const prefix of prefixes) {
      for (const joiner of joiners) {
        const value = `${prefix}${joiner}evil.example/x`;
        const result = safeNextPath(value);
        if (result === undefined) continue;
        expect(result, value).toMatch(/^\/(?![/\\])/);
        expect(new URL(result, 'https://mail.example/').host, value).toBe('mail.example');
      }
    }
  });

  it('keeps paths that merely start with the same letters as the sign-in', () => {
    expect(safeNextPath('/login-help')).toBe('/login-help');
  });
});
