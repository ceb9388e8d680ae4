// A real Dovecot 2.3 (Debian 12 packages) for tests, wired to postern's Lua passdb: a complete
// dovecot.conf in a fresh temp dir, loopback-only listeners on free ports, logs in a file there.
// A missing binary or plugin is a thrown error, never a skipped test. Needs root (Dovecot does).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canConnect, freePort, hasExited, sleep, spawnLogged } from './processes.js';

export const POSTERN_PASSDB_LUA = resolve(dirname(fileURLToPath(import.meta.url)), '../../lua/dovecot/passdb.lua');
/** The shipped process-reuse tuning (deploy/dovecot): every test Dovecot runs it unless told not to. */
export const SHIPPED_LOGIN_RATE_CONF = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../deploy/dovecot/conf.d/99-postern-login-rate.conf',
);

export interface StartDovecotOptions {
  /**
   * POSTERN_AUTH_URL for the Lua passdb, e.g. http://127.0.0.1:9082/; a list becomes the
   * comma-separated replica list the script fails over along.
   */
  authUrl: string | readonly string[];
  /** POSTERN_INTERNAL_TOKEN; unset means the Lua sends no Authorization header. */
  internalToken?: string;
  /** POSTERN_AUTH_TIMEOUT_MS; unset means the script's default (5000). */
  timeoutMs?: number;
  /** Default: a free port. */
  imapPort?: number;
  /** Default: a free port. */
  submissionPort?: number;
  /**
   * Run the submission service. Default: when dovecot-submissiond is installed. `true` makes its
   * absence an error.
   */
  submission?: boolean;
  /**
   * Users the userdb knows (passwd-file), like mailcow's SQL userdb that only finds existing
   * mailbox rows. Default: a static userdb that accepts every user the passdb accepted.
   */
  users?: string[];
  /** Dovecot's own auth cache. Default: off (`auth_cache_size = 0`). */
  authCache?: { size: string; ttl?: string; negativeTtl?: string };
  /** Default: the repository's lua/dovecot/passdb.lua. */
  luaFile?: string;
  /**
   * `reused` (default): include the shipped deploy/dovecot/conf.d/99-postern-login-rate.conf, so
   * tests run what ships. `per-login`: Dovecot's defaults, a fresh login and imap process per
   * login (the benchmark's comparison).
   */
  loginProcesses?: 'reused' | 'per-login';
  /** Appended verbatim to dovecot.conf. */
  extraConfig?: string;
  /** Default: 15 s. */
  startTimeoutMs?: number;
}

