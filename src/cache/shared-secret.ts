// A random secret generated once per deployment and shared by replicas through Redis (first
// writer wins), and the wait for a Redis client that is still connecting.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Redis } from './redis.js';

/** SET NX a fresh random value, then read whichever value won. Throws when Redis cannot answer. */
export async function fetchSharedSecret(redis: Redis, key: string): Promise<string> {
  await redis.set(key, randomBytes(32).toString('base64'), 'NX');
  const stored = await redis.get(key);
  if (!stored) throw new Error(`${key} missing right after SET NX`);
  return stored;
}

/**
 * The shared secret, or, without Redis at start-up, a private one: callers that only count with
 * it keep working, replicas just do not recognise each other's values until restarted.
 */
export async function loadSharedSecret(redis: Redis, key: string, log: Logger): Promise<string> {
  try {
    if (!(await waitUntilReady(redis, 2000))) throw new Error(`redis is ${redis.status}`);
    return await fetchSharedSecret(redis, key);
  } catch (error) {
    log.warn({ err: (error as Error).message, key }, 'shared secret not loaded from redis; using a private one');
    return randomBytes(32).toString('base64');
  }
}

/** True once the client is ready; false on its first error, its end, or the timeout. */
export function waitUntilReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  if (redis.status === 'end' || redis.status === 'close') return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (isReady: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onFailure);
      redis.off('end', onFailure);
      resolve(isReady);
    };
    const onReady = () => settle(true);
    const onFailure = () => settle(false);
    const timer = setTimeout(onFailure, timeoutMs);
    redis.once('ready', onReady);
    redis.once('error', onFailure);
    redis.once('end', onFailure);
  });
}
