import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, type NewHashScheme } from './hash-password.js';
import { verifyPasswordHash } from './verify-password-hash.js';

const NEW_SCHEMES: NewHashScheme[] = ['BLF-CRYPT', 'SHA512-CRYPT', 'SHA256-CRYPT', 'ARGON2ID', 'SSHA512', 'SSHA256'];
const PASSWORD = 'pässwörd 🔑 with spaces ';
const WRONG_PASSWORD = 'Pässwörd 🔑 with spaces ';

function isVerifiedByDovecot(stored: string, password: string): boolean {
  const result = spawnSync('doveadm', ['pw', '-t', stored, '-p', password], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.trim().endsWith('(verified)');
}

describe('hashPassword', () => {
  beforeAll(() => {
    // CI installs dovecot-core; without doveadm this suite must fail, not quietly skip.
    const probe = spawnSync('doveadm', ['pw', '-l'], { encoding: 'utf8' });
    if (probe.error !== undefined || probe.status !== 0) {
      throw new Error('doveadm is required for these tests: apt-get install dovecot-core');
    }
  });

  it.each(NEW_SCHEMES)('writes {%s} hashes that postern verifies and Dovecot accepts', async (scheme) => {
    const stored = await hashPassword(PASSWORD, scheme, { bcryptCost: 5 });
    expect(stored.startsWith(`{${scheme}}`)).toBe(true);
    await expect(verifyPasswordHash(stored, PASSWORD, { allowPlaintext: false })).resolves.toEqual({
      ok: true,
      scheme,
    });
    await expect(verifyPasswordHash(stored, WRONG_PASSWORD, { allowPlaintext: false })).resolves.toMatchObject({
      reason: 'mismatch',
    });
    expect(isVerifiedByDovecot(stored, PASSWORD)).toBe(true);
    expect(isVerifiedByDovecot(stored, WRONG_PASSWORD)).toBe(false);
  });

  it.each(['native', 'js'] as const)(
    'writes BLF-CRYPT as $2y$ with the requested cost using the %s bcrypt',
    async (impl) => {
      const stored = await hashPassword(PASSWORD, 'BLF-CRYPT', { bcryptCost: 6, bcryptImpl: impl });
      expect(stored).toMatch(/^\{BLF-CRYPT\}\$2y\$06\$[./A-Za-z0-9]{53}$/);
      expect(isVerifiedByDovecot(stored, PASSWORD)).toBe(true);
    },
  );

  it("uses mailcow's bcrypt cost 10 unless told otherwise", async () => {
    await expect(hashPassword(PASSWORD, 'BLF-CRYPT')).resolves.toMatch(/^\{BLF-CRYPT\}\$2y\$10\$/);
  });

  it('refuses a bcrypt cost that verification would later refuse', async () => {
    await expect(hashPassword(PASSWORD, 'BLF-CRYPT', { bcryptCost: 17 })).rejects.toThrow(RangeError);
    await expect(hashPassword(PASSWORD, 'BLF-CRYPT', { bcryptCost: 3 })).rejects.toThrow(RangeError);
  });

  it.each(NEW_SCHEMES)('salts {%s}: the same password never hashes the same twice', async (scheme) => {
    const [first, second] = await Promise.all([
      hashPassword(PASSWORD, scheme, { bcryptCost: 4 }),
      hashPassword(PASSWORD, scheme, { bcryptCost: 4 }),
    ]);
    expect(first).not.toBe(second);
  });
});
