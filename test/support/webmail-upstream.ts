// Webmail behind nginx for tests. startWebmailUpstream: a stand-in for SOGo that records every
// request exactly as SOGo would receive it (raw header lines, so duplicates and spellings show)
// and answers with a tiny page, or forwards to a real SOGo (still recording). startSogo: Debian's
// real sogod on a free loopback port, configured only by command-line defaults (nothing in /etc).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChildOutput, canConnect, freePort, hasExited, sleep, spawnLogged } from './processes.js';

export interface RecordedRequest {
  method: string;
  url: string;
  /** Raw header lines as [name, value], in arrival order, names as sent. */
  rawHeaders: [string, string][];
  body: string;
}

export interface WebmailUpstream {
  /** http://127.0.0.1:<port> */
  url: string;
  requests: RecordedRequest[];
  /** Every value of a header (case-insensitive name) in the last request, or in `request`. */
  headerValues(name: string, request?: RecordedRequest): string[];
  last(): RecordedRequest | undefined;
  clear(): void;
  /** Pass requests on to this upstream (a real SOGo), recording them all the same; undefined = answer ourselves. */
  forwardTo(url: string | undefined): void;
  close(): Promise<void>;
}

function pairsOf(raw: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i] as string, raw[i + 1] as string]);
  return pairs;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startWebmailUpstream(): Promise<WebmailUpstream> {
  const requests: RecordedRequest[] = [];
  let target: URL | undefined;
  const server = createServer(async (request, response) => {
    const recorded: RecordedRequest = {
      method: request.method ?? '',
      url: request.url ?? '',
      rawHeaders: pairsOf(request.rawHeaders),
      body: await readBody(request),
    };
    requests.push(recorded);
    if (target) {
      // Headers exactly as nginx sent them (raw, so nothing is merged or renamed).
      const upstream = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: recorded.method,
          path: recorded.url,
          headers: request.rawHeaders,
          // A connection per request: when sogod closes a kept-alive socket while idle, the next
          // request on it hangs up. nginx retries such a request on a new connection; this
          // stand-in would answer 502 instead.
          agent: false,
        },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
          answer.pipe(response);
        },
      );
      upstream.once('error', () => {
        response.statusCode = 502;
        response.end();
      });
      upstream.end(recorded.body);
      return;
    }
    const user = request.headers['x-webobjects-remote-user'] ?? '';
    // SOGo sets its own session cookie; nginx must pass it alongside postern's.
    response.setHeader('set-cookie', '0xHIGHFLYxSOGo=stand-in; Path=/SOGo; HttpOnly');
    response.setHeader('content-type', 'text/html; charset=utf-8');
    response.end(
      `<!doctype html><title>SOGo stand-in</title><h1 id="sogo-user">${String(user).replace(/[<>&"]/g, '')}</h1>`,
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const last = () => requests[requests.length - 1];
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    last,
    headerValues(name, request = last()) {
      if (!request) return [];
      return request.rawHeaders.filter(([key]) => key.toLowerCase() === name.toLowerCase()).map(([, value]) => value);
    },
    clear() {
      requests.length = 0;
    },
    forwardTo(url) {
      target = url ? new URL(url) : undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface StartSogoOptions {
  /** Dovecot's IMAP port on 127.0.0.1 (SOGo logs in there with the Authorization's password). */
  imapPort: number;
  /** root URL of the MySQL/MariaDB holding the mailbox table, e.g. mysql://root@127.0.0.1:3306 */
  mysqlRootUrl: string;
  /** The database with mailcow's `mailbox` table; SOGo's own tables and its user view go there too. */
  database: string;
  /** Default: 20 s. */
  startTimeoutMs?: number;
}

export interface RunningSogo {
  /** http://127.0.0.1:<port> (WOPort) */
  url: string;
  logs(): string;
  /** Stops sogod and memcached, drops the MySQL user, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

function idOf(flag: '-u' | '-g', user: string): number {
  const result = spawnSync('id', [flag, user], { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(`startSogo: system user "${user}" is missing (it comes with the sogo package)`);
  return Number(result.stdout.trim());
}

/**
 * Debian's sogod with SOGoTrustProxyAuthentication, a SQL user source over the mailbox table
 * (like mailcow's _sogo_static_view), MySQL for its own tables and a private memcached. Needs
 * root (sogod runs as the `sogo` user).
 */
export async function startSogo(options: StartSogoOptions): Promise<RunningSogo> {
  if (!existsSync('/usr/sbin/sogod')) throw new Error('startSogo: /usr/sbin/sogod not found: apt-get install -y sogo');
  if (spawnSync('memcached', ['-h'], { encoding: 'utf8' }).error) {
    throw new Error('startSogo: memcached not found: apt-get install -y memcached');
  }
  const mysql = (await import('mysql2/promise')).default;
  const root = new URL(options.mysqlRootUrl);
  const admin = await mysql.createConnection({
    host: root.hostname,
    port: Number(root.port || 3306),
    user: root.username || 'root',
  });
  const user = `sogo_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const db = options.database;
  await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
  await admin.query(`CREATE USER '${user}'@'localhost' IDENTIFIED BY '${password}'`);
  await admin.query(`GRANT ALL ON \`${db}\`.* TO '${user}'@'%'`);
  await admin.query(`GRANT ALL ON \`${db}\`.* TO '${user}'@'localhost'`);
  // mailcow's _sogo_static_view, reduced to what SOGo reads. The password column is never used:
  // with SOGoTrustProxyAuthentication SOGo takes the user from nginx and the password from Authorization.
  await admin.query(
    `CREATE OR REPLACE VIEW \`${db}\`.sogo_users AS
       SELECT username AS c_uid, domain, username AS c_name, '' AS c_password, name AS c_cn, username AS mail
         FROM \`${db}\`.mailbox WHERE active = 1 AND kind NOT IN ('location', 'thing', 'group')`,
  );

  const dir = mkdtempSync(join(tmpdir(), 'postern-sogo-'));
  const uid = idOf('-u', 'sogo');
  const gid = idOf('-g', 'sogo');
  chmodSync(dir, 0o755);
  chownSync(dir, uid, gid);
  const [sogoPort, memcachedPort] = [await freePort(), await freePort()];
  const base = `mysql://${user}:${password}@${root.hostname}:${root.port || 3306}/${db}`;

  // One log for both, in arrival order.
  const output: ChildOutput = { text: '' };
  const memcached = spawnLogged(
    'memcached',
    ['-u', 'nobody', '-l', '127.0.0.1', '-p', String(memcachedPort), '-U', '0'],
    {},
    { output },
  );
  // Every setting as a command-line default: the argument domain outranks /etc/sogo/sogo.conf.
  const defaults: Record<string, string> = {
    WONoDetach: 'YES',
    WOUseWatchDog: 'NO',
    WOLogFile: '-',
    WOPidFile: join(dir, 'sogo.pid'),
    WOPort: `127.0.0.1:${sogoPort}`,
    WOWorkersCount: '1',
    SOGoProfileURL: `${base}/sogo_user_profile`,
    OCSFolderInfoURL: `${base}/sogo_folder_info`,
    OCSSessionsFolderURL: `${base}/sogo_sessions_folder`,
    OCSEMailAlarmsFolderURL: `${base}/sogo_alarms_folder`,
    OCSStoreURL: `${base}/sogo_store`,
    OCSAclURL: `${base}/sogo_acl`,
    OCSCacheFolderURL: `${base}/sogo_cache_folder`,
    SOGoTrustProxyAuthentication: 'YES',
    SOGoIMAPServer: `imap://127.0.0.1:${options.imapPort}`,
    SOGoMemcachedHost: `127.0.0.1:${memcachedPort}`,
    SOGoTimeZone: 'UTC',
    SOGoLanguage: 'English',
    SOGoUserSources: `({type = sql; id = postern_mailboxes; viewURL = "${base}/sogo_users"; canAuthenticate = YES; isAddressBook = NO; userPasswordAlgorithm = ssha256; LoginFieldNames = (c_uid); IMAPLoginFieldName = c_uid;})`,
  };
  const args = Object.entries(defaults).flatMap(([key, value]) => [`-${key}`, value]);
  const sogod = spawnLogged(
    '/usr/sbin/sogod',
    args,
    { uid, gid, env: { ...process.env, HOME: dir }, cwd: dir },
    { output },
  );

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await sogod.stop();
    await memcached.stop();
    await admin.query(`DROP USER IF EXISTS '${user}'@'%'`).catch(() => undefined);
    await admin.query(`DROP USER IF EXISTS '${user}'@'localhost'`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  const logs = () => output.text;

  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    if (hasExited(sogod.child) || memcached.child.exitCode !== null) {
      await stop();
      throw new Error(`startSogo: sogod or memcached exited:\n${output.text}`);
    }
    if (
      /WOHttpAdaptor listening/.test(output.text) &&
      (await canConnect(sogoPort)) &&
      (await canConnect(memcachedPort))
    )
      break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`startSogo: not ready within ${options.startTimeoutMs ?? 20_000} ms:\n${output.text}`);
    }
    await sleep(50);
  }
  return { url: `http://127.0.0.1:${sogoPort}`, logs, stop };
}
