// Domains and alias domains as admins manage them, with mailcow's rules
// (data/web/inc/functions.mailbox.inc.php, add/edit/delete 'domain' and 'alias_domain'):
// - only superadmins create and delete domains; a domain is deleted only when it has no mailbox;
// - a domain admin changes only its domains' description (mailcow's domainadmin branch of edit);
// - limits in MiB: defquota and maxquota must be > 0, defquota <= maxquota <= quota, and new
//   limits may not fall below what the domain already holds;
// - an alias domain points at an existing, non-backup-MX domain the admin may manage, and its
//   name is neither a domain nor another alias domain.
// Plain functions over narrow deps; denials are values; every change is audited in its transaction.
// Long (~420 lines) because domains and alias domains share one set of rules, one denial
// wording and one audit shape; splitting them would repeat the permission and limit checks.
import { domainToASCII } from 'node:url';
import { z } from 'zod';
import { type AuditActorRef, changedFields, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import * as store from '../storage/domains.js';
import { type Actor, can } from './roles.js';

export interface DomainDeps {
  db: Db;
}

/** Who asks, and from where (for the audit row). */
export interface ChangeBy {
  actor: Actor;
  /** The audit trail's name for the caller (admin or key, with its role). */
  auditActor: AuditActorRef;
  ip?: string | undefined;
}

export type Denial = 'not_found' | 'forbidden' | 'read_only' | 'invalid' | 'conflict';
export type Outcome<T> = { ok: true; value: T } | { ok: false; denial: Denial; message: string; field?: string };

const fail = (
  denial: Denial,
  message: string,
  field?: string,
): { ok: false; denial: Denial; message: string; field?: string } =>
  field ? { ok: false, denial, message, field } : { ok: false, denial, message };

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lower case, trimmed, IDN to ASCII (mailcow: idn_to_ascii(strtolower(trim(...)))); '' when not a domain name. */
export function normaliseDomain(raw: string): string {
  const ascii = domainToASCII(raw.trim().toLowerCase().replace(/\.$/, ''));
  if (!ascii || ascii.length > 253) return '';
  const labels = ascii.split('.');
  return labels.length >= 2 && labels.every((label) => LABEL.test(label)) ? ascii : '';
}

export const domainNameSchema = z
  .string({ error: 'required' })
  .max(255)
  .transform((value, context) => {
    const name = normaliseDomain(value);
    if (!name) context.addIssue({ code: 'custom', message: 'must be a domain name such as example.org' });
    return name;
  });

const limit = (what: string) =>
  z.coerce
    .number({ error: `${what} must be a whole number` })
    .int(`${what} must be a whole number`)
    .min(0, `${what} must not be negative`)
    .max(2_147_483_647, `${what} is too large`);

/** Fields an admin may set; absent ones keep their value (edit) or mailcow's default (create). */
/** true/false, or mailcow's 1/0. */
export const flagSchema = z
  .union([z.boolean(), z.literal(0), z.literal(1)], { error: 'must be true or false (or 1 or 0)' })
  .transform((value) => value === true || value === 1);

export const domainFieldsSchema = z.object({
  description: z.string().trim().max(255).optional(),
  active: flagSchema.optional(),
  mailboxes: limit('mailboxes').optional(),
  aliases: limit('aliases').optional(),
  defquota: limit('default quota').optional(),
  maxquota: limit('largest mailbox quota').optional(),
  quota: limit('domain quota').optional(),
  gal: flagSchema.optional(),
});
export type DomainFieldsInput = z.output<typeof domainFieldsSchema>;

/** mailcow's "Default" domain template (init_db.inc.php): 10 mailboxes, 400 aliases, 3 GiB default, 10 GiB max and total. */
export const DOMAIN_DEFAULTS: store.DomainFields = {
  description: '',
  active: 1,
  mailboxes: 10,
  aliases: 400,
  defquota: 3072,
  maxquota: 10240,
  quota: 10240,
  backupmx: 0,
  gal: 1,
};

function merge(current: store.DomainFields, input: DomainFieldsInput): store.DomainFields {
  return {
    ...current,
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(input.active !== undefined ? { active: input.active ? 1 : 0 } : {}),
    ...(input.gal !== undefined ? { gal: input.gal ? 1 : 0 } : {}),
    ...(input.mailboxes !== undefined ? { mailboxes: input.mailboxes } : {}),
    ...(input.aliases !== undefined ? { aliases: input.aliases } : {}),
    ...(input.defquota !== undefined ? { defquota: input.defquota } : {}),
    ...(input.maxquota !== undefined ? { maxquota: input.maxquota } : {}),
    ...(input.quota !== undefined ? { quota: input.quota } : {}),
  };
}

/**
 * mailcow's checks, in mailcow's order, with its meaning spelled out. On an edit (`changed`
 * given) only the limits being changed are checked, so a domain that already exceeds an old
 * limit (set outside postern) can still get a new description.
 */
function checkLimits(fields: store.DomainFields, usage?: store.DomainUsage, changed?: ReadonlySet<string>) {
  const touches = (...keys: string[]) => !changed || keys.some((key) => changed.has(key));
  if (touches('defquota', 'maxquota', 'quota')) {
    if (fields.defquota <= 0) return fail('invalid', 'the default mailbox quota must be more than 0 MiB', 'defquota');
    if (fields.maxquota <= 0) return fail('invalid', 'the largest mailbox quota must be more than 0 MiB', 'maxquota');
    if (fields.defquota > fields.maxquota)
      return fail('invalid', 'the default mailbox quota exceeds the largest mailbox quota', 'defquota');
    if (fields.maxquota > fields.quota)
      return fail('invalid', 'the largest mailbox quota exceeds the domain quota', 'maxquota');
  }
  if (!usage) return undefined;
  if (touches('maxquota') && usage.biggestMailboxMiB > fields.maxquota)
    return fail('conflict', `a mailbox of this domain already has ${usage.biggestMailboxMiB} MiB`, 'maxquota');
  if (touches('quota') && usage.quotaSumMiB > fields.quota)
    return fail('conflict', `the mailboxes of this domain already hold ${usage.quotaSumMiB} MiB of quota`, 'quota');
  if (touches('mailboxes') && usage.mailboxCount > fields.mailboxes)
    return fail('conflict', `this domain already has ${usage.mailboxCount} mailboxes`, 'mailboxes');
  if (touches('aliases') && usage.aliasCount > fields.aliases)
    return fail('conflict', `this domain already has ${usage.aliasCount} aliases`, 'aliases');
  return undefined;
}

function permission(actor: Actor, action: 'read' | 'write', domain: string) {
  const permitted = can(actor, action, { kind: 'domain', domain });
  if (permitted.allowed) return undefined;
  if (permitted.denial === 'not_found') return fail('not_found', `no domain ${domain}`);
  if (permitted.denial === 'read_only') return fail('read_only', 'this API key is read-only');
  return fail('forbidden', 'your role does not allow this');
}

/** Creating and deleting domains is the superadmin's (mailcow: role "admin" only). */
function superadminOnly(actor: Actor) {
  if (actor.role !== 'superadmin') return fail('forbidden', 'only a superadmin creates or deletes domains');
  if (actor.access === 'ro') return fail('read_only', 'this API key is read-only');
  return undefined;
}

const fieldsOf = (record: store.DomainRecord): store.DomainFields => ({
  description: record.description,
  active: record.active,
  mailboxes: record.mailboxes,
  aliases: record.aliases,
  defquota: record.defquota,
  maxquota: record.maxquota,
  quota: record.quota,
  backupmx: record.backupmx,
  gal: record.gal,
});

/** The fields that differ, as {field: {from, to}} for the audit row. */
function changes(before: store.DomainFields, after: store.DomainFields) {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of Object.keys(after) as (keyof store.DomainFields)[]) {
    if (before[key] !== after[key]) out[key] = { from: before[key], to: after[key] };
  }
  return out;
}

