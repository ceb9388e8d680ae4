// What the SOGo handoff, the webmail sessions and the admins' webmail links share: the shape of
// their secrets, which mailboxes may open webmail at all, and how a Redis fault is reported.
import { randomBytes } from 'node:crypto';
import { toBackendFault } from '../errors.js';
import type { Db } from '../storage/db.js';
import { findLoginMailbox } from '../storage/mailboxes.js';
import { isServiceAllowedForMailbox } from './services.js';

export const MAX_HANDOFF_TTL_SECONDS = 60;

/** Handoff secrets, webmail ids and admin tickets: 32 random bytes, base64url (43 characters, 256 bits). */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export function isWebmailToken(value: string): boolean {
  return TOKEN.test(value);
}

export function newWebmailToken(): string {
  return randomBytes(32).toString('base64url');
}

/** A handoff's (and an admin ticket's) lifetime: 1..60 s, default 60. */
export function handoffTtlOf(requested: number | undefined): number {
  return Math.min(Math.max(1, Math.floor(requested ?? MAX_HANDOFF_TTL_SECONDS)), MAX_HANDOFF_TTL_SECONDS);
}

export type WebmailAccessRefusal = 'mailbox_unavailable' | 'sogo_access_off';

/** The public wording of each refusal to open webmail. */
export const WEBMAIL_REFUSALS = {
  other_user: {
    title: 'Not your mailbox',
    message:
      'You can only open the webmail of the mailbox you are signed in with. Admins open a mailbox through its webmail link from the admin API.',
  },
  mailbox_unavailable: {
    title: 'Mailbox unavailable',
    message: 'Your mailbox or its domain is disabled, so webmail cannot be opened. Ask an admin.',
  },
  sogo_access_off: {
    title: 'Webmail is off for this mailbox',
    message: 'An admin has turned off webmail (SOGo) access for this mailbox. Your mail apps still work.',
  },
} as const;

/** Why `username` may not open webmail now, or undefined when it may. */
export async function checkWebmailAccess(
  db: Pick<Db, 'one'>,
  username: string,
): Promise<WebmailAccessRefusal | undefined> {
  const mailbox = await findLoginMailbox(db, username);
  // The direct row must be the session's own mailbox, not an alias-domain twin.
  if (!mailbox || mailbox.username !== username || mailbox.active !== 1 || !mailbox.domainActive) {
    return 'mailbox_unavailable';
  }
  if (!isServiceAllowedForMailbox('SOGO', mailbox.attributes)) return 'sogo_access_off';
  return undefined;
}

/** Runs a Redis step; a failure is the backend fault "Redis unavailable", not a denial. */
export async function inRedis<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toBackendFault('Redis', error);
  }
}
