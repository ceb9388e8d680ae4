// Reads POSTERN_* variables (and <NAME>_FILE for secrets), parses them with the schema and
// reports every problem at once, each with its variable name. Pure apart from reading files
// named by *_FILE; it never logs, so a secret cannot leak from here.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { type Config, type VariableKey, type VariableSpec, variables } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Parse the configuration from an environment; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const parsed: Record<string, unknown> = {};
  const known = new Set<string>();

  for (const [key, spec] of Object.entries(variables) as [VariableKey, VariableSpec][]) {
    known.add(spec.env);
    known.add(`${spec.env}_FILE`);
    const raw = readRaw(spec, env, problems);
    if (raw === undefined) {
      parsed[key] = undefined;
      continue;
    }
    const result = spec.schema.safeParse(raw);
    if (result.success) {
      parsed[key] = result.data;
    } else {
      const shown = spec.isSecret ? '' : ` (got ${JSON.stringify(raw)})`;
      for (const issue of result.error.issues) problems.push(`${spec.env}: ${issue.message}${shown}`);
    }
  }

  // A misspelt variable silently falling back to a default is worse than refusing to start.
  for (const name of Object.keys(env)) {
    if (name.startsWith('POSTERN_') && !known.has(name) && !EXTERNAL_VARIABLES.has(name)) {
      problems.push(`${name}: unknown variable (see the configuration reference in README.md)`);
    }
  }

  const { sessionTtlSeconds, sessionMaxSeconds } = parsed as { sessionTtlSeconds?: number; sessionMaxSeconds?: number };
  if (sessionTtlSeconds !== undefined && sessionMaxSeconds !== undefined && sessionMaxSeconds < sessionTtlSeconds) {
    problems.push(
      `POSTERN_SESSION_MAX_SECONDS: must be at least POSTERN_SESSION_TTL_SECONDS (${sessionTtlSeconds}) (got ${sessionMaxSeconds})`,
    );
  }
  const tls = parsed as { internalTlsListen?: unknown; internalTlsCertFile?: unknown; internalTlsKeyFile?: unknown };
  const tlsSet = [tls.internalTlsListen, tls.internalTlsCertFile, tls.internalTlsKeyFile].map((v) => v !== undefined);
  if (tlsSet.some(Boolean) && !tlsSet.every(Boolean)) {
    problems.push(
      'POSTERN_INTERNAL_TLS_LISTEN, POSTERN_INTERNAL_TLS_CERT_FILE and POSTERN_INTERNAL_TLS_KEY_FILE: set all three or none',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  parsed.hashThreads ??= Math.max(1, cpus().length);
  return Object.freeze(parsed) as Config;
}

/** Read by other programs (our Dovecot Lua script), not by postern itself; allowed in the env. */
const EXTERNAL_VARIABLES = new Set(['POSTERN_AUTH_URL', 'POSTERN_AUTH_TIMEOUT_MS']);

function readRaw(spec: VariableSpec, env: Env, problems: string[]): string | undefined {
  const direct = env[spec.env];
  const fileName = spec.isSecret ? env[`${spec.env}_FILE`] : undefined;
  if (direct !== undefined && fileName !== undefined) {
    problems.push(`${spec.env}: set either ${spec.env} or ${spec.env}_FILE, not both`);
    return undefined;
  }
  if (fileName !== undefined) {
    try {
      // Secrets files conventionally end with a newline; the secret itself never does.
      return readFileSync(fileName, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      problems.push(`${spec.env}_FILE: cannot read ${fileName} (${code})`);
      return undefined;
    }
  }
  if (direct === undefined || direct === '') return spec.defaultValue;
  return direct;
}