export const DOMAIN_PAGE_SIZE = 100;

/** Domains the actor may see: all for a superadmin, the ACL's for a domain admin. */
export async function listDomainsFor(
  deps: DomainDeps,
  actor: Actor,
  query: { search?: string; after?: string; limit?: number } = {},
): Promise<store.DomainListRow[]> {
  return store.listDomains(deps.db, {
    ...(actor.role === 'superadmin' ? {} : { only: actor.domains }),
    ...(query.search ? { search: query.search } : {}),
    ...(query.after !== undefined ? { after: query.after } : {}),
    limit: Math.min(query.limit ?? DOMAIN_PAGE_SIZE, 500),
  });
}

export interface DomainDetails {
  domain: store.DomainRecord;
  usage: store.DomainUsage;
  aliasDomains: store.AliasDomainRecord[];
}

export async function getDomain(deps: DomainDeps, actor: Actor, raw: string): Promise<Outcome<DomainDetails>> {
  const name = normaliseDomain(raw);
  const denied = permission(actor, 'read', name || raw);
  if (denied) return denied;
  const domain = name ? await store.findDomain(deps.db, name) : undefined;
  if (!domain) return fail('not_found', `no domain ${name || raw}`);
  const usage = await store.domainUsage(deps.db, domain.domain);
  const aliasDomains = await store.listAliasDomains(deps.db, { target: domain.domain, limit: 500 });
  return { ok: true, value: { domain, usage, aliasDomains } };
}

