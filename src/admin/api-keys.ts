// API keys with a role, as use-cases: create (the key is returned once and only its SHA-256 is
// kept), list, revoke, and the check of a presented key (live, not expired, from an allowed
// network). Denials are values, faults throw. A key is `postern_` + 43 base64url characters of
// 256 random bits: a fast digest is right for that (nothing to guess), and a lookup by digest
// leaks nothing about other keys.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { sha256Hex } from '../digest.js';
import { parseClientAddress } from '../rate-limit/client-address.js';
import { existingDomains } from '../storage/admins.js';
import {
  type ApiKeyRecord,
  findApiKey,
  findApiKeyByHash,
  insertApiKey,
  listApiKeys,
  revokeApiKeyRow,
  touchApiKey,
} from '../storage/api-keys.js';
import type { Db } from '../storage/db.js';
import type { Actor, Role } from './roles.js';

export const API_KEY_PREFIX = 'postern_';
const KEY_PATTERN = /^postern_[A-Za-z0-9_-]{43}$/;
/** last_used_at is written at most this often per key (and per replica, at most this often tried). */
export const LAST_USED_RESOLUTION_SECONDS = 60;

export type ApiKeyDenial = 'unknown_domain' | 'no_domains' | 'invalid_network' | 'expired' | 'not_found';
export type ApiKeyOutcome<T> = { ok: true; value: T } | { ok: false; denial: ApiKeyDenial; message: string };

const denied = (denial: ApiKeyDenial, message: string) => ({ ok: false as const, denial, message });

export interface NewApiKey {
  name: string;
  role: Role;
  /** Required (non-empty) for a domain admin key; ignored for a superadmin key. */
  domains?: readonly string[];
  access: 'ro' | 'rw';
  /** IPs or CIDR networks the key may be used from (`0.0.0.0/0` and `::/0` for anywhere). */
  allowFrom: readonly string[];
  expiresAt?: Date;
}

export interface CreatedApiKey {
  record: ApiKeyRecord;
  /** The key itself: shown to its creator once, never stored. */
  key: string;
}

/** The audit trail's name for a key (never the key). */
export function apiKeyAuditName(id: number): string {
  return `api-key:${id}`;
}

export function digestApiKey(key: string): string {
  return sha256Hex(key);
}

/** Whether the text can be a postern key at all (cheap; decides which table is asked). */
export function looksLikePosternKey(presented: string): boolean {
  return presented.startsWith(API_KEY_PREFIX);
}

/** An IP address or a CIDR network, IPv4 or IPv6; undefined when it is neither. */
export function normaliseNetwork(entry: string): string | undefined {
  const [network = '', bits, extra] = entry.trim().split('/');
  if (extra !== undefined || isIP(network) === 0) return undefined;
  const width = isIP(network) === 4 ? 32 : 128;
  if (bits === undefined) return network.toLowerCase();
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > width) return undefined;
  return `${network.toLowerCase()}/${Number(bits)}`;
}

/**
 * mailcow's allow_from: IPs or CIDR networks separated by spaces, commas, semicolons or new lines
 * (sessions.inc.php splits on `/( |,|;|\n)/`). An unknown client address matches nothing.
 */
export function isAllowedFrom(address: string | undefined, allowFrom: string): boolean {
  const client = address ? parseClientAddress(address) : undefined;
  if (!client) return false;
  const value = toBigInt(client.address, client.family);
  return allowFrom
    .split(/[ ,;\n]/)
    .map((entry) => entry.trim())
    .filter(Boolean)
    .some((entry) => {
      const [text = '', bitsText] = entry.split('/');
      const network = parseClientAddress(text);
      if (!network || isIP(text) === 0) return false;
      const declaredWidth = isIP(text) === 4 ? 32 : 128;
      let bits = bitsText === undefined ? declaredWidth : Number(bitsText);
      if (!Number.isInteger(bits) || bits < 0 || bits > declaredWidth) return false;
      // An IPv4-mapped IPv6 network is the IPv4 network it carries.
      if (declaredWidth === 128 && network.family === 4) bits = Math.max(0, bits - 96);
      if (network.family !== client.family) return false;
      const width = client.family === 4 ? 32 : 128;
      const shift = BigInt(width - bits);
      return value >> shift === toBigInt(network.address, network.family) >> shift;
    });
}

function toBigInt(canonical: string, family: 4 | 6): bigint {
  if (family === 4) return canonical.split('.').reduce((acc, part) => (acc << 8n) + BigInt(Number(part)), 0n);
  return canonical.split(':').reduce((acc, part) => (acc << 16n) + BigInt(Number.parseInt(part, 16)), 0n);
}

