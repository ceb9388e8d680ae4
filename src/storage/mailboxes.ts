// Reads of mailcow's `mailbox` table (joined with `domain` and `alias_domain`) for logins.
// Column meanings follow mailcow exactly; see reference/mailcow-compat.md §3.
import { foldAddress } from '../address.js';
import type { Db } from './db.js';

export type MailboxAuthSource = 'mailcow' | 'keycloak' | 'generic-oidc' | 'ldap';

/** What a login needs to know about a mailbox. */
export interface LoginMailbox {
  username: string;
  /** `{SCHEME}hash`, or '' for mailboxes created by an IdP. */
  passwordHash: string;
  /** 1 = active, 2 = receives mail but no login, 0 = inactive. */
  active: number;
  domainActive: boolean;
  authSource: MailboxAuthSource | null;
  /** mailcow's JSON attributes; values are mostly the strings "0"/"1". */
  attributes: Record<string, unknown>;
  /** Found through an alias domain: `username` (the target mailbox) differs from the name asked. */
  viaAliasDomain?: boolean;
}

interface MailboxRow {
  username: string;
  password: string;
  active: number;
  authsource: string | null;
  attributes: string | Record<string, unknown> | null;
  domain_active: number;
  [key: string]: unknown;
}

// Resource mailboxes (rooms, equipment, groups) exist for calendaring and never log in.
const LOGIN_COLUMNS = `m.username, m.password, m.active, m.authsource, m.attributes, d.active AS domain_active`;
const IS_PERSON = `m.kind NOT IN ('location', 'thing', 'group')`;

/**
 * Find the mailbox a login name refers to: the mailbox itself, or the same local part in the
 * target domain of an active alias domain. One round trip; the direct match wins.
 *
 * Names match exactly after foldAddress, whatever the columns' collation: mailcow's
 * utf8mb4_general_ci alone would let `érin@` or `erın@` (or `erin@éxample.org`) find
 * `erin@example.org`. Each comparison keeps the plain `=` (which uses the primary key under
 * any collation) and adds a byte-wise `BINARY` one that rejects every other spelling.
 */
export async function findLoginMailbox(db: Pick<Db, 'one'>, name: string): Promise<LoginMailbox | undefined> {
  const loginName = foldAddress(name);
  const at = loginName.lastIndexOf('@');
  const localPart = at > 0 ? loginName.slice(0, at) : loginName;
  const domain = at > 0 ? loginName.slice(at + 1) : '';
  const row = await db.one<MailboxRow & { via_alias: number }>(
    `SELECT ${LOGIN_COLUMNS}, 0 AS via_alias
       FROM mailbox m JOIN domain d ON d.domain = m.domain
      WHERE m.username = ? AND BINARY m.username = ? AND ${IS_PERSON}
     UNION ALL
     SELECT ${LOGIN_COLUMNS}, 1 AS via_alias
       FROM alias_domain a
       JOIN mailbox m ON m.username = CONCAT(?, '@', a.target_domain)
                     AND BINARY m.username = CONCAT(?, '@', a.target_domain)
       JOIN domain d ON d.domain = m.domain
      WHERE a.alias_domain = ? AND BINARY a.alias_domain = ? AND a.active = 1 AND ${IS_PERSON}
     ORDER BY via_alias
     LIMIT 1`,
    [loginName, loginName, localPart, localPart, domain, domain],
  );
  if (!row) return undefined;
  return {
    // As stored: the exact match above makes it the folded name (or its alias-domain target).
    username: row.username,
    passwordHash: row.password ?? '',
    active: Number(row.active),
    domainActive: Number(row.domain_active) === 1,
    authSource: parseAuthSource(row.authsource),
    attributes: parseAttributes(row.attributes),
    viaAliasDomain: Number(row.via_alias) === 1,
  };
}

