// Where to send the browser after sign-in (`/login?next=...`, e.g. from /sogo-auth). Only a path
// on this site is accepted, so a crafted link cannot turn the sign-in into an open redirect.

const MAX_NEXT_CHARS = 512;
const PROBE_ORIGIN = 'http://postern.invalid';

/** A local path to continue to after sign-in, or undefined when the value is not one. */
export function safeNextPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NEXT_CHARS) return undefined;
  if (!isSameSitePath(value)) return undefined;
  let url: URL;
  try {
    url = new URL(value, PROBE_ORIGIN);
  } catch {
    return undefined;
  }
  if (url.origin !== PROBE_ORIGIN) return undefined;
  // Back to the sign-in (or out) would only loop.
  if (/^\/(login|logout)(\/|$)/.test(url.pathname)) return undefined;
  // Resolving dot segments can turn a harmless value into another site: "/.//evil.example",
  // "/%2e//evil.example" and "/a/..//evil.example" all resolve to "//evil.example". So the
  // check that matters is on what goes out, not on what came in.
  const resolved = `${url.pathname}${url.search}${url.hash}`;
  return isSameSitePath(resolved) ? resolved : undefined;
}

/**
 * "//host" and "/\host" are other sites to a browser; control characters and backslashes have no
 * business in our own links.
 */
function isSameSitePath(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this refuses.
  return text.startsWith('/') && !text.startsWith('//') && !/[\\\x00-\x1f\x7f]/.test(text);
}
