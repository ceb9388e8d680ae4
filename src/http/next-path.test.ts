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

  it('keeps paths that merely start with the same letters as the sign-in', () => {
    expect(safeNextPath('/login-help')).toBe('/login-help');
  });
});