export interface RunningDovecot {
  imapPort: number;
  submissionPort: number | undefined;
  /** Dovecot's base_dir (sockets, master.pid). */
  baseDir: string;
  /** The generated config, e.g. for `doveadm -c <configPath> auth cache flush`. */
  configPath: string;
  /** The log file (everything Dovecot logged) plus the master's stdout/stderr. */
  logs(): string;
  /** Stops Dovecot and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

// The mail processes run as `nobody`: a uid that owns nothing else on the machine.
/**
 * The auth process starts on the first imap-login connection and loads the Lua script; on a
 * loaded 2-core CI machine that chain took more than 15 s once, so the default waits longer.
 */
const DOVECOT_START_TIMEOUT_MS = 45_000;
/**
 * Normally the auth process logs the script's init line within half a second of IMAP listening.
 * Once in a few hundred starts on a loaded machine its log lines never arrived at all (auth
 * itself answered imap-login), and waiting longer did not help: such a start is stopped and
 * made again.
 */
const AUTH_LOG_STALL_MS = 10_000;
const START_ATTEMPTS = 3;
const NOT_STARTED = { imapPort: 0, submissionPort: undefined, baseDir: '', configPath: '' };

const MAIL_UID = 65534;
const MAIL_GID = 65534;
// Submission must have a relay host; 127.0.0.1:9 (discard) refuses connections, so nothing is
// ever relayed. AUTH is answered before the relay is contacted (measured), so logins still work.
const RELAY_HOST = '127.0.0.1';
const RELAY_PORT = 9;

function fail(message: string): never {
  throw new Error(`startDovecot: ${message}`);
}

function checkPrerequisites(luaFile: string): void {
  if (process.getuid?.() !== 0) fail('must run as root (Dovecot drops privileges itself)');
  const version = spawnSync('dovecot', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    fail('the dovecot binary was not found: install dovecot-core (see scripts/system-deps.sh)');
  }
  const passwd = readFileSync('/etc/passwd', 'utf8');
  for (const user of ['dovecot', 'dovenull']) {
    if (!new RegExp(`^${user}:`, 'm').test(passwd)) {
      fail(`system user "${user}" is missing: it comes with the dovecot-core package`);
    }
  }
  if (!existsSync(luaFile)) fail(`Lua passdb not found at ${luaFile}`);
}

interface Layout {
  root: string;
  runDir: string;
  stateDir: string;
  mailDir: string;
  logPath: string;
  configPath: string;
  usersPath: string;
}

function renderConfig(
  layout: Layout,
  options: StartDovecotOptions,
  ports: { imap: number; submission: number | undefined },
): string {
  const luaFile = options.luaFile ?? POSTERN_PASSDB_LUA;
  const cache = options.authCache;
  const userdb = options.users
    ? `userdb {
  # Only the listed users exist, like mailcow's SQL userdb (a passdb OK alone is not a login).
  driver = passwd-file
  args = username_format=%u ${layout.usersPath}
}`
    : `userdb {
  # Every user the passdb accepted exists; mail under the test's temp dir.
  driver = static
  args = uid=${MAIL_UID} gid=${MAIL_GID} home=${layout.mailDir}/%u
}`;
  return `# Generated by test/support/dovecot.ts for one test run; deleted by stop().
base_dir = ${layout.runDir}
state_dir = ${layout.stateDir}
instance_name = ${layout.root.split('/').pop()}
log_path = ${layout.logPath}
protocols = imap${ports.submission === undefined ? '' : ' submission'}
# Loopback only; the ports come from the harness (never 143/587/993).
listen = 127.0.0.1
hostname = postern-test.invalid
ssl = no
# Plaintext AUTH over plain TCP on loopback: the only way a test can log in without TLS.
disable_plaintext_auth = no
default_internal_user = dovecot
default_login_user = dovenull

auth_mechanisms = plain login
# auth_failure_delay = 0 removes the 2 s delay of each failure, but Dovecot still batches
# failure replies on a 500 ms timer (AUTH_FAILURE_DELAY_CHECK_MSECS), so a failure takes <= 0.5 s.
auth_failure_delay = 0
auth_cache_size = ${cache ? cache.size : '0'}
${cache?.ttl ? `auth_cache_ttl = ${cache.ttl}` : ''}
${cache?.negativeTtl ? `auth_cache_negative_ttl = ${cache.negativeTtl}` : ''}
# Verbose and debug logging, so tests can prove that secrets stay out of the log anyway
# (auth_debug_passwords and auth_verbose_passwords stay at their default: no).
auth_verbose = yes
auth_debug = yes
# Settings reach the Lua only through the environment (passdb args take no custom keys in 2.3).
import_environment = $import_environment POSTERN_AUTH_URL POSTERN_INTERNAL_TOKEN POSTERN_AUTH_TIMEOUT_MS

passdb {
  driver = lua
  # blocking=yes: the script (and its HTTP call) runs in auth-worker processes.
  # cache_key: see deploy/dovecot/conf.d/auth-postern.conf.ext (service, user and password).
  args = file=${luaFile} blocking=yes cache_key=%s:%u:%w
}
${userdb}
mail_location = maildir:~/Maildir

service anvil {
  # Disables the anvil auth penalty (2, 4, 8, 15 s extra per failure from one IP; measured).
  # A listener with mode 0 is not created, so the auth process cannot reach the penalty tracker.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  # Start auth at once: the Lua's script_init runs now, so a broken script fails startup.
  process_min_avail = 1
}
service imap-login {
  inet_listener imap {
    port = ${ports.imap}
  }
  inet_listener imaps {
    port = 0
  }
}
${
  ports.submission === undefined
    ? ''
    : `service submission-login {
  inet_listener submission {
    port = ${ports.submission}
  }
}
submission_relay_host = ${RELAY_HOST}
submission_relay_port = ${RELAY_PORT}`
}
${(options.loginProcesses ?? 'reused') === 'reused' ? `!include ${SHIPPED_LOGIN_RATE_CONF}` : ''}
${options.extraConfig ?? ''}
`;
}

function moduleDirOf(configPath: string): string {
  const result = spawnSync('doveconf', ['-c', configPath, '-h', 'mail_plugin_dir'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    fail(`doveconf rejected the generated config: ${(result.stderr || String(result.error)).trim()}`);
  }
  return result.stdout.trim();
}

function childEnvironment(options: StartDovecotOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // Never leak the caller's POSTERN_* (e.g. a developer's token) into the instance under test.
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('POSTERN_')) env[key] = value;
  }
  env.POSTERN_AUTH_URL = typeof options.authUrl === 'string' ? options.authUrl : options.authUrl.join(',');
  if (options.internalToken !== undefined) env.POSTERN_INTERNAL_TOKEN = options.internalToken;
  if (options.timeoutMs !== undefined) env.POSTERN_AUTH_TIMEOUT_MS = String(options.timeoutMs);
  return env;
}

