// A random secret generated once per deployment and shared by replicas through Redis (first
// writer wins). Without Redis at start-up, a private one is used: counting still works, replicas
// just do not recognise each other's fingerprints until restarted with Redis up.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Redis } from './redis.js';

export async function loadSharedSecret(redis: Redis, key: string, log: Logger): Promise<string> {
  const candidate = randomBytes(32).toString('base64');
  try {
    if (redis.status !== 'ready') await onceReady(redis, 2000);
    await redis.set(key, candidate, 'NX');
    const shared = await redis.get(key);
    if (shared) return shared;
  } catch (error) {
    log.warn({ err: (error as Error).message, key }, 'shared secret not loaded from redis; using a private one');
  }
  return candidate;
}

function onceReady(redis: Redis, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`redis not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
