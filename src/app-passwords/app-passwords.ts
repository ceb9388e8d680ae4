// App passwords as their owner manages them: create (the secret exists in clear only in the
// returned value, once), list (never the hash), revoke (own only). Rows are mailcow's
// `app_passwd`; checking an app password at login is mail-login.ts's job, not this file's.
import { randomInt } from 'node:crypto';
import type { NewHashScheme } from '../passwords/hash-password.js';
import {
  type AppPasswordProtocol,
  deleteAppPassword,
  insertAppPassword,
  listAppPasswords,
} from '../storage/app-passwords.js';
import type { Db } from '../storage/db.js';
import { findMailboxDomain } from '../storage/mailboxes.js';

/** What a person picks in the form, mapped to mailcow's app_passwd flag columns. */
export const PROTOCOL_CHOICES = {
  imap: 'imap_access',
  pop3: 'pop3_access',
  smtp: 'smtp_access',
  sieve: 'sieve_access',
  dav: 'dav_access',
  eas: 'eas_access',
} as const satisfies Record<string, AppPasswordProtocol>;
export type ProtocolChoice = keyof typeof PROTOCOL_CHOICES;

/**
 * Whether a submitted value names a choice. Own keys only: `in` would also accept what every
 * object inherits (`constructor`, `toString`, `__proto__`), and indexing PROTOCOL_CHOICES with
 * such a name yields no flag at all.
 */
export function isProtocolChoice(value: unknown): value is ProtocolChoice {
  return typeof value === 'string' && Object.hasOwn(PROTOCOL_CHOICES, value);
}

export interface AppPasswordDeps {
  db: Db;
  hashPool: { hash(secret: string, scheme: NewHashScheme): Promise<string> };
  passwordScheme: NewHashScheme;
}

export interface AppPasswordSummary {
  id: number;
  name: string;
  protocols: ProtocolChoice[];
  active: boolean;
  created: Date | null;
}

// No 0/O, 1/l/I: secrets are read off a screen and typed into phones.
const ALPHABET = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const GROUPS = 4;
const GROUP_LENGTH = 6;

/** 24 random symbols of a 56-symbol alphabet (~139 bits) in dash-separated groups of six. */
export function generateAppPasswordSecret(): string {
  const groups: string[] = [];
  for (let g = 0; g < GROUPS; g++) {
    let group = '';
    for (let i = 0; i < GROUP_LENGTH; i++) group += ALPHABET[randomInt(ALPHABET.length)];
    groups.push(group);
  }
  return groups.join('-');
}

export type CreateAppPasswordOutcome =
  | { ok: true; id: number; name: string; secret: string; protocols: ProtocolChoice[] }
  | { ok: false; problems: string[] };

/** Validate and create; the returned secret is the only copy in clear. */
export async function createAppPassword(
  deps: AppPasswordDeps,
  input: { mailbox: string; name: unknown; protocols: unknown },
): Promise<CreateAppPasswordOutcome> {
  const problems: string[] = [];
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (name.length === 0) problems.push('Give the app password a name, such as the device it is for.');
  if ([...name].length > 255) problems.push('The name may have at most 255 characters.');
  if ([...name].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch.codePointAt(0) === 0x7f)) {
    problems.push('The name must not contain control characters.');
  }
  const requested = Array.isArray(input.protocols)
    ? input.protocols
    : input.protocols === undefined
      ? []
      : [input.protocols];
  const protocols = [...new Set(requested)].filter(isProtocolChoice);
  if (protocols.length !== new Set(requested).size) problems.push('Unknown protocol selected.');
  if (protocols.length === 0) problems.push('Choose at least one protocol.');
  if (problems.length > 0) return { ok: false, problems };

  const domain = await findMailboxDomain(deps.db, input.mailbox);
  if (domain === undefined) return { ok: false, problems: ['This mailbox no longer exists.'] };

  const secret = generateAppPasswordSecret();
  const passwordHash = await deps.hashPool.hash(secret, deps.passwordScheme);
  const id = await insertAppPassword(deps.db, {
    mailbox: input.mailbox,
    domain,
    name,
    passwordHash,
    protocols: protocols.map((p) => PROTOCOL_CHOICES[p]),
  });
  return { ok: true, id, name, secret, protocols };
}

/** A mailbox's app passwords, oldest first, without their hashes. */
export async function listOwnAppPasswords(db: Db, mailbox: string): Promise<AppPasswordSummary[]> {
  const records = await listAppPasswords(db, mailbox);
  return records.map((record) => ({
    id: record.id,
    name: record.name,
    protocols: (Object.keys(PROTOCOL_CHOICES) as ProtocolChoice[]).filter((p) => record.protocols[PROTOCOL_CHOICES[p]]),
    active: record.active,
    created: record.created,
  }));
}

/** Revoke one of the mailbox's own app passwords; false when it is not theirs or already gone. */
export async function revokeAppPassword(db: Db, mailbox: string, id: number): Promise<boolean> {
  if (!Number.isSafeInteger(id) || id <= 0) return false;
  return deleteAppPassword(db, mailbox, id);
}
