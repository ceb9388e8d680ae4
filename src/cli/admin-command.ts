// `postern admin create|passwd|reset-2fa`: bootstrap and rescue admin accounts without SQL, e.g.
// `docker compose exec postern postern admin create root --superadmin`. Passwords come from a
// no-echo prompt on a terminal or from stdin's first line, never from argv (which `ps` shows).
import type { Readable, Writable } from 'node:stream';
import { createAdminAccount, setAdminPassword } from '../admin/admin-accounts.js';
import { resetAdminTwoFactor } from '../admin/two-factor-reset.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { hashPassword } from '../passwords/hash-password.js';
import { recordAudit, systemActor } from '../storage/audit.js';
import { createDb } from '../storage/db.js';
import { applyMigrations } from '../storage/migrate.js';

export interface CliIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
}

export const ADMIN_USAGE = `usage:
  postern admin create <username> --superadmin
  postern admin create <username> --domain example.org[,example.net]
  postern admin passwd <username>
  postern admin reset-2fa <username>
The password is read from a prompt (terminal) or from the first line of stdin, never from arguments.`;

/** The audit actor of everything done from the command line: no account, so no role, and no client address. */
const CLI_ACTOR = systemActor('cli');

interface Parsed {
  command: 'create' | 'passwd' | 'reset-2fa';
  username: string;
  superadmin: boolean;
  domains: string[];
}

function parse(args: readonly string[]): Parsed | string {
  const [command, username, ...rest] = args;
  if (command !== 'create' && command !== 'passwd' && command !== 'reset-2fa') return ADMIN_USAGE;
  if (!username || username.startsWith('-')) return `postern admin ${command}: a username is required\n${ADMIN_USAGE}`;
  let superadmin = false;
  const domains: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    if (/^--pass(word)?(=|$)/.test(arg) || arg === '-p') {
      return 'postern admin: passwords are never taken from the command line (other users can read it); use the prompt or stdin';
    }
    if (command === 'create' && arg === '--superadmin') superadmin = true;
    else if (command === 'create' && (arg === '--domain' || arg.startsWith('--domain='))) {
      const value = arg === '--domain' ? rest[++i] : arg.slice('--domain='.length);
      if (!value) return 'postern admin create: --domain needs a comma-separated list of domains';
      domains.push(...value.split(','));
    } else return `postern admin ${command}: unknown argument "${arg}"\n${ADMIN_USAGE}`;
  }
  if (command === 'create' && superadmin === domains.length > 0) {
    return 'postern admin create: give exactly one of --superadmin or --domain <d1,d2>';
  }
  return { command, username, superadmin, domains };
}

/** Runs one admin subcommand; returns the exit code (0 ok, 1 refused or failed, 2 usage). */
export async function runAdminCommand(args: readonly string[], config: Config, log: Logger, io: CliIo) {
  const parsed = parse(args);
  if (typeof parsed === 'string') {
    io.stderr.write(`${parsed}\n`);
    return 2;
  }
  const db = await createDb({ url: config.dbUrl, poolSize: 2, createDatabase: true });
  try {
    // A fresh install may run this before the first start: the tables must exist.
    if (config.migrate === 'on') await applyMigrations(db, log);
    if (parsed.command === 'reset-2fa') {
      const outcome = await resetAdminTwoFactor(db, { username: parsed.username, actor: CLI_ACTOR });
      if (!outcome.ok) return fail(io, outcome.message);
      io.stdout.write(
        `two-factor sign-in reset for ${parsed.username.trim().toLowerCase()} (${outcome.removed} authenticator(s) removed); they will be told at their next sign-in\n`,
      );
      return 0;
    }
    const password = await readPassword(io, parsed.username);
    if (password === undefined) return fail(io, 'no password given');
    const deps = {
      db,
      hashPool: {
        hash: (secret: string, scheme: Config['passwordScheme']) =>
          hashPassword(secret, scheme, { bcryptCost: config.bcryptCost, bcryptImpl: config.bcryptImpl }),
      },
      passwordScheme: config.passwordScheme,
    };
    if (parsed.command === 'create') {
      const outcome = await createAdminAccount(deps, {
        username: parsed.username,
        password,
        superadmin: parsed.superadmin,
        domains: parsed.domains,
      });
      if (!outcome.ok) return fail(io, outcome.message);
      const account = outcome.value;
      await recordAudit(db, {
        actor: CLI_ACTOR,
        action: 'admin.create',
        target: account.username,
        detail: { after: { superadmin: account.superadmin, active: account.active, domains: account.domains } },
      });
      const role = account.superadmin ? 'superadmin' : `domain admin of ${account.domains.join(', ')}`;
      io.stdout.write(`created ${role} ${account.username}\n`);
      return 0;
    }
    const outcome = await setAdminPassword(deps, parsed.username, password);
    if (!outcome.ok) return fail(io, outcome.message);
    await recordAudit(db, { actor: CLI_ACTOR, action: 'admin.password', target: outcome.value.username });
    io.stdout.write(`password changed for ${outcome.value.username}\n`);
    return 0;
  } finally {
    await db.close();
  }
}

function fail(io: CliIo, message: string): number {
  io.stderr.write(`postern admin: ${message}\n`);
  return 1;
}

/** A terminal gets a no-echo prompt, asked twice; anything else gives its first line. */
async function readPassword(io: CliIo, username: string): Promise<string | undefined> {
  if (io.stdin.isTTY && io.stdin.setRawMode) {
    const first = await promptHidden(io, `New password for ${username}: `);
    if (!first) return undefined;
    const second = await promptHidden(io, 'Repeat it: ');
    if (first !== second) {
      io.stderr.write('postern admin: the two passwords differ\n');
      return undefined;
    }
    return first;
  }
  const line = await readFirstLine(io.stdin);
  return line ? line : undefined;
}

async function readFirstLine(stdin: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.includes('\n') || text.length > 4096) break;
  }
  // Only the line ending is removed: a password's own spaces are part of it.
  return (text.split('\n')[0] ?? '').replace(/\r$/, '');
}

function promptHidden(io: CliIo, prompt: string): Promise<string | undefined> {
  const { stdin } = io;
  // Echo goes off before the prompt shows, so nothing typed after seeing it is ever echoed.
  stdin.setRawMode?.(true);
  io.stderr.write(prompt);
  return new Promise((resolve) => {
    let value = '';
    const finish = (result: string | undefined) => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.stderr.write('\n');
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish(value);
        if (char === '\u0003' || char === '\u0004') return finish(undefined);
        if (char === '\u007f' || char === '\b') value = [...value].slice(0, -1).join('');
        else value += char;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}
