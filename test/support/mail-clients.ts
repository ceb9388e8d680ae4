// Tiny raw-socket IMAP and SMTP submission clients for tests against a real Dovecot: just
// enough protocol to log in and report the server's exact answer line. No npm dependencies;
// every call has a deadline so a silent server fails the test instead of hanging it.
import { connect, type Socket } from 'node:net';

/** A password or username as the client sends it: a string goes out as UTF-8. */
export type Secret = string | Uint8Array;

export interface ImapResult {
  ok: boolean;
  /** The tagged response line, e.g. `a1 NO [AUTHENTICATIONFAILED] Authentication failed.` */
  line: string;
}

export interface ImapLoginOptions {
  /** LOGIN sends user and password as quoted strings or literals; PLAIN uses AUTHENTICATE. */
  mechanism?: 'LOGIN' | 'PLAIN';
  host?: string;
  timeoutMs?: number;
}

export interface ImapSelectResult {
  login: ImapResult;
  /** null when the login failed. */
  select: ImapResult | null;
}

export interface SmtpResult {
  /** The reply code, e.g. 235 (ok), 535 (credentials refused), 454 (temporary failure). */
  code: number;
  /** The last line of the reply. */
  line: string;
}

export interface SmtpOptions {
  host?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

function toBytes(value: Secret): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
}

/** SASL PLAIN (RFC 4616): authzid NUL authcid NUL password, base64; no quoting at all. */
function plainResponse(user: Secret, pass: Secret): string {
  return Buffer.concat([Buffer.from([0]), toBytes(user), Buffer.from([0]), toBytes(pass)]).toString('base64');
}

