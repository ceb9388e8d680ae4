// Creates a mailbox from a template, or brings an existing mailbox in line with one, writing
// mailcow's columns the way mailcow does (attribute_hash, "0"/"1" strings, quota in bytes).
// It never re-enables a mailbox an admin disabled, unlike mailcow.
import { createHash } from 'node:crypto';
import { checkNewAddress, foldAddress } from '../address.js';
import type { Tx } from '../storage/db.js';
import type { MailboxAuthSource } from '../storage/mailboxes.js';
import {
  ACL_COLUMNS,
  type AclColumn,
  DEFAULT_MAILBOX_ATTRIBUTES,
  findDomainActive,
  findNameUnderCollation,
  insertMailboxWithCompanions,
  lockTemplatedMailbox,
  updateTemplatedMailbox,
  writeUserAcl,
} from '../storage/templated-mailboxes.js';
import type { MailboxTemplate } from '../storage/templates.js';

/** mailcow's attribute_hash: sha1 of the template's stored attributes JSON text. */
export function templateHash(template: MailboxTemplate): string {
  return createHash('sha1').update(template.rawAttributes).digest('hex');
}

/** Template keys that become mailbox.attributes flags ("0"/"1"). */
export const FLAG_ATTRIBUTES = [
  'sogo_access',
  'imap_access',
  'pop3_access',
  'smtp_access',
  'sieve_access',
  'eas_access',
  'dav_access',
  'tls_enforce_in',
  'tls_enforce_out',
  'force_pw_update',
  'force_tfa',
] as const;

export { ACL_COLUMNS };

/** The template keys for the ACL columns, e.g. `acl_app_passwds`. */
export const TEMPLATE_ACL_KEYS = ACL_COLUMNS.map((column) => `acl_${column}` as const);

function flag(value: unknown): '0' | '1' {
  return value === 1 || value === '1' || value === true ? '1' : '0';
}

/** The mailbox.attributes keys a template decides, in mailcow's string encoding. */
function mailboxAttributesFrom(template: MailboxTemplate, authSource: MailboxAuthSource): Record<string, string> {
  const t = template.attributes;
  const out: Record<string, string> = {};
  for (const key of FLAG_ATTRIBUTES) if (Object.hasOwn(t, key)) out[key] = flag(t[key]);
  // mailcow forces these for external sources: IdP users have no local password to update,
  // and generic OIDC users cannot do mailcow 2FA.
  if (authSource !== 'mailcow') out.force_pw_update = '0';
  if (authSource === 'generic-oidc') out.force_tfa = '0';
  for (const key of ['quarantine_notification', 'quarantine_category'] as const) {
    if (typeof t[key] === 'string') out[key] = t[key] as string;
  }
  out.attribute_hash = templateHash(template);
  return out;
}

function quotaBytes(template: MailboxTemplate): number {
  const quota = Number(template.attributes.quota ?? 0);
  return Number.isFinite(quota) && quota >= 0 ? Math.floor(quota) : 0;
}

function templateActive(template: MailboxTemplate): number {
  const active = Number(template.attributes.active ?? 1);
  return active === 0 || active === 2 ? active : 1;
}

/** The user_acl columns the template's `acl_<column>` keys set ("0"/"1", 0/1, booleans). */
function aclValuesFrom(template: MailboxTemplate): Partial<Record<AclColumn, number>> {
  const values: Partial<Record<AclColumn, number>> = {};
  for (const column of ACL_COLUMNS) {
    const value = template.attributes[`acl_${column}`];
    if (value !== undefined) values[column] = Number(flag(value));
  }
  return values;
}

export type CreateMailboxResult =
  | { ok: true }
  | {
      ok: false;
      /**
       * `collides`: the database's collation (mailcow's utf8mb4_general_ci equates é/e, ı/i…)
       * already holds a mailbox or alias that is another spelling of this name.
       * `unusable_address`: the name does not survive postern's folding (see `detail`).
       */
      reason: 'unknown_domain' | 'inactive_domain' | 'exists' | 'invalid_address' | 'collides' | 'unusable_address';
      /** Public words for `unusable_address`. */
      detail?: string;
      /** For logs, never for the browser: the existing name a `collides` ran into. */
      existing?: string;
    };

