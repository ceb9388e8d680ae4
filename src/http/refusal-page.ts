// A refusal shown to a browser as a page (a title, a public message, a way back), never cached.
// Used by every route area's own refusals and by render-error.ts's default error page.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { MessagePage } from './views/layout.js';

export interface PageRefusal {
  status: ContentfulStatusCode;
  title: string;
  message: string;
}

export function renderRefusal(c: Context, refusal: PageRefusal, back?: { href: string; label: string }) {
  c.header('cache-control', 'no-store');
  return c.html(
    MessagePage({ title: refusal.title, message: refusal.message, ...(back ? { back } : {}) }),
    refusal.status,
  );
}

export const CROSS_SITE_REFUSAL = {
  status: 403,
  title: 'Request refused',
  message: 'This form was not sent from this site. Please reload the page and try again.',
} as const;