export async function createDomain(
  deps: DomainDeps,
  by: ChangeBy,
  input: { domain: string } & DomainFieldsInput,
): Promise<Outcome<store.DomainRecord>> {
  const denied = superadminOnly(by.actor);
  if (denied) return denied;
  const name = normaliseDomain(input.domain);
  if (!name) return fail('invalid', 'must be a domain name such as example.org', 'domain');
  const fields = merge(DOMAIN_DEFAULTS, input);
  if (!fields.description) fields.description = name; // mailcow: an empty description becomes the name
  const problem = checkLimits(fields);
  if (problem) return problem;
  const created = await deps.db.transaction(async (tx) => {
    if (await store.isDomainNameTaken(tx, name)) return false;
    await store.insertDomain(tx, name, fields);
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'domain.create',
      target: name,
      domain: name,
      after: { ...fields },
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return true;
  });
  if (!created) return fail('conflict', `${name} already exists as a domain or alias domain`, 'domain');
  const record = await store.findDomain(deps.db, name);
  return record ? { ok: true, value: record } : fail('not_found', `no domain ${name}`);
}

export async function updateDomain(
  deps: DomainDeps,
  by: ChangeBy,
  raw: string,
  input: DomainFieldsInput,
): Promise<Outcome<store.DomainRecord>> {
  const name = normaliseDomain(raw);
  const denied = permission(by.actor, 'write', name || raw);
  if (denied) return denied;
  if (by.actor.role !== 'superadmin') {
    const others = Object.keys(input).filter(
      (key) => key !== 'description' && input[key as keyof DomainFieldsInput] !== undefined,
    );
    if (others.length)
      return fail('forbidden', `a domain admin changes only the description (not ${others.join(', ')})`);
  }
  const outcome = await deps.db.transaction(async (tx) => {
    const current = name ? await store.lockDomain(tx, name) : false;
    const record = current ? await store.findDomain(tx, name) : undefined;
    if (!record) return fail('not_found', `no domain ${name || raw}`);
    const before = fieldsOf(record);
    const after = merge(before, input);
    const changed = changes(before, after);
    const problem = checkLimits(after, await store.domainUsage(tx, name), new Set(Object.keys(changed)));
    if (problem) return problem;
    if (Object.keys(changed).length === 0) return { ok: true as const, value: record };
    await store.updateDomain(tx, name, after);
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'domain.update',
      target: name,
      domain: name,
      ...changedFields({ ...before }, { ...after }),
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return { ok: true as const, value: record };
  });
  if (!outcome.ok) return outcome;
  const record = await store.findDomain(deps.db, name);
  return record ? { ok: true, value: record } : fail('not_found', `no domain ${name}`);
}

export async function deleteDomain(deps: DomainDeps, by: ChangeBy, raw: string): Promise<Outcome<{ domain: string }>> {
  const name = normaliseDomain(raw);
  const scoped = permission(by.actor, 'write', name || raw);
  if (scoped) return scoped;
  const denied = superadminOnly(by.actor);
  if (denied) return denied;
  return deps.db.transaction(async (tx) => {
    const record = name ? await store.lockDomain(tx, name) : false;
    if (!record) return fail('not_found', `no domain ${name || raw}`);
    const mailboxes = await store.countDomainMailboxes(tx, name);
    if (mailboxes > 0) {
      return fail(
        'conflict',
        `${name} still has ${mailboxes} mailbox${mailboxes === 1 ? '' : 'es'}; delete them first`,
      );
    }
    await store.deleteDomainRows(tx, name);
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'domain.delete',
      target: name,
      domain: name,
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return { ok: true as const, value: { domain: name } };
  });
}

export async function listAliasDomainsFor(
  deps: DomainDeps,
  actor: Actor,
  query: { target?: string } = {},
): Promise<store.AliasDomainRecord[]> {
  return store.listAliasDomains(deps.db, {
    ...(actor.role === 'superadmin' ? {} : { only: actor.domains }),
    ...(query.target ? { target: normaliseDomain(query.target) } : {}),
    limit: 1000,
  });
}

