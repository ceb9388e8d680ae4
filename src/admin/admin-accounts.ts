// Admin accounts as use-cases: create, change role/ACL/active, delete, set a password. Denials
// (bad input, unknown account, last superadmin) are returned values; faults throw. The rule that
// at least one active superadmin remains is checked under row locks, inside the change's transaction.
import type { NewHashScheme } from '../passwords/hash-password.js';
import {
  type AdminAccount,
  deleteAdminRows,
  existingDomains,
  findAdmin,
  insertAdmin,
  lockActiveSuperadmins,
  mergeAdminAttributes,
  replaceAdminDomains,
  updateAdminFlags,
  updateAdminPassword,
} from '../storage/admins.js';
import type { Db, Tx } from '../storage/db.js';
import { hasAnyActiveTfa } from '../storage/two-factor.js';

export interface AdminAccountDeps {
  db: Db;
  hashPool: { hash(password: string, scheme: NewHashScheme): Promise<string> };
  passwordScheme: NewHashScheme;
}

export type AccountDenial =
  | 'invalid_username'
  | 'weak_password'
  | 'exists'
  | 'not_found'
  | 'unknown_domain'
  | 'no_domains'
  | 'last_superadmin'
  | 'actor_not_enrolled';

export type AccountOutcome<T> = { ok: true; value: T } | { ok: false; denial: AccountDenial; message: string };

const denied = (denial: AccountDenial, message: string) => ({ ok: false as const, denial, message });

/** mailcow's rule (functions.admin.inc.php): letters and digits plus _ . -, and never "API". */
export function isValidAdminUsername(username: string): boolean {
  return /^[a-z0-9_.-]{1,255}$/.test(username) && /[a-z0-9]/.test(username) && username !== 'api';
}

export const MIN_ADMIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_BYTES = 1024;

export function passwordProblem(password: string): string | undefined {
  if ([...password].length < MIN_ADMIN_PASSWORD_LENGTH)
    return `the password must be at least ${MIN_ADMIN_PASSWORD_LENGTH} characters long`;
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return 'the password is too long';
  return undefined;
}

export function normaliseUsername(raw: string): string {
  return raw.trim().toLowerCase();
}

function normaliseDomains(domains: readonly string[]): string[] {
  return [...new Set(domains.map((domain) => domain.trim().toLowerCase()).filter(Boolean))].sort();
}

async function checkDomains(db: Pick<Db, 'one' | 'many'>, domains: string[]): Promise<string | undefined> {
  if (domains.length === 0) return 'a domain admin needs at least one domain';
  const known = new Set(await existingDomains(db, domains));
  const unknown = domains.filter((domain) => !known.has(domain));
  return unknown.length ? `no such domain: ${unknown.join(', ')}` : undefined;
}

export interface NewAdmin {
  username: string;
  password: string;
  superadmin: boolean;
  /** Required (non-empty) for a domain admin, ignored for a superadmin. */
  domains?: readonly string[];
  active?: boolean;
}

export async function createAdminAccount(
  deps: AdminAccountDeps,
  input: NewAdmin,
): Promise<AccountOutcome<AdminAccount>> {
  const username = normaliseUsername(input.username);
  if (!isValidAdminUsername(username))
    return denied('invalid_username', 'a username is letters, digits, "_", "." and "-" (and not "API")');
  const weak = passwordProblem(input.password);
  if (weak) return denied('weak_password', weak);
  const domains = input.superadmin ? [] : normaliseDomains(input.domains ?? []);
  if (!input.superadmin) {
    const problem = await checkDomains(deps.db, domains);
    if (problem) return denied(domains.length ? 'unknown_domain' : 'no_domains', problem);
  }
  if (await findAdmin(deps.db, username)) return denied('exists', `an admin ${username} already exists`);
  const passwordHash = await deps.hashPool.hash(input.password, deps.passwordScheme);
  try {
    await deps.db.transaction((tx) =>
      insertAdmin(tx, { username, passwordHash, superadmin: input.superadmin, domains, active: input.active ?? true }),
    );
  } catch (error) {
    // Two creations racing: the primary key decides.
    if ((error as { code?: string }).code === 'conflict')
      return denied('exists', `an admin ${username} already exists`);
    throw error;
  }
  const created = await findAdmin(deps.db, username);
  if (!created) throw new Error('admin row vanished right after insert');
  return { ok: true, value: created };
}

