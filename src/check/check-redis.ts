// `postern check`'s Redis line: connect once (no endless retry), PING, name the version, or say
// in one sentence what is wrong and how to fix it.
import type { CheckDeps, CheckLine } from './check-line.js';

export async function checkRedis(deps: CheckDeps): Promise<CheckLine> {
  const { redisSentinels, redisSentinelName } = deps.config;
  const viaSentinels = redisSentinels !== undefined && redisSentinels.length > 0;
  // With Sentinels the URL's host is not used: name the group and the Sentinels instead.
  const target = viaSentinels
    ? `the master of "${redisSentinelName}" (Sentinels ${redisSentinels.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',')})`
    : describeRedisUrl(deps.config.redisUrl);
  const timeoutMs = deps.redisTimeoutMs ?? 3000;
  const redis = deps.openRedis();
  let lastError: Error | undefined;
  let failConnect: ((error: Error) => void) | undefined;
  redis.on('error', (error: Error) => {
    lastError = error;
    // The first failed connection attempt is the answer; ioredis would retry for ever.
    failConnect?.(error);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      if (redis.status === 'ready') return resolve();
      failConnect = reject;
      redis.once('ready', resolve);
      setTimeout(() => reject(lastError ?? new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref();
    });
    failConnect = undefined;
    await redis.ping();
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    const master = viaSentinels ? ` at ${redis.stream?.remoteAddress}:${redis.stream?.remotePort}` : '';
    return {
      name: 'redis',
      status: 'ok',
      detail: `${target}${master} answers${version ? ` (Redis ${version})` : ''}`,
    };
  } catch (error) {
    return { name: 'redis', status: 'fail', detail: describeRedisFault(lastError ?? error, target) };
  } finally {
    redis.disconnect();
  }
}

function describeRedisUrl(redisUrl: string): string {
  const url = new URL(redisUrl);
  return `${url.hostname}:${url.port || 6379}`;
}

function describeRedisFault(error: unknown, target: string): string {
  const code = (error as { code?: string }).code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ECONNREFUSED') {
    return `nothing listens at ${target} (ECONNREFUSED): start Redis, or correct host and port in POSTERN_REDIS_URL`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return `the host of ${target} does not resolve (${code}): correct the host in POSTERN_REDIS_URL`;
  }
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(message)) {
    return `Redis at ${target} refused the credentials (${message.split('\n')[0]}): set the password in POSTERN_REDIS_URL (redis://:password@host:port or redis://user:password@host:port)`;
  }
  if (/ETIMEDOUT|no answer within/i.test(`${code} ${message}`)) {
    return `no Redis answer from ${target} (${message}): check that Redis runs there and that a firewall lets postern through`;
  }
  return `${message} (at ${target})`;
}