/** An alias domain is the target domain's: reading and changing it needs the target in the ACL. */
async function findAliasDomainFor(deps: Pick<Db, 'one'>, actor: Actor, raw: string, action: 'read' | 'write') {
  const name = normaliseDomain(raw);
  const record = name ? await store.findAliasDomain(deps, name) : undefined;
  if (!record) return fail('not_found', `no alias domain ${name || raw}`);
  const denied = permission(actor, action, record.targetDomain);
  if (denied) return denied.denial === 'not_found' ? fail('not_found', `no alias domain ${name}`) : denied;
  return { ok: true as const, value: record };
}

export async function getAliasDomain(
  deps: DomainDeps,
  actor: Actor,
  raw: string,
): Promise<Outcome<store.AliasDomainRecord>> {
  return findAliasDomainFor(deps.db, actor, raw, 'read');
}

export async function createAliasDomain(
  deps: DomainDeps,
  by: ChangeBy,
  input: { aliasDomain: string; targetDomain: string; active?: boolean },
): Promise<Outcome<store.AliasDomainRecord>> {
  const alias = normaliseDomain(input.aliasDomain);
  const target = normaliseDomain(input.targetDomain);
  if (!target) return fail('invalid', 'the target must be a domain name', 'target_domain');
  const denied = permission(by.actor, 'write', target);
  if (denied) return denied.denial === 'not_found' ? fail('not_found', `no domain ${target}`, 'target_domain') : denied;
  if (!alias) return fail('invalid', 'the alias domain must be a domain name such as example.net', 'alias_domain');
  if (alias === target) return fail('invalid', 'an alias domain cannot be its own target', 'alias_domain');
  const outcome = await deps.db.transaction(async (tx) => {
    const targetRecord = await store.findDomain(tx, target);
    if (!targetRecord) return fail('not_found', `no domain ${target}`, 'target_domain');
    if (targetRecord.backupmx === 1)
      return fail('conflict', `${target} is a relay (backup MX) domain`, 'target_domain');
    if (await store.isDomainNameTaken(tx, alias))
      return fail('conflict', `${alias} already exists as a domain or alias domain`, 'alias_domain');
    const active = input.active === false ? 0 : 1;
    await store.insertAliasDomain(tx, { aliasDomain: alias, targetDomain: target, active });
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'alias_domain.create',
      target: alias,
      domain: target,
      after: { target_domain: target, active },
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return { ok: true as const, value: undefined };
  });
  if (!outcome.ok) return outcome;
  return findAliasDomainFor(deps.db, by.actor, alias, 'read');
}

export async function setAliasDomainActive(
  deps: DomainDeps,
  by: ChangeBy,
  raw: string,
  active: boolean,
): Promise<Outcome<store.AliasDomainRecord>> {
  const found = await findAliasDomainFor(deps.db, by.actor, raw, 'write');
  if (!found.ok) return found;
  const wanted = active ? 1 : 0;
  if (found.value.active !== wanted) {
    await deps.db.transaction(async (tx) => {
      await store.setAliasDomainActive(tx, found.value.aliasDomain, wanted);
      await recordAudit(tx, {
        actor: by.auditActor,
        action: active ? 'alias_domain.activate' : 'alias_domain.deactivate',
        target: found.value.aliasDomain,
        domain: found.value.targetDomain,
        before: { active: found.value.active },
        after: { active: wanted },
        ...(by.ip ? { ip: by.ip } : {}),
      });
    });
  }
  return findAliasDomainFor(deps.db, by.actor, found.value.aliasDomain, 'read');
}

export async function deleteAliasDomain(
  deps: DomainDeps,
  by: ChangeBy,
  raw: string,
): Promise<Outcome<{ aliasDomain: string }>> {
  const found = await findAliasDomainFor(deps.db, by.actor, raw, 'write');
  if (!found.ok) return found;
  const name = found.value.aliasDomain;
  const deleted = await deps.db.transaction(async (tx) => {
    if (!(await store.deleteAliasDomainRows(tx, name))) return false;
    await recordAudit(tx, {
      actor: by.auditActor,
      action: 'alias_domain.delete',
      target: name,
      domain: found.value.targetDomain,
      before: { target_domain: found.value.targetDomain, active: found.value.active },
      ...(by.ip ? { ip: by.ip } : {}),
    });
    return true;
  });
  return deleted ? { ok: true, value: { aliasDomain: name } } : fail('not_found', `no alias domain ${name}`);
}
