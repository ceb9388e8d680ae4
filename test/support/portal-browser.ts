// A cookie-keeping browser for the portal's form flows (no JavaScript, as the pages have none):
// a cookie jar, a fixed client IP through the trusted proxy header, and our own Origin on posts.
export interface PortalResponse {
  status: number;
  location: string | null;
  text: string;
  setCookies: string[];
}

export function portalBrowser(webUrl: string, options: { origin: string; ip?: string }) {
  const jar = new Map<string, string>();
  async function request(method: string, path: string, form?: URLSearchParams | Record<string, string>) {
    const body = form instanceof URLSearchParams ? form : form ? new URLSearchParams(form) : undefined;
    const response = await fetch(`${webUrl}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        origin: options.origin,
        ...(options.ip ? { 'x-forwarded-for': options.ip } : {}),
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(body ? { body: body.toString() } : {}),
    });
    const setCookies = response.headers.getSetCookie();
    for (const cookie of setCookies) {
      const [pair = ''] = cookie.split(';');
      const index = pair.indexOf('=');
      const name = pair.slice(0, index);
      const value = pair.slice(index + 1);
      if (/max-age=0/i.test(cookie) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return {
      status: response.status,
      location: response.headers.get('location'),
      text: await response.text(),
      setCookies,
    };
  }
  return {
    jar,
    request,
    get: (path: string) => request('GET', path),
    post: (path: string, form: URLSearchParams | Record<string, string>) => request('POST', path, form),
    signIn: (username: string, password: string) => request('POST', '/login', { username, password }),
  };
}

/** The form token a page carries. */
export function csrfOf(html: string): string {
  return /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
}

/** The base32 key an enrolment page shows. */
export function totpSecretOf(html: string): string {
  return /id="totp-secret">([A-Z2-7]+)</.exec(html)?.[1] ?? '';
}

/** The recovery codes a page shows once. */
export function recoveryCodesOf(html: string): string[] {
  return [...html.matchAll(/<span class="secret">([0-9A-Z-]{19})<\/span>/g)].map((m) => m[1] ?? '');
}
