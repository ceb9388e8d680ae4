// The scan of a test postern's log file and audit rows for the registered secrets and for what
// looks like a password hash or a token. A hit names the file and line (or the audit row and
// column) and the secret's kind; the secret itself is shown masked.
import { existsSync, readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { maskSecret, registeredSecrets, registerSecret, type Secret } from './secret-registry.js';

/** What must never be in a log line or an audit row, whatever the test registered. */
export const FORBIDDEN_PATTERNS: { kind: string; pattern: RegExp }[] = [
  {
    kind: 'password hash with a {SCHEME} prefix',
    pattern:
      /\{(?:BLF-CRYPT|SHA512-CRYPT|SHA256-CRYPT|MD5-CRYPT|CRYPT|SSHA|SSHA256|SSHA512|SHA|SHA256|SHA512|SMD5|PLAIN-MD5|ARGON2I|ARGON2ID|PLAIN|CLEAR|CLEARTEXT|CRAM-MD5)\}[^\s"\\]/,
  },
  { kind: 'bcrypt hash', pattern: /\$2[abxy]\$\d\d\$/ },
  { kind: 'argon2 hash', pattern: /\$argon2(?:id|i|d)\$/ },
  { kind: 'crypt(3) SHA/MD5 hash', pattern: /\$[156]\$(?:rounds=\d+\$)?[./A-Za-z0-9]{8,}\$/ },
  { kind: 'Bearer token', pattern: /Bearer [A-Za-z0-9._~+/-]{8,}/ },
  { kind: 'Basic credentials', pattern: /Basic [A-Za-z0-9+/]{8,}={0,2}/ },
  { kind: 'postern API key', pattern: /postern_(?!test_)[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/ },
  { kind: 'session cookie', pattern: /postern_(?:session|admin|sso|sso_next|handoff|webmail)=[A-Za-z0-9_.%-]{16,}/ },
  {
    kind: 'recovery code',
    pattern:
      /(?<![0-9A-Za-z-])[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}(?![0-9A-Za-z-])/,
  },
];

export interface Hit {
  /** File and line, or table, row id and column. */
  where: string;
  kind: string;
  /** The matched text, masked. */
  shown: string;
}

export interface ScanCount {
  lines: number;
  rows: number;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

interface Needle {
  kind: string;
  value: string;
  /** The forms looked for: the value, and the value as JSON writes it when that differs. */
  forms: string[];
  bounded?: RegExp;
}

function needlesOf(secrets: Secret[]): Needle[] {
  return secrets.map((secret) => {
    const escaped = JSON.stringify(secret.value).slice(1, -1);
    return {
      kind: secret.kind,
      value: secret.value,
      forms: escaped === secret.value ? [secret.value] : [secret.value, escaped],
      ...(secret.bounded
        ? { bounded: new RegExp(`(?<![0-9A-Za-z])${escapeRegExp(secret.value)}(?![0-9A-Za-z])`, 'g') }
        : {}),
    };
  });
}

/**
 * The hits in a text of many lines (a log file, a column's value): each secret is looked for in
 * the whole text with one substring search, and only a hit is located on its line, so a clean
 * text costs one pass per secret and per pattern.
 */
export function hitsIn(text: string, where: (offset: number) => string, secrets: Secret[]): Hit[] {
  const hits: Hit[] = [];
  for (const needle of needlesOf(secrets)) {
    for (const form of needle.forms) {
      let at = text.indexOf(form);
      while (at !== -1) {
        const bounded = needle.bounded;
        let accepted = true;
        if (bounded) {
          bounded.lastIndex = Math.max(0, at - 1);
          const match = bounded.exec(text);
          accepted = match !== null && match.index === at;
        }
        if (accepted) {
          hits.push({ where: where(at), kind: needle.kind, shown: maskSecret(needle.value) });
          break;
        }
        at = text.indexOf(form, at + 1);
      }
    }
  }
  for (const { kind, pattern } of FORBIDDEN_PATTERNS) {
    const global = new RegExp(pattern.source, 'g');
    for (const match of text.matchAll(global)) {
      hits.push({ where: where(match.index ?? 0), kind, shown: maskSecret(match[0]) });
      if (hits.length > 100) return hits;
    }
  }
  return hits;
}

/** Line numbers (1-based) of offsets in a text. */
function lineLocator(text: string, path: string): (offset: number) => string {
  return (offset) => {
    let line = 1;
    for (let at = text.indexOf('\n'); at !== -1 && at < offset; at = text.indexOf('\n', at + 1)) line += 1;
    return `${path}:${line}`;
  };
}

/** Scans a log file line by line; a missing file (nothing logged yet) scans as empty. */
export function scanLogFile(path: string, secrets: Secret[] = registeredSecrets()): { hits: Hit[]; lines: number } {
  if (!existsSync(path)) return { hits: [], lines: 0 };
  const text = readFileSync(path, 'utf8');
  let lines = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines += 1;
  if (text.length > 0 && !text.endsWith('\n')) lines += 1;
  return { hits: hitsIn(text, lineLocator(text, path), secrets), lines };
}

/** Scans every row of the database's postern_audit (a database without the table scans as empty). */
export async function scanAuditRows(
  rootUrl: string,
  database: string,
  secrets: Secret[] = registeredSecrets(),
): Promise<{ hits: Hit[]; rows: number }> {
  const url = new URL(rootUrl);
  const conn = await mysql.createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    database,
  });
  try {
    // TOTP secrets postern enrolled are in mailcow's tfa table (base32, as mailcow keeps them).
    const [tfa] = await conn.query<mysql.RowDataPacket[]>("SHOW TABLES LIKE 'tfa'");
    if (tfa.length > 0) {
      const [stored] = await conn.query<mysql.RowDataPacket[]>("SELECT secret FROM tfa WHERE authmech = 'totp'");
      for (const { secret } of stored) registerSecret('TOTP secret (tfa.secret)', secret);
      secrets = registeredSecrets();
    }
    const [tables] = await conn.query<mysql.RowDataPacket[]>("SHOW TABLES LIKE 'postern_audit'");
    if (tables.length === 0) return { hits: [], rows: 0 };
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT * FROM postern_audit ORDER BY id');
    // One text of all the values, each on a line of its own, scanned as a log file is.
    const parts: string[] = [];
    const labels: { start: number; label: string }[] = [];
    let length = 0;
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value instanceof Date || typeof value === 'number') continue;
        const text =
          typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : JSON.stringify(value);
        labels.push({ start: length, label: `${database}.postern_audit id=${row.id} column ${column}` });
        parts.push(text);
        length += text.length + 1;
      }
    }
    const where = (offset: number) => {
      let label = labels[0]?.label ?? database;
      for (const entry of labels) {
        if (entry.start > offset) break;
        label = entry.label;
      }
      return label;
    };
    const hits = hitsIn(parts.join('\n'), where, secrets);
    return { hits, rows: rows.length };
  } finally {
    await conn.end();
  }
}

export class SecretLeakError extends Error {
  constructor(hits: Hit[], scanned: string) {
    const listed = hits.slice(0, 20).map((hit) => `  ${hit.kind} in ${hit.where}: ${hit.shown}`);
    if (hits.length > 20) listed.push(`  … and ${hits.length - 20} more`);
    super(`a secret reached a log line or an audit row (${scanned}):\n${listed.join('\n')}`);
    this.name = 'SecretLeakError';
  }
}
