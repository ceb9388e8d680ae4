// The browser sign-in's refusals: a status and a public page (title, message) for the person,
// and a reason for logs, tests and the audit. Returned as values, never thrown.
import { mailboxActor, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';

/** A refusal shown to the browser as a page; `message` is public, `reason` is for logs and tests. */
export interface WebRefusal {
  ok: false;
  status: 400 | 401 | 403 | 404 | 409 | 429 | 500 | 502;
  reason: string;
  title: string;
  message: string;
}

export function refuse(status: WebRefusal['status'], reason: string, title: string, message: string): WebRefusal {
  return { ok: false, status, reason, title, message };
}

/** An SSO refusal in the audit (`sso.refused`), as `actor` when the person is known; returns the refusal. */
export async function auditSsoRefusal(
  db: Pick<Db, 'execute'>,
  ip: string | undefined,
  actor: string | undefined,
  refusal: WebRefusal,
): Promise<WebRefusal> {
  await recordAudit(db, {
    actor: mailboxActor(actor ?? 'anonymous'),
    action: 'sso.refused',
    ...(actor ? { target: actor } : {}),
    detail: { reason: refusal.reason, status: refusal.status },
    ...(ip ? { ip } : {}),
  });
  return refusal;
}