export async function createApiKey(
  db: Db,
  input: NewApiKey,
  createdBy: string,
  now: Date = new Date(),
): Promise<ApiKeyOutcome<CreatedApiKey>> {
  const networks: string[] = [];
  for (const entry of input.allowFrom) {
    const network = normaliseNetwork(entry);
    if (!network) return denied('invalid_network', `not an IP address or CIDR network: ${entry.slice(0, 64)}`);
    if (!networks.includes(network)) networks.push(network);
  }
  if (networks.length === 0) {
    return denied('invalid_network', 'allow_from needs at least one network (0.0.0.0/0 and ::/0 allow any)');
  }
  if (input.expiresAt && input.expiresAt.getTime() <= now.getTime()) {
    return denied('expired', 'expires_at must be in the future');
  }
  let domains: string[] = [];
  if (input.role === 'domainadmin') {
    domains = [...new Set((input.domains ?? []).map((d) => d.trim().toLowerCase()).filter(Boolean))].sort();
    if (domains.length === 0) return denied('no_domains', 'a domain admin key needs at least one domain');
    const known = new Set(await existingDomains(db, domains));
    const unknown = domains.filter((domain) => !known.has(domain));
    if (unknown.length) return denied('unknown_domain', `no such domain: ${unknown.join(', ')}`);
  }
  const random = randomBytes(32).toString('base64url');
  const key = `${API_KEY_PREFIX}${random}`;
  const id = await insertApiKey(db, {
    name: input.name,
    keyHash: digestApiKey(key),
    hint: random.slice(0, 4),
    role: input.role,
    domains,
    access: input.access,
    allowFrom: networks.join(','),
    expiresAt: input.expiresAt,
    createdBy,
  });
  const record = await findApiKey(db, id);
  if (!record) throw new Error(`API key ${id} vanished after its insert`);
  return { ok: true, value: { record, key } };
}

export async function listKeys(db: Db): Promise<ApiKeyRecord[]> {
  return listApiKeys(db);
}

/** Revoked keys stay listed (with who revoked them when); a revoked key never authenticates again. */
export async function revokeApiKey(db: Db, id: number, revokedBy: string): Promise<ApiKeyOutcome<ApiKeyRecord>> {
  if (!(await revokeApiKeyRow(db, id, revokedBy))) return denied('not_found', `no live API key ${id}`);
  const record = await findApiKey(db, id);
  if (!record) return denied('not_found', `no live API key ${id}`);
  return { ok: true, value: record };
}

export type KeyCheck =
  | { ok: true; record: ApiKeyRecord; actor: Actor }
  | { ok: false; reason: 'unknown'; record?: undefined }
  | { ok: false; reason: 'revoked' | 'expired' | 'network'; record: ApiKeyRecord };

/**
 * The presented key's record and actor when it is live, unexpired and used from an allowed network.
 * Refusals are told apart for the audit only; the caller answers them all alike.
 */
export async function checkApiKey(
  db: Db,
  presented: string,
  clientIp: string | undefined,
  now: Date = new Date(),
): Promise<KeyCheck> {
  if (!KEY_PATTERN.test(presented)) return { ok: false, reason: 'unknown' };
  const digest = digestApiKey(presented);
  const found = await findApiKeyByHash(db, digest);
  if (!found || !timingSafeEqual(Buffer.from(found.keyHash, 'hex'), Buffer.from(digest, 'hex'))) {
    return { ok: false, reason: 'unknown' };
  }
  const { keyHash: _digest, ...record } = found;
  if (record.revokedAt) return { ok: false, reason: 'revoked', record };
  if (record.expiresAt && record.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired', record };
  if (!isAllowedFrom(clientIp, record.allowFrom)) return { ok: false, reason: 'network', record };
  return {
    ok: true,
    record,
    actor: { name: apiKeyAuditName(record.id), role: record.role, domains: record.domains, access: record.access },
  };
}

/**
 * Remembers a key's use without a write per call: at most one UPDATE per key per
 * LAST_USED_RESOLUTION_SECONDS from this process (and the UPDATE's own condition keeps replicas
 * to about one too). Never waits for the write; a failure is reported, not thrown.
 */
export function createLastUsedRecorder(
  db: Pick<Db, 'execute'>,
  onError: (error: unknown) => void,
  options: { resolutionSeconds?: number; maxTracked?: number; now?: () => number } = {},
) {
  const resolutionMs = (options.resolutionSeconds ?? LAST_USED_RESOLUTION_SECONDS) * 1000;
  const maxTracked = options.maxTracked ?? 10_000;
  const now = options.now ?? Date.now;
  const lastTried = new Map<number, number>();
  return {
    record(id: number, ip: string | undefined): Promise<void> | undefined {
      const at = now();
      const previous = lastTried.get(id);
      if (previous !== undefined && at - previous < resolutionMs) return undefined;
      if (lastTried.size >= maxTracked) lastTried.clear();
      lastTried.set(id, at);
      return touchApiKey(db, id, ip, resolutionMs / 1000).then(() => undefined, onError);
    },
  };
}