/** A socket read line by line (CRLF), with one deadline for the whole conversation. */
class LineSocket {
  private buffer = Buffer.alloc(0);
  private readonly lines: string[] = [];
  private waiter: { resolve: (line: string) => void; reject: (error: Error) => void } | null = null;
  private failure: Error | null = null;
  private lastLine = '';
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    label: string,
    timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: Error) => this.fail(new Error(`${label}: ${error.message}`)));
    socket.on('close', () => this.fail(new Error(`${label}: connection closed (last line: ${this.lastLine || '-'})`)));
    this.timer = setTimeout(() => {
      this.fail(new Error(`${label}: no answer within ${timeoutMs} ms (last line: ${this.lastLine || '-'})`));
      socket.destroy();
    }, timeoutMs);
  }

  static open(host: string, port: number, label: string, timeoutMs: number): Promise<LineSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const lineSocket = new LineSocket(socket, label, timeoutMs);
      socket.once('connect', () => resolve(lineSocket));
      socket.once('error', (error: Error) => {
        lineSocket.close();
        reject(new Error(`${label}: cannot connect to ${host}:${port}: ${error.message}`));
      });
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (let end = this.buffer.indexOf('\r\n'); end >= 0; end = this.buffer.indexOf('\r\n')) {
      const line = this.buffer.subarray(0, end).toString('utf8');
      this.buffer = this.buffer.subarray(end + 2);
      this.lastLine = line;
      if (this.waiter) {
        const { resolve } = this.waiter;
        this.waiter = null;
        resolve(line);
      } else {
        this.lines.push(line);
      }
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    clearTimeout(this.timer);
    if (this.waiter) {
      const { reject } = this.waiter;
      this.waiter = null;
      reject(error);
    }
  }

  readLine(): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  close(): void {
    clearTimeout(this.timer);
    this.failure ??= new Error('closed by client');
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// IMAP (RFC 9051 / 3501)

/** A token for the command line: a quoted string when printable ASCII, otherwise a literal. */
type ImapArgument = { quoted: string } | { literal: Buffer };

function toImapArgument(value: Secret): ImapArgument {
  const bytes = toBytes(value);
  const isPrintableAscii = bytes.every((byte) => byte >= 0x20 && byte <= 0x7e);
  if (isPrintableAscii) {
    // Inside a quoted string only `"` and `\` need escaping (quoted-specials).
    return { quoted: `"${bytes.toString('latin1').replace(/[\\"]/g, (c) => `\\${c}`)}"` };
  }
  // Non-ASCII and control characters go in a synchronizing literal: {n} CRLF, wait for "+".
  return { literal: bytes };
}

function taggedResult(tag: string, line: string): ImapResult {
  return { ok: /^OK\b/i.test(line.slice(tag.length + 1)), line };
}

async function readImapTagged(conn: LineSocket, tag: string): Promise<ImapResult> {
  for (;;) {
    const line = await conn.readLine();
    if (line.startsWith(`${tag} `)) return taggedResult(tag, line);
  }
}

/** Reads until the server asks for more ("+") or ends the command (tagged line). */
async function readImapContinuation(conn: LineSocket, tag: string): Promise<ImapResult | null> {
  for (;;) {
    const line = await conn.readLine();
    if (line.startsWith('+')) return null;
    if (line.startsWith(`${tag} `)) return taggedResult(tag, line);
  }
}

async function sendImapCommand(conn: LineSocket, tag: string, command: string, args: ImapArgument[]) {
  let pending = `${tag} ${command}`;
  for (const arg of args) {
    if ('quoted' in arg) {
      pending += ` ${arg.quoted}`;
      continue;
    }
    conn.write(`${pending} {${arg.literal.length}}\r\n`);
    const early = await readImapContinuation(conn, tag);
    if (early) return early;
    conn.write(arg.literal);
    pending = '';
  }
  conn.write(`${pending}\r\n`);
  return readImapTagged(conn, tag);
}

async function openImap(port: number, options: ImapLoginOptions): Promise<{ conn: LineSocket; greeting: string }> {
  const conn = await LineSocket.open(
    options.host ?? '127.0.0.1',
    port,
    'IMAP',
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  );
  const greeting = await conn.readLine();
  if (!greeting.startsWith('* OK')) {
    conn.close();
    throw new Error(`IMAP: unexpected greeting: ${greeting}`);
  }
  return { conn, greeting };
}

async function loginOnConnection(
  conn: LineSocket,
  greeting: string,
  user: Secret,
  pass: Secret,
  mechanism: 'LOGIN' | 'PLAIN',
): Promise<ImapResult> {
  if (mechanism === 'LOGIN') {
    return sendImapCommand(conn, 'a1', 'LOGIN', [toImapArgument(user), toImapArgument(pass)]);
  }
  const response = plainResponse(user, pass);
  if (/\bSASL-IR\b/i.test(greeting)) {
    conn.write(`a1 AUTHENTICATE PLAIN ${response}\r\n`);
    return readImapTagged(conn, 'a1');
  }
  conn.write('a1 AUTHENTICATE PLAIN\r\n');
  const early = await readImapContinuation(conn, 'a1');
  if (early) return early;
  conn.write(`${response}\r\n`);
  return readImapTagged(conn, 'a1');
}

/** Logs in (LOGIN by default, or AUTHENTICATE PLAIN) and returns the tagged answer. */
export async function imapLogin(
  port: number,
  user: Secret,
  pass: Secret,
  options: ImapLoginOptions = {},
): Promise<ImapResult> {
  const { conn, greeting } = await openImap(port, options);
  try {
    const result = await loginOnConnection(conn, greeting, user, pass, options.mechanism ?? 'LOGIN');
    if (result.ok) conn.write('a9 LOGOUT\r\n');
    return result;
  } finally {
    conn.close();
  }
}

/** Logs in and selects INBOX: proves the userdb and mail storage work, not just the passdb. */
export async function imapSelectInbox(
  port: number,
  user: Secret,
  pass: Secret,
  options: ImapLoginOptions = {},
): Promise<ImapSelectResult> {
  const { conn, greeting } = await openImap(port, options);
  try {
    const login = await loginOnConnection(conn, greeting, user, pass, options.mechanism ?? 'LOGIN');
    if (!login.ok) return { login, select: null };
    conn.write('a2 SELECT INBOX\r\n');
    const select = await readImapTagged(conn, 'a2');
    conn.write('a9 LOGOUT\r\n');
    return { login, select };
  } finally {
    conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// SMTP submission (RFC 5321 replies, RFC 4954 AUTH)

async function readSmtpReply(conn: LineSocket): Promise<SmtpResult> {
  for (;;) {
    const line = await conn.readLine();
    // Multi-line replies use "250-..." on all but the last line, which has "250 ..." (or just "250").
    if (line.length <= 3 || line[3] === ' ') {
      return { code: Number.parseInt(line.slice(0, 3), 10), line };
    }
  }
}

/** EHLO, then AUTH PLAIN with an initial response; returns the AUTH reply (235 / 535 / 454). */
export async function submissionAuthPlain(
  port: number,
  user: Secret,
  pass: Secret,
  options: SmtpOptions = {},
): Promise<SmtpResult> {
  const conn = await LineSocket.open(
    options.host ?? '127.0.0.1',
    port,
    'SMTP',
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  );
  try {
    const greeting = await readSmtpReply(conn);
    if (greeting.code !== 220) return greeting;
    conn.write('EHLO postern-test.invalid\r\n');
    const ehlo = await readSmtpReply(conn);
    if (ehlo.code !== 250) return ehlo;
    conn.write(`AUTH PLAIN ${plainResponse(user, pass)}\r\n`);
    const auth = await readSmtpReply(conn);
    conn.write('QUIT\r\n');
    return auth;
  } finally {
    conn.close();
  }
}
