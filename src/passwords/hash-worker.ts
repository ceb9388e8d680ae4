// The piscina worker: runs one verification or hashing task on a worker thread. It holds no
// state and no policy of its own; every setting arrives with the task.
import { type HashPasswordOptions, hashPassword, type NewHashScheme } from './hash-password.js';
import type { BcryptImpl } from './schemes/index.js';
import { type HashVerdict, verifyPasswordHash } from './verify-password-hash.js';

export type HashTask =
  | { kind: 'verify'; stored: string; candidate: string; allowPlaintext: boolean; bcryptImpl: BcryptImpl }
  | { kind: 'hash'; password: string; scheme: NewHashScheme; options: HashPasswordOptions };

export default function runHashTask(task: HashTask): Promise<HashVerdict | string> {
  if (task.kind === 'verify') {
    return verifyPasswordHash(task.stored, task.candidate, {
      allowPlaintext: task.allowPlaintext,
      bcryptImpl: task.bcryptImpl,
    });
  }
  return hashPassword(task.password, task.scheme, task.options);
}