async function startOnce(
  options: StartDovecotOptions,
  ports: { imap: number; submission: number | undefined },
  attemptsLeft: number,
): Promise<RunningDovecot & { retry?: string }> {
  const luaFile = options.luaFile ?? POSTERN_PASSDB_LUA;
  const root = mkdtempSync(join(tmpdir(), 'postern-dovecot-'));
  // Dovecot's unprivileged processes (login, auth, mail as nobody) must traverse the temp dir.
  chmodSync(root, 0o755);
  const layout: Layout = {
    root,
    runDir: join(root, 'run'),
    stateDir: join(root, 'state'),
    mailDir: join(root, 'mail'),
    logPath: join(root, 'dovecot.log'),
    configPath: join(root, 'dovecot.conf'),
    usersPath: join(root, 'users.passwd'),
  };
  mkdirSync(layout.stateDir);
  mkdirSync(layout.mailDir);
  chownSync(layout.mailDir, MAIL_UID, MAIL_GID);
  if (options.users) {
    // passwd-file: user:password:uid:gid:gecos:home:shell:extra_fields (no password: userdb only)
    const lines = options.users.map((user) => `${user}::${MAIL_UID}:${MAIL_GID}::${layout.mailDir}/${user}::`);
    writeFileSync(layout.usersPath, `${lines.join('\n')}\n`);
  }
  writeFileSync(layout.configPath, renderConfig(layout, options, ports));

  const cleanup = () => rmSync(root, { recursive: true, force: true });
  try {
    const moduleDir = moduleDirOf(layout.configPath);
    if (!existsSync(join(moduleDir, 'auth', 'libauthdb_lua.so'))) {
      fail(`the Lua auth plugin is missing (${moduleDir}/auth/libauthdb_lua.so): install dovecot-auth-lua`);
    }
    if (ports.submission !== undefined && !existsSync(join(dirname(moduleDir), 'submission-login'))) {
      fail('submission was requested but dovecot-submissiond is not installed');
    }
  } catch (error) {
    cleanup();
    throw error;
  }

  const { child, output, stop } = spawnLogged(
    'dovecot',
    ['-F', '-c', layout.configPath],
    { env: childEnvironment(options) },
    { afterStop: cleanup },
  );

  const logs = () => {
    const file = existsSync(layout.logPath) ? readFileSync(layout.logPath, 'utf8') : '';
    return output.text ? `${file}\n--- dovecot stdout/stderr ---\n${output.text}` : file;
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? DOVECOT_START_TIMEOUT_MS);
  const isDefaultScript = luaFile === POSTERN_PASSDB_LUA;
  let listeningSince: number | undefined;
  for (;;) {
    const text = logs();
    if (/Address already in use/.test(text)) {
      await stop();
      return { ...NOT_STARTED, logs, stop, retry: 'address in use' };
    }
    if (/Fatal:/.test(text) || hasExited(child)) {
      const detail = text;
      await stop();
      fail(`Dovecot did not start:\n${detail}`);
    }
    const listening =
      (await canConnect(ports.imap)) && (ports.submission === undefined || (await canConnect(ports.submission)));
    // Our script logs one line from script_init; its presence means cjson loaded and the
    // environment arrived. Another script: the listeners are enough.
    const scriptReady = !isDefaultScript || /auth: Info: postern passdb: url=/.test(text);
    if (listening && scriptReady) break;
    listeningSince = listening ? (listeningSince ?? Date.now()) : undefined;
    if (listeningSince !== undefined && Date.now() - listeningSince > AUTH_LOG_STALL_MS && attemptsLeft > 0) {
      await stop();
      return { ...NOT_STARTED, logs, stop, retry: `no auth log line ${AUTH_LOG_STALL_MS} ms after IMAP listened` };
    }
    if (Date.now() > deadline) {
      await stop();
      fail(`Dovecot was not ready within ${options.startTimeoutMs ?? DOVECOT_START_TIMEOUT_MS} ms:\n${text}`);
    }
    await sleep(50);
  }

  return {
    imapPort: ports.imap,
    submissionPort: ports.submission,
    baseDir: layout.runDir,
    configPath: layout.configPath,
    logs,
    stop,
  };
}

function isSubmissionInstalled(): boolean {
  const result = spawnSync('doveconf', ['-c', '/dev/null', '-h', 'mail_plugin_dir'], { encoding: 'utf8' });
  const moduleDir = result.status === 0 ? result.stdout.trim() : '/usr/lib/dovecot/modules';
  return existsSync(join(dirname(moduleDir), 'submission-login'));
}

/** Starts Dovecot (`dovecot -F`) and resolves once IMAP (and submission) accept connections. */
export async function startDovecot(options: StartDovecotOptions): Promise<RunningDovecot> {
  checkPrerequisites(options.luaFile ?? POSTERN_PASSDB_LUA);
  const wantSubmission = options.submission ?? (options.submissionPort !== undefined || isSubmissionInstalled());
  // Free ports are picked then released, so another process may grab one in between: retry.
  // A start whose auth log stalled is retried too (AUTH_LOG_STALL_MS).
  for (let attempt = 1; ; attempt++) {
    const imap = options.imapPort ?? (await freePort());
    let submission = wantSubmission ? (options.submissionPort ?? (await freePort())) : undefined;
    // Two released ports may come back equal; ask again.
    while (submission === imap && options.submissionPort === undefined) submission = await freePort();
    const ports = { imap, submission };
    const running = await startOnce(options, ports, START_ATTEMPTS - attempt);
    if (running.retry === undefined) return running;
    const chosenByUs = options.imapPort === undefined && (options.submissionPort === undefined || !wantSubmission);
    if (running.retry === 'address in use' && (!chosenByUs || attempt >= START_ATTEMPTS)) {
      fail(`port already in use (imap ${ports.imap}, submission ${ports.submission})`);
    }
    console.warn(`startDovecot: attempt ${attempt} stopped and made again (${running.retry})`);
  }
}
