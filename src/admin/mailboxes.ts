// Mailboxes as admins manage them, with mailcow's rules (functions.mailbox.inc.php, add/edit/
// delete 'mailbox'): quota in MiB within the domain's largest-mailbox and total quotas, 0
// (unlimited) for superadmins only, no more mailboxes than the domain allows; a new mailbox
// gets the rows mailcow adds (self alias, quota2, quota2replica, user_acl from the template);
// local passwords hashed with POSTERN_PASSWORD_SCHEME; the auth source switch keeps the local
// hash (switching back to mailcow restores it). The maildir is Dovecot's: nothing here touches it.
// Long (~450 lines) because create, edit, password, auth source and delete share the quota
// rules, the ACL lookup that answers 404 outside a domain admin's domains and the audit shape.
import { z } from 'zod';
import { foldAddress } from '../address.js';
import type { NewHashScheme } from '../passwords/hash-password.js';
import type { HashPool } from '../passwords/hash-pool.js';
import { type AppPasswordRecord, deleteAppPassword, listAppPasswords } from '../storage/app-passwords.js';
import { type AuditRow, changedFields, queryAudit, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { domainUsage, findDomain, lockDomain } from '../storage/domains.js';
import { readIdpRows } from '../storage/identity-provider.js';
import {
  type AdminMailbox,
  deleteMailboxRows,
  findAdminMailbox,
  type LastLogin,
  lastLogins,
  listAdminMailboxes,
  lockMailbox,
  type MailboxListRow,
  setMailboxAuthSource,
  setMailboxPassword,
  setNewMailboxCredentials,
  updateMailboxFields,
} from '../storage/mailbox-admin.js';
import { searchAdminMailboxes } from '../storage/mailboxes-search.js';
import { findMailboxTemplateByName, listMailboxTemplates, type MailboxTemplate } from '../storage/templates.js';
import { createMailboxFromTemplate } from '../templates/apply-template.js';
import type { ChangeBy, Outcome } from './domains.js';
import { normaliseDomain } from './domains.js';
import { type Actor, can, domainOf } from './roles.js';

export interface MailboxDeps {
  db: Db;
  hashPool: Pick<HashPool, 'hash'>;
  passwordScheme: NewHashScheme;
}

type Denial = 'not_found' | 'forbidden' | 'read_only' | 'invalid' | 'conflict';
const fail = (denial: Denial, message: string, field?: string) =>
  field ? { ok: false as const, denial, message, field } : { ok: false as const, denial, message };

const MIB = 1024 * 1024;
export const MAILBOX_PAGE_SIZE = 50;
/** mailcow's own rule lives in its Redis (PASSWD_POLICY); postern asks for at least this. */
export const MIN_PASSWORD_LENGTH = 8;

/** mailbox.attributes flags for the protocols a mailbox may use ("1"/"0"). */
export const PROTOCOL_FLAGS = [
  'imap_access',
  'pop3_access',
  'smtp_access',
  'sieve_access',
  'sogo_access',
  'eas_access',
  'dav_access',
] as const;
export type ProtocolFlag = (typeof PROTOCOL_FLAGS)[number];

export const passwordSchema = z
  .string({ error: 'required' })
  .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(256, 'must be at most 256 characters')
  .refine((value) => !/[\r\n\0]/.test(value), 'must not contain line breaks or NUL');

const quotaMiB = z.coerce
  .number({ error: 'quota must be a whole number of MiB' })
  .int('quota must be a whole number of MiB')
  .min(0, 'quota must not be negative')
  .max(8_796_093_022_207, 'quota is too large');

export const createMailboxSchema = z.object({
  local_part: z.string({ error: 'required' }).trim().min(1, 'required').max(64),
  domain: z.string({ error: 'required' }).max(255),
  name: z.string().trim().max(255).optional(),
  password: passwordSchema,
  quota: quotaMiB.optional(),
  active: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
  template: z.string().max(255).optional(),
});
export type CreateMailboxInput = z.output<typeof createMailboxSchema>;

export const updateMailboxSchema = z.object({
  name: z.string().trim().max(255).optional(),
  quota: quotaMiB.optional(),
  /** 1 = active, 2 = receives mail but signs in nowhere, 0 = disabled (mailcow's values). */
  active: z.union([z.literal(0), z.literal(1), z.literal(2)], { error: 'must be 0, 1 or 2' }).optional(),
  protocols: z.partialRecord(z.enum(PROTOCOL_FLAGS), z.boolean()).optional(),
});
export type UpdateMailboxInput = z.output<typeof updateMailboxSchema>;

function permissionFor(actor: Actor, action: 'read' | 'write', domain: string, missing: string) {
  const permitted = can(actor, action, { kind: 'mailbox', domain });
  if (permitted.allowed) return undefined;
  if (permitted.denial === 'not_found') return fail('not_found', missing);
  if (permitted.denial === 'read_only') return fail('read_only', 'this API key is read-only');
  return fail('forbidden', 'your role does not allow this');
}

/**
 * The mailbox, if the actor may act on it: checked on the name's domain before the lookup (no
 * query for other domains) and on the row's own domain after it; outside the actor's domains
 * the answer is the same as for a mailbox that does not exist.
 */
export async function findMailboxFor(
  deps: Pick<MailboxDeps, 'db'>,
  actor: Actor,
  raw: string,
  action: 'read' | 'write',
): Promise<Outcome<AdminMailbox>> {
  const name = foldAddress(raw.trim().slice(0, 255));
  const missing = `no mailbox ${name}`;
  if (!/^[^@\s]+@[^@\s]+$/.test(name)) return fail('not_found', missing);
  const early = permissionFor(actor, action, domainOf(name), missing);
  if (early) return early;
  const mailbox = await findAdminMailbox(deps.db, name);
  if (!mailbox) return fail('not_found', missing);
  const late = permissionFor(actor, action, mailbox.domain, missing);
  if (late) return late;
  return { ok: true, value: mailbox };
}

/** A page of the mailbox list; `next` continues it (`after`), null at the end. */
export interface MailboxPage {
  rows: MailboxListRow[];
  next: string | null;
}

/**
 * The mailboxes an actor may see, by address, keyset-paged. `search` keeps those whose address
 * (local part or domain) or name contains the text, case-insensitively; such a page may hold
 * fewer rows than the limit and still have a `next` (the search's scan is bounded per request).
 */
export async function listMailboxesFor(
  deps: Pick<MailboxDeps, 'db'>,
  actor: Actor,
  query: { domain?: string; search?: string; after?: string; limit?: number },
): Promise<MailboxPage> {
  const domain = query.domain ? normaliseDomain(query.domain) || query.domain.toLowerCase() : undefined;
  // A domain outside a domain admin's ACL lists nothing, exactly like an unknown domain.
  if (domain && !can(actor, 'read', { kind: 'mailbox', domain }).allowed) return { rows: [], next: null };
  const limit = Math.min(query.limit ?? MAILBOX_PAGE_SIZE, 500);
  const filters = {
    ...(actor.role === 'superadmin' ? {} : { only: actor.domains }),
    ...(domain ? { domain } : {}),
    ...(query.after !== undefined ? { after: query.after } : {}),
    limit,
  };
  const text = query.search?.trim() ?? '';
  if (text !== '') {
    const found = await searchAdminMailboxes(deps.db, { ...filters, text });
    const last = found.rows.length === limit ? found.rows.at(-1)?.username : undefined;
    return { rows: found.rows, next: last ?? found.scannedTo ?? null };
  }
  const rows = await listAdminMailboxes(deps.db, filters);
  return { rows, next: rows.length === limit ? (rows.at(-1)?.username ?? null) : null };
}

export interface MailboxDetails {
  mailbox: AdminMailbox;
  appPasswords: AppPasswordRecord[];
  logins: LastLogin[];
  audit: AuditRow[];
}

export async function getMailboxDetails(
  deps: Pick<MailboxDeps, 'db'>,
  actor: Actor,
  raw: string,
): Promise<Outcome<MailboxDetails>> {
  const found = await findMailboxFor(deps, actor, raw, 'read');
  if (!found.ok) return found;
  const username = found.value.username;
  const [appPasswords, logins, audit] = await Promise.all([
    listAppPasswords(deps.db, username),
    lastLogins(deps.db, username),
    can(actor, 'read', { kind: 'audit' }).allowed ? queryAudit(deps.db, { target: username, limit: 20 }) : [],
  ]);
  return { ok: true, value: { mailbox: found.value, appPasswords, logins, audit } };
}

/** mailcow: the named template, else the first mailbox template; none at all means mailcow's defaults. */
async function templateFor(db: Db, name: string | undefined): Promise<MailboxTemplate | undefined> {
  if (name) return findMailboxTemplateByName(db, name);
  return (await listMailboxTemplates(db))[0] ?? { id: 0, name: '', attributes: {}, rawAttributes: '{}' };
}

export async function createMailbox(
  deps: MailboxDeps,
  by: ChangeBy,
  input: CreateMailboxInput,
): Promise<Outcome<AdminMailbox>> {
  const domain = normaliseDomain(input.domain);
  if (!domain) return fail('invalid', 'the domain must be a domain name', 'domain');
  const localPart = foldAddress(input.local_part);
  if (!/^[^@\s,;<>"]+$/.test(localPart))
    return fail('invalid', 'the local part may not hold @, spaces, commas or quotes', 'local_part');
  const username = `${localPart}@${domain}`;
  const denied = permissionFor(by.actor, 'write', domain, `no domain ${domain}`);
  if (denied) return denied.denial === 'not_found' ? { ...denied, field: 'domain' } : denied;
  const template = await templateFor(deps.db, input.template);
  if (!template) return fail('invalid', `no mailbox template ${input.template}`, 'template');
  // Hash before the transaction: bcrypt takes a while and must not hold row locks.
  const hash = await deps.hashPool.hash(input.password, deps.passwordScheme);
  const outcome = await deps.db.transaction(async (tx) => {
    const domainRecord = await findDomain(tx, domain);
    if (!domainRecord) return fail('not_found', `no domain ${domain}`, 'domain');
    await lockDomain(tx, domain);
    const usage = await domainUsage(tx, domain);
    const quota = input.quota ?? domainRecord.defquota;
    if (quota === 0 && by.actor.role !== 'superadmin')
      return fail('forbidden', 'only a superadmin gives a mailbox unlimited quota', 'quota');
    if (usage.mailboxCount >= domainRecord.mailboxes)
      return fail(
        'conflict',
        `${domain} already has ${usage.mailboxCount} of ${domainRecord.mailboxes} mailboxes`,
        'domain',
      );
    if (quota > domainRecord.maxquota)
      return fail(
        'invalid',
        `the quota exceeds the domain's largest mailbox quota (${domainRecord.maxquota} MiB)`,
        'quota',
      );
    if (usage.quotaSumMiB + quota > domainRecord.quota)
      return fail(
        'conflict',
        `only ${domainRecord.quota - usage.quotaSumMiB} MiB of ${domain}'s quota are left`,
        'quota',
      );
    const created = await createMailboxFromTemplate(tx, {
      username,
      name: input.name || localPart,
      authSource: 'mailcow',
      template,
    });
    if (!created.ok) {
      const messages = {
        unknown_domain: `no domain ${domain}`,
        inactive_domain: `${domain} is inactive`,
        exists: `${username} already exists as a mailbox or alias`,
        invalid_address: `${username} is not a mailbox address`,
        collides: `${username} is another spelling of an existing mailbox or alias`,
        unusable_address: created.detail ?? `${username} cannot be used`,
      } as const;
      return fail(
        created.reason === 'exists' || created.reason === 'collides' ? 'conflict' : 'invalid',
        messages[created.reason],
        'local_part',
      );
    }
    const active = input.active ?? 1;
    await setNewMailboxCredentials(tx, username, { hash, quotaBytes: quota * MIB, active });
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'mailbox.create',
      target: username,
      after: {
        name: input.name || localPart,
        quota_mib: quota,
        active,
        template: template.name || null,
        password: 'set',
      },
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return { ok: true as const, value: undefined };
  });
  if (!outcome.ok) return outcome;
  return findMailboxFor(deps, by.actor, username, 'read');
}

const flagOf = (attributes: Record<string, unknown>, flag: ProtocolFlag) => String(attributes[flag] ?? '1') === '1';

export async function updateMailbox(
  deps: MailboxDeps,
  by: ChangeBy,
  raw: string,
  input: UpdateMailboxInput,
): Promise<Outcome<AdminMailbox>> {
  const found = await findMailboxFor(deps, by.actor, raw, 'write');
  if (!found.ok) return found;
  const mailbox = found.value;
  const outcome = await deps.db.transaction(async (tx) => {
    const current = await findAdminMailbox(tx, mailbox.username);
    if (!current) return fail('not_found', `no mailbox ${mailbox.username}`);
    await lockMailbox(tx, mailbox.username);
    const quotaMib = input.quota ?? Math.round(current.quota / MIB);
    if (input.quota !== undefined && input.quota !== Math.round(current.quota / MIB)) {
      if (input.quota === 0 && by.actor.role !== 'superadmin')
        return fail('forbidden', 'only a superadmin gives a mailbox unlimited quota', 'quota');
      const domainRecord = await findDomain(tx, current.domain);
      if (domainRecord) {
        const usage = await domainUsage(tx, current.domain);
        if (input.quota > domainRecord.maxquota)
          return fail(
            'invalid',
            `the quota exceeds the domain's largest mailbox quota (${domainRecord.maxquota} MiB)`,
            'quota',
          );
        const others = usage.quotaSumMiB - Math.round(current.quota / MIB);
        if (others + input.quota > domainRecord.quota)
          return fail(
            'conflict',
            `only ${domainRecord.quota - others} MiB of ${current.domain}'s quota are left`,
            'quota',
          );
      }
    }
    const attributes = { ...current.attributes };
    for (const flag of PROTOCOL_FLAGS) {
      const wanted = input.protocols?.[flag];
      if (wanted !== undefined) attributes[flag] = wanted ? '1' : '0';
    }
    const before = {
      name: current.name,
      quota_mib: Math.round(current.quota / MIB),
      active: current.active,
      ...Object.fromEntries(PROTOCOL_FLAGS.map((flag) => [flag, flagOf(current.attributes, flag)])),
    };
    const after = {
      name: input.name ?? current.name,
      quota_mib: quotaMib,
      active: input.active ?? current.active,
      ...Object.fromEntries(PROTOCOL_FLAGS.map((flag) => [flag, flagOf(attributes, flag)])),
    };
    const changed = changedFields(before, after);
    if (Object.keys(changed.after).length === 0) return { ok: true as const, value: undefined };
    await updateMailboxFields(tx, current.username, {
      name: after.name,
      quota: input.quota !== undefined ? input.quota * MIB : current.quota,
      active: after.active,
      attributes,
    });
    const disabled = input.active !== undefined && input.active !== 1 && current.active === 1;
    await recordAudit(tx, {
      actor: by.auditActor,
      action: disabled ? 'mailbox.disable' : 'mailbox.update',
      target: current.username,
      ...changed,
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return { ok: true as const, value: undefined };
  });
  if (!outcome.ok) return outcome;
  return findMailboxFor(deps, by.actor, mailbox.username, 'read');
}

export async function setPassword(
  deps: MailboxDeps,
  by: ChangeBy,
  raw: string,
  password: string,
): Promise<Outcome<AdminMailbox>> {
  const found = await findMailboxFor(deps, by.actor, raw, 'write');
  if (!found.ok) return found;
  const checked = passwordSchema.safeParse(password);
  if (!checked.success)
    return fail('invalid', `password: ${checked.error.issues[0]?.message ?? 'invalid'}`, 'password');
  const mailbox = found.value;
  if (mailbox.authsource !== 'mailcow' && mailbox.authsource !== null) {
    return fail(
      'conflict',
      `${mailbox.username} signs in through ${mailbox.authsource}; its password is kept there (switch the auth source to mailcow first)`,
      'password',
    );
  }
  const hash = await deps.hashPool.hash(checked.data, deps.passwordScheme);
  await deps.db.transaction(async (tx) => {
    await setMailboxPassword(tx, mailbox.username, hash);
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'mailbox.password',
      target: mailbox.username,
      after: { password: 'changed' },
      ...(by.ip ? { ip: by.ip } : {}),
    });
  });
  return { ok: true, value: mailbox };
}

export type AuthSourceChoice = 'mailcow' | 'keycloak' | 'generic-oidc';

/** The existing rule: an IdP source only when that provider type is the configured one. */
export async function switchAuthSource(
  deps: Pick<MailboxDeps, 'db'>,
  by: ChangeBy,
  raw: string,
  authsource: AuthSourceChoice,
): Promise<Outcome<AdminMailbox>> {
  const found = await findMailboxFor(deps, by.actor, raw, 'write');
  if (!found.ok) return found;
  const mailbox = found.value;
  if (authsource !== 'mailcow') {
    const configured = (await readIdpRows(deps.db)).authsource;
    if (!configured) return fail('conflict', `no identity provider is configured; cannot switch to ${authsource}`);
    if (configured !== authsource)
      return fail('conflict', `the configured identity provider is ${configured}, not ${authsource}`);
  }
  if (mailbox.authsource !== authsource) {
    await deps.db.transaction(async (tx) => {
      await setMailboxAuthSource(tx, mailbox.username, authsource);
      await recordAudit(tx, {
        actor: by.auditActor,
        action: 'mailbox.authsource',
        target: mailbox.username,
        before: { authsource: mailbox.authsource },
        after: { authsource },
        ...(by.ip ? { ip: by.ip } : {}),
      });
    });
  }
  return findMailboxFor(deps, by.actor, mailbox.username, 'read');
}

export async function deleteMailbox(
  deps: Pick<MailboxDeps, 'db'>,
  by: ChangeBy,
  raw: string,
): Promise<Outcome<{ username: string }>> {
  const found = await findMailboxFor(deps, by.actor, raw, 'write');
  if (!found.ok) return found;
  const mailbox = found.value;
  const deleted = await deps.db.transaction(async (tx) => {
    if (!(await deleteMailboxRows(tx, mailbox.username))) return false;
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'mailbox.delete',
      target: mailbox.username,
      before: { name: mailbox.name, quota_mib: Math.round(mailbox.quota / MIB), active: mailbox.active },
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return true;
  });
  return deleted
    ? { ok: true, value: { username: mailbox.username } }
    : fail('not_found', `no mailbox ${mailbox.username}`);
}

export async function revokeAppPassword(
  deps: Pick<MailboxDeps, 'db'>,
  by: ChangeBy,
  raw: string,
  id: number,
): Promise<Outcome<{ id: number }>> {
  const found = await findMailboxFor(deps, by.actor, raw, 'write');
  if (!found.ok) return found;
  const username = found.value.username;
  const deleted = await deps.db.transaction(async (tx) => {
    if (!(await deleteAppPassword(tx, username, id))) return false;
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'app_password.delete',
      target: username,
      detail: { id },
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return true;
  });
  return deleted ? { ok: true, value: { id } } : fail('not_found', `no app password ${id} for ${username}`);
}