export interface AdminChange {
  superadmin?: boolean;
  active?: boolean;
  /** A domain admin's new ACL (replaces the old one). */
  domains?: readonly string[];
  /** mailcow's attributes.force_tfa: the account must enrol TOTP at its next sign-in. */
  forceTfa?: boolean;
}

/** Before and after, for the audit trail (never a hash). */
export interface ChangedAdmin {
  before: AdminAccount;
  after: AdminAccount;
}

export async function changeAdminAccount(
  deps: Pick<AdminAccountDeps, 'db'>,
  rawUsername: string,
  change: AdminChange,
  /** The admin account making the change (a signed-in admin), if it is one and not a key. */
  actorAccount?: string,
): Promise<AccountOutcome<ChangedAdmin>> {
  const username = normaliseUsername(rawUsername);
  const before = await findAdmin(deps.db, username);
  if (!before) return denied('not_found', `no admin ${username}`);
  // No self-lockout (Mailhardener's rule): whoever turns enforcement on uses a second factor already.
  if (change.forceTfa === true && actorAccount && !(await hasAnyActiveTfa(deps.db, actorAccount))) {
    return denied('actor_not_enrolled', 'set up your own two-factor sign-in before requiring it of anyone');
  }
  const superadmin = change.superadmin ?? before.superadmin;
  const active = change.active ?? before.active;
  const domains = superadmin ? [] : normaliseDomains(change.domains ?? before.domains);
  if (!superadmin) {
    const problem = await checkDomains(deps.db, domains);
    if (problem) return denied(domains.length ? 'unknown_domain' : 'no_domains', problem);
  }
  const outcome = await deps.db.transaction(async (tx) => {
    if (await wouldRemoveLastSuperadmin(tx, username, superadmin && active)) return 'last_superadmin' as const;
    await updateAdminFlags(tx, username, { superadmin, active });
    await replaceAdminDomains(tx, username, superadmin ? ['ALL'] : domains, active);
    if (change.forceTfa !== undefined) await mergeAdminAttributes(tx, username, { force_tfa: change.forceTfa ? 1 : 0 });
    return 'changed' as const;
  });
  if (outcome === 'last_superadmin') return lastSuperadminDenial(username);
  const after = await findAdmin(deps.db, username);
  if (!after) return denied('not_found', `no admin ${username}`);
  return { ok: true, value: { before, after } };
}

export async function deleteAdminAccount(
  deps: Pick<AdminAccountDeps, 'db'>,
  rawUsername: string,
): Promise<AccountOutcome<AdminAccount>> {
  const username = normaliseUsername(rawUsername);
  const before = await findAdmin(deps.db, username);
  if (!before) return denied('not_found', `no admin ${username}`);
  const outcome = await deps.db.transaction(async (tx) => {
    if (await wouldRemoveLastSuperadmin(tx, username, false)) return 'last_superadmin' as const;
    return (await deleteAdminRows(tx, username)) ? ('deleted' as const) : ('gone' as const);
  });
  if (outcome === 'last_superadmin') return lastSuperadminDenial(username);
  if (outcome === 'gone') return denied('not_found', `no admin ${username}`);
  return { ok: true, value: before };
}

export async function setAdminPassword(
  deps: AdminAccountDeps,
  rawUsername: string,
  password: string,
): Promise<AccountOutcome<AdminAccount>> {
  const username = normaliseUsername(rawUsername);
  const account = await findAdmin(deps.db, username);
  if (!account) return denied('not_found', `no admin ${username}`);
  const weak = passwordProblem(password);
  if (weak) return denied('weak_password', weak);
  const passwordHash = await deps.hashPool.hash(password, deps.passwordScheme);
  if (!(await updateAdminPassword(deps.db, username, passwordHash))) return denied('not_found', `no admin ${username}`);
  return { ok: true, value: account };
}

/** True when `username` is an active superadmin, `staysSuperadmin` is false, and no other active one exists. */
async function wouldRemoveLastSuperadmin(tx: Tx, username: string, staysSuperadmin: boolean): Promise<boolean> {
  if (staysSuperadmin) return false;
  const superadmins = await lockActiveSuperadmins(tx);
  return superadmins.includes(username) && superadmins.length === 1;
}

function lastSuperadminDenial(username: string) {
  return denied(
    'last_superadmin',
    `${username} is the last active superadmin: create or enable another superadmin before deleting, disabling or demoting this one`,
  );
}