function parseAuthSource(value: string | null): MailboxAuthSource | null {
  switch (value) {
    case 'mailcow':
    case 'keycloak':
    case 'generic-oidc':
    case 'ldap':
      return value;
    default:
      return null;
  }
}

/** mailcow stores attributes as JSON text (MariaDB JSON = LONGTEXT); mysql2 may hand back either form. */
export function parseAttributes(value: unknown): Record<string, unknown> {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) return value as Record<string, unknown>;
  if (typeof value !== 'string' && !Buffer.isBuffer(value)) return {};
  try {
    const parsed: unknown = JSON.parse(value.toString());
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The domain of the mailbox named exactly `username`, if there is one. */
export async function findMailboxDomain(db: Pick<Db, 'one'>, username: string): Promise<string | undefined> {
  const row = await db.one<{ domain: string }>(
    'SELECT domain FROM mailbox WHERE username = ? AND BINARY username = ?',
    [username, username],
  );
  return row?.domain;
}

/** A mailbox's standing for a sign-in: whether it and its domain are active, and who owns it. */
export interface MailboxStatus {
  username: string;
  /** 1 = active, 2 = receives mail but no login, 0 = inactive. */
  active: number;
  /** The column as stored (null = mailcow). */
  authSource: string | null;
  /** mailcow's kind: '' for a person, 'location' / 'thing' / 'group' for resources. */
  kind: string;
  /** False when the domain is inactive or missing. */
  domainActive: boolean;
}

/** The mailbox named exactly `username` (byte for byte), with its domain's state. */
export async function findMailboxStatus(db: Pick<Db, 'one'>, username: string): Promise<MailboxStatus | undefined> {
  const row = await db.one<{
    username: string;
    active: number;
    authsource: string | null;
    kind: string | null;
    domain_active: number | null;
  }>(
    `SELECT m.username, m.active, m.authsource, m.kind, d.active AS domain_active
       FROM mailbox m LEFT JOIN domain d ON d.domain = m.domain
      WHERE m.username = ? AND BINARY m.username = ?`,
    [username, username],
  );
  if (!row) return undefined;
  return {
    username: row.username,
    active: Number(row.active),
    authSource: row.authsource,
    kind: row.kind ?? '',
    domainActive: Number(row.domain_active) === 1,
  };
}

/** The portal's view of a signed-in mailbox. */
export interface PortalMailbox {
  username: string;
  name: string;
  domain: string;
  /** Bytes; 0 = unlimited. */
  quotaBytes: number;
  usedBytes: number;
  authSource: string;
  /** mailcow's user_acl.app_passwds (1 when there is no row). */
  mayManageAppPasswords: boolean;
}

/** The mailbox behind a session, or undefined when it is gone, disabled or its domain is. */
export async function findPortalMailbox(db: Pick<Db, 'one'>, username: string): Promise<PortalMailbox | undefined> {
  const row = await db.one<{
    username: string;
    name: string | null;
    domain: string;
    quota: number | string;
    active: number;
    authsource: string | null;
    domain_active: number | null;
    used: number | string | null;
    app_passwds: number | null;
  }>(
    `SELECT m.username, m.name, m.domain, m.quota, m.active, m.authsource, d.active AS domain_active,
            q.bytes AS used, a.app_passwds
       FROM mailbox m
       LEFT JOIN domain d ON d.domain = m.domain
       LEFT JOIN quota2 q ON q.username = m.username
       LEFT JOIN user_acl a ON a.username = m.username
      WHERE m.username = ? AND BINARY m.username = ?`,
    [username, username],
  );
  if (!row || Number(row.active) !== 1 || Number(row.domain_active) !== 1) return undefined;
  return {
    username: row.username,
    name: row.name ?? '',
    domain: row.domain,
    quotaBytes: Number(row.quota),
    usedBytes: Number(row.used ?? 0),
    authSource: row.authsource ?? 'mailcow',
    mayManageAppPasswords: row.app_passwds === null || Number(row.app_passwds) === 1,
  };
}