/**
 * Create `username` from a template, with an empty local password (IdP users sign in through
 * the IdP and use app passwords), plus the rows mailcow adds with every mailbox: self alias,
 * quota2/quota2replica and user_acl. The domain must exist and be active. Run in a transaction.
 * The name is folded (foldAddress) and must pass checkNewAddress; the domain is matched exactly.
 */
export async function createMailboxFromTemplate(
  tx: Tx,
  input: { username: string; name: string; authSource: MailboxAuthSource; template: MailboxTemplate },
): Promise<CreateMailboxResult> {
  const username = foldAddress(input.username);
  const at = username.lastIndexOf('@');
  if (at <= 0 || at === username.length - 1) return { ok: false, reason: 'invalid_address' };
  const usable = checkNewAddress(username);
  if (!usable.ok) return { ok: false, reason: 'unusable_address', detail: usable.message };
  const localPart = username.slice(0, at);
  const domain = username.slice(at + 1);
  const domainActive = await findDomainActive(tx, domain);
  if (domainActive === undefined) return { ok: false, reason: 'unknown_domain' };
  if (!domainActive) return { ok: false, reason: 'inactive_domain' };

  // The collation decides what the primary keys consider equal: a new row equal to an existing
  // one under it would be refused by the key (mailbox) or silently dropped (INSERT IGNORE alias).
  const sameUnderCollation = await findNameUnderCollation(tx, username);
  if (sameUnderCollation) {
    return sameUnderCollation.exact
      ? { ok: false, reason: 'exists' }
      : {
          ok: false,
          reason: 'collides',
          existing: sameUnderCollation.username,
        };
  }

  const inserted = await insertMailboxWithCompanions(tx, {
    username,
    name: input.name,
    localPart,
    domain,
    quotaBytes: quotaBytes(input.template),
    attributes: { ...DEFAULT_MAILBOX_ATTRIBUTES, ...mailboxAttributesFrom(input.template, input.authSource) },
    authSource: input.authSource,
    active: templateActive(input.template),
  });
  if (!inserted) return { ok: false, reason: 'exists' };
  await writeUserAcl(tx, username, aclValuesFrom(input.template));
  return { ok: true };
}

export type ApplyTemplateResult = { changed: false; reason: 'unchanged' | 'no_mailbox' } | { changed: true };

/**
 * Bring an existing mailbox in line with a template. Short-circuits, like mailcow, when the
 * stored attribute_hash and the name already match. A template may lower `active` (to 2 or 0)
 * but never raises it: an admin's deactivation survives logins and syncs.
 */
export async function applyTemplateToMailbox(
  tx: Tx,
  input: { username: string; template: MailboxTemplate; name?: string },
): Promise<ApplyTemplateResult> {
  const row = await lockTemplatedMailbox(tx, input.username);
  if (!row) return { changed: false, reason: 'no_mailbox' };
  const current = row.attributes;
  const hash = templateHash(input.template);
  const nameUnchanged = input.name === undefined || input.name === (row.name ?? '');
  if (current.attribute_hash === hash && nameUnchanged) return { changed: false, reason: 'unchanged' };

  const authSource = (row.authsource ?? 'mailcow') as MailboxAuthSource;
  const attributes = { ...current, ...mailboxAttributesFrom(input.template, authSource) };
  const currentActive = row.active;
  const wanted = templateActive(input.template);
  // Order of permission: 1 (login) > 2 (mail only) > 0 (off). Take the less permissive.
  const rank = (active: number) => (active === 1 ? 2 : active === 2 ? 1 : 0);
  const active = rank(wanted) < rank(currentActive) ? wanted : currentActive;

  await updateTemplatedMailbox(tx, input.username, {
    quotaBytes: quotaBytes(input.template),
    attributes,
    active,
    name: input.name ?? row.name ?? '',
  });
  await writeUserAcl(tx, input.username, aclValuesFrom(input.template));
  return { changed: true };
}
