// `postern check`: asks every dependency postern needs whether it will work, one line each, and
// says for each problem what is wrong and how to fix it (MySQL lines: check-mysql.ts, Redis:
// check-redis.ts, the identity provider's: below). Never throws for a dependency's fault
// (that is the report's content) and never prints a password, token or client secret.
import type { Config } from '../config/schema.js';
import { type IdpSettings, loadIdpSettings } from '../sources/idp-settings.js';
import { createSecretBox } from '../sources/secret-box.js';
import { type ConnectionStep, testIdpConnection } from '../sources/test-connection.js';
import type { Db } from '../storage/db.js';
import { readServerIdentity } from '../storage/schema-checks.js';
import type { CheckDeps, CheckLine } from './check-line.js';
import {
  attempt,
  checkSchema,
  checkTriggerPrivilege,
  describeDbUrl,
  describeMysqlFault,
  innermost,
} from './check-mysql.js';
import { checkRedis } from './check-redis.js';

export type { CheckDeps, CheckLine, CheckStatus } from './check-line.js';

export async function checkDependencies(deps: CheckDeps): Promise<CheckLine[]> {
  const { config } = deps;
  const lines: CheckLine[] = [{ name: 'configuration', status: 'ok', detail: 'every POSTERN_* variable is valid' }];
  const dbTarget = describeDbUrl(config.dbUrl);

  let db: Db | undefined;
  try {
    db = await deps.openDb();
    const server = await readServerIdentity(db);
    lines.push({
      name: 'mysql',
      status: 'ok',
      detail: `database \`${db.databaseName}\` at ${dbTarget.address} as ${server?.user} (${server?.version})`,
    });
  } catch (error) {
    lines.push({ name: 'mysql', status: 'fail', detail: describeMysqlFault(error, dbTarget) });
    await db?.close().catch(() => undefined);
    db = undefined;
  }

  const skipped = 'not checked: MySQL is not reachable';
  let idpLines: CheckLine[] = [{ name: 'idp', status: 'skip', detail: `${skipped} (the settings live there)` }];
  if (db) {
    try {
      const open = db;
      lines.push(await attempt('mysql schema', dbTarget, () => checkSchema(open, config)));
      lines.push(await attempt('mysql trigger privilege', dbTarget, () => checkTriggerPrivilege(open, config)));
      idpLines = await checkIdp(db, config).catch((error: unknown) => [
        { name: 'idp', status: 'fail' as const, detail: describeMysqlFault(error, dbTarget) },
      ]);
    } finally {
      await db.close().catch(() => undefined);
    }
  } else {
    for (const name of ['mysql schema', 'mysql trigger privilege'])
      lines.push({ name, status: 'skip', detail: skipped });
  }
  lines.push(await checkRedis(deps));
  lines.push(...idpLines);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Identity provider: the settings in mailcow's identity_provider table, tested as the admin UI's
// "test connection" does (sources/test-connection.ts), step by step.

const STEP_LINES: Record<ConnectionStep['step'], string> = {
  discovery: 'idp discovery',
  endpoints: 'idp discovery',
  client_credentials: 'idp client credentials',
  client_authentication: 'idp client credentials',
  jwks: 'idp jwks',
  admin_api: 'keycloak admin api',
  sample_user: 'idp sample user',
  attribute_mapping: 'idp sample user',
};

async function checkIdp(db: Db, config: Config): Promise<CheckLine[]> {
  let loaded: Awaited<ReturnType<typeof loadIdpSettings>>;
  try {
    loaded = await loadIdpSettings(db, createSecretBox(config.secretKey));
  } catch (error) {
    if (innermost(error).code === 'ER_NO_SUCH_TABLE') {
      return [
        { name: 'idp', status: 'skip', detail: 'not checked: no identity_provider table yet (see mysql schema)' },
      ];
    }
    const message = error instanceof Error ? error.message : String(error);
    return [{ name: 'idp', status: 'fail', detail: `cannot read the identity provider's settings: ${message}` }];
  }
  if (loaded.state === 'none') {
    return [
      { name: 'idp', status: 'skip', detail: 'no identity provider configured (mail logins use local passwords only)' },
    ];
  }
  if (loaded.state === 'invalid') {
    return [
      {
        name: 'idp',
        status: 'fail',
        detail: `the ${loaded.authsource || 'identity provider'} settings are incomplete (${loaded.problems.join('; ')}): complete them in the admin UI or with PUT /api/v1/idp`,
      },
    ];
  }
  const settings = loaded.settings;
  const report = await testIdpConnection(settings, { timeoutMs: config.idpTimeoutMs });
  const lines: CheckLine[] = report.steps.map((step) => ({
    name: STEP_LINES[step.step],
    status: step.ok ? 'ok' : 'fail',
    detail: step.detail,
  }));
  const wanted = [
    'idp discovery',
    'idp client credentials',
    ...(needsAdminApi(settings) ? ['keycloak admin api'] : []),
  ];
  const failedAt = lines.find((line) => line.status === 'fail')?.name;
  for (const name of wanted) {
    if (lines.some((line) => line.name === name)) continue;
    lines.push({ name, status: 'skip', detail: `not checked: ${failedAt ?? 'an earlier step'} failed` });
  }
  if (!needsAdminApi(settings)) {
    lines.push({
      name: 'keycloak admin api',
      status: 'skip',
      detail:
        settings.authsource === 'keycloak'
          ? 'periodic sync, user import and the mailpassword flow are off'
          : 'not a Keycloak provider',
    });
  }
  return lines;
}

function needsAdminApi(settings: IdpSettings): boolean {
  return (
    settings.authsource === 'keycloak' &&
    (settings.periodic_sync || settings.import_users || settings.mailpassword_flow)
  );
}
