// The admin console's request plumbing, shared by every console page:
// - consoleGuard: a complete admin session or a redirect to /admin/login; every POST must be
//   same-origin and carry the session's CSRF token (form field `csrf`), else 403;
// - the signed-in admin as `c.get('admin')` (the same principal the JSON API sees, so
//   authorize()/changeOrigin() from admin-request.ts work unchanged) and `c.get('console')`;
// - authorizePage(): the role and domain-ACL check on the object itself (404 outside the ACL);
// - readForm(): a form body validated with zod into per-field messages.
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { type Action, type Actor, type AdminObject, can } from '../../admin/roles.js';
import type { Deps } from '../../deps.js';
import { findAdmin } from '../../storage/admins.js';
import { auditActorOf } from '../admin-auth.js';
import { auditAdminRefusal } from '../admin-refusal-audit.js';
import { type AdminSessionStore, isValidAdminCsrf } from '../admin-session.js';
import { CROSS_SITE_REFUSAL, renderRefusal } from '../refusal-page.js';
import { authorize } from '../routes/admin-request.js';
import { isSameOrigin } from '../session.js';

/** What a console page needs to know about the request: who, their token, where. */
export interface ConsoleView {
  username: string;
  actor: Actor;
  csrf: string;
  /** The session's second factor at sign-in, for the dashboard's account card. */
  secondFactor: 'totp' | 'recovery_code' | 'none' | undefined;
}

declare module 'hono' {
  interface ContextVariableMap {
    console: ConsoleView;
  }
}

/** One navigation entry; `visible` hides it from roles that could not open it anyway. */
export interface NavEntry {
  href: string;
  label: string;
  visible: (actor: Actor) => boolean;
}

/** For entries of areas some roles never reach, e.g. `visible: readable({ kind: 'admins' })`. */
export const readable = (object: AdminObject) => (actor: Actor) => can(actor, 'read', object).allowed;
export const everyone = () => true;

/**
 * The console's navigation, in this order: Dashboard, Domains, Mailboxes, Identity provider,
 * Templates, Sync, Bans, Audit, Admins. A page gets its entry, at its place, when it lands; an
 * entry's `visible` hides it from roles whose can() would refuse the page anyway.
 */
export const CONSOLE_NAV: readonly NavEntry[] = [
  { href: '/admin', label: 'Dashboard', visible: everyone },
  // A domain admin's list holds only its own domains.
  { href: '/admin/domains', label: 'Domains', visible: everyone },
  { href: '/admin/mailboxes', label: 'Mailboxes', visible: everyone },
  { href: '/admin/identity-provider', label: 'Identity provider', visible: readable({ kind: 'identity_provider' }) },
  { href: '/admin/templates', label: 'Templates', visible: readable({ kind: 'templates' }) },
  { href: '/admin/sync', label: 'Sync', visible: readable({ kind: 'sync' }) },
  { href: '/admin/bans', label: 'Bans', visible: readable({ kind: 'bans' }) },
  { href: '/admin/audit', label: 'Audit', visible: readable({ kind: 'audit' }) },
  { href: '/admin/admins', label: 'Admins', visible: readable({ kind: 'admins' }) },
];

export function navFor(actor: Actor): NavEntry[] {
  return CONSOLE_NAV.filter((entry) => entry.visible(actor));
}

export function consoleGuard(
  deps: Pick<Deps, 'db' | 'config' | 'auditWriter'>,
  sessions: AdminSessionStore,
): MiddlewareHandler {
  return async (c, next) => {
    const isRead = c.req.method === 'GET' || c.req.method === 'HEAD';
    const session = await sessions.read(c);
    const account = session?.stage === 'full' ? await findAdmin(deps.db, session.username) : undefined;
    if (!session || !account?.active) {
      // A disabled admin is signed out; a half-done sign-in (second factor, enrolment) stays for its step.
      if (session?.stage === 'full') await sessions.destroy(c);
      if (isRead) return c.redirect('/admin/login', 303);
      return renderRefusal(c, SIGNED_OUT_REFUSAL, { href: '/admin/login', label: 'Sign in' });
    }
    if (!isRead) {
      // SameSite=Strict keeps other sites' posts cookieless; the Origin and the token are the second lock.
      if (!isSameOrigin(c, deps.config.publicUrl)) return renderRefusal(c, CROSS_SITE_REFUSAL, BACK);
      const form = await c.req.parseBody();
      if (!isValidAdminCsrf(session, form.csrf)) return renderRefusal(c, CROSS_SITE_REFUSAL, BACK);
    }
    const actor: Actor = {
      name: account.username,
      role: account.superadmin ? 'superadmin' : 'domainadmin',
      domains: account.domains,
      access: 'rw',
    };
    c.set('admin', { via: 'session', access: 'rw', actor });
    c.set('console', {
      username: account.username,
      actor,
      csrf: session.csrfToken,
      secondFactor: session.secondFactor,
    });
    c.header('cache-control', 'no-store');
    await next();
    auditAdminRefusal(c, auditActorOf(c.get('admin')), deps.auditWriter);
  };
}

const BACK = { href: '/admin', label: 'Back to the console' };
const SIGNED_OUT_REFUSAL = {
  status: 403,
  title: 'Signed out',
  message: 'Your admin session has ended. Sign in again and repeat the change.',
} as const;

/**
 * "Page for role": throws the console's 404 (outside the admin's domains, worded like a missing
 * object) or 403 (the role never reaches this kind of object). Call it on the object itself,
 * after loading it, so a domain admin cannot reach another domain's object by its URL.
 */
export function authorizePage(c: Context, action: Action, object: AdminObject, notFoundMessage = 'not found'): void {
  authorize(c, action, object, notFoundMessage);
}

export type FormResult<T> = { ok: true; data: T } | { ok: false; errors: Record<string, string> };

/** The posted form (already read by the guard) through a zod schema; errors keyed by field name. */
export async function readForm<S extends z.ZodType>(c: Context, schema: S): Promise<FormResult<z.output<S>>> {
  const body = await c.req.parseBody();
  const { csrf: _csrf, ...fields } = body;
  const parsed = schema.safeParse(fields);
  if (parsed.success) return { ok: true, data: parsed.data };
  const errors: Record<string, string> = {};
  for (const issue of parsed.error.issues) {
    const field = issue.path.map(String).join('.') || 'form';
    errors[field] ??= `${labelOf(field)}: ${issue.message}`;
  }
  return { ok: false, errors };
}

function labelOf(field: string): string {
  return field.replace(/_/g, ' ');
}

/** A checkbox's value: browsers send it only when checked. */
export const checked = (value: unknown) => value === '1' || value === 'on' || value === 'true';
