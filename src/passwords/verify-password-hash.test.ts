import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { PasswordFixture } from '../../scripts/generate-hash-vectors.js';
import { isExpensiveScheme, verifyPasswordHash } from './verify-password-hash.js';

const fixtureUrl = new URL('../../test/fixtures/password-hashes.json', import.meta.url);
const { vectors } = JSON.parse(readFileSync(fixtureUrl, 'utf8')) as PasswordFixture;
const withPlaintext = { allowPlaintext: true };
const bcryptVectors = vectors.filter((vector) => /^(\{[^}]+\})?\$2[aby]\$/.test(vector.stored));
const vectorFrom = (source: string) => {
  const vector = vectors.find((candidate) => candidate.source === source);
  if (vector === undefined) throw new Error(`fixture has no vector from ${source}`);
  return vector;
};

describe('verifyPasswordHash against hashes made by Dovecot and crypt(3) tools', () => {
  it('covers every scheme doveadm can verify from a password alone', () => {
    expect(new Set(vectors.map((vector) => vector.scheme))).toEqual(
      new Set([
        ...['SHA', 'SHA1', 'SHA256', 'SHA512', 'SMD5', 'SSHA', 'SSHA256', 'SSHA512', 'PLAIN-MD4', 'PLAIN-MD5'],
        ...['LDAP-MD5', 'CRAM-MD5', 'HMAC-MD5', 'MD5', 'MD5-CRYPT', 'DES-CRYPT', 'SHA256-CRYPT', 'SHA512-CRYPT'],
        ...['CRYPT', 'BLF-CRYPT', 'PBKDF2', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'ARGON2I', 'ARGON2ID'],
        ...['PLAIN', 'CLEAR', 'CLEARTEXT', 'PLAIN-TRUNC'],
        // Not Dovecot's: FreeIPA's format, accepted by mailcow's verify_hash() (vectors by hashlib).
        'PBKDF2-SHA512',
      ]),
    );
  });

  it.each(vectors)('accepts the right password for $scheme from "$source": $stored', async (vector) => {
    await expect(verifyPasswordHash(vector.stored, vector.password, withPlaintext)).resolves.toEqual({
      ok: true,
      scheme: vector.scheme,
    });
  });

  it.each(vectors)('reports a wrong password as a mismatch for $scheme from "$source"', async (vector) => {
    await expect(verifyPasswordHash(vector.stored, vector.wrongPassword, withPlaintext)).resolves.toEqual({
      ok: false,
      reason: 'mismatch',
      scheme: vector.scheme,
    });
  });

  it.each(bcryptVectors)('reaches the same verdicts with bcryptjs for $stored', async (vector) => {
    const options = { allowPlaintext: false, bcryptImpl: 'js' } as const;
    await expect(verifyPasswordHash(vector.stored, vector.password, options)).resolves.toMatchObject({ ok: true });
    await expect(verifyPasswordHash(vector.stored, vector.wrongPassword, options)).resolves.toMatchObject({
      reason: 'mismatch',
    });
  });
});

describe('verifyPasswordHash reading Dovecot encodings', () => {
  const sha256Hex = vectorFrom('doveadm pw -s SHA256.HEX');

  it('reads scheme names and encoding suffixes case-insensitively', async () => {
    const lowerCased = sha256Hex.stored.replace('{SHA256.HEX}', '{sha256.hex}');
    await expect(verifyPasswordHash(lowerCased, sha256Hex.password, withPlaintext)).resolves.toEqual({
      ok: true,
      scheme: 'SHA256',
    });
  });

  it('reads an upper-case hex digest where base64 is the default, as Dovecot guesses by length', async () => {
    const upperHex = `{SHA256}${sha256Hex.stored.slice('{SHA256.HEX}'.length).toUpperCase()}`;
    await expect(verifyPasswordHash(upperHex, sha256Hex.password, withPlaintext)).resolves.toMatchObject({ ok: true });
  });

  it('ignores line breaks inside base64 as Dovecot does', async () => {
    const vector = vectorFrom('doveadm pw -s SSHA512');
    const wrapped = `${vector.stored.slice(0, 40)}\r\n${vector.stored.slice(40)}`;
    await expect(verifyPasswordHash(wrapped, vector.password, withPlaintext)).resolves.toMatchObject({ ok: true });
  });

  it('cuts anything after the hash of a bare $1$ value, as Dovecot does', async () => {
    const vector = vectorFrom('openssl passwd -1');
    await expect(verifyPasswordHash(`${vector.stored}$ignored`, vector.password, withPlaintext)).resolves.toEqual({
      ok: true,
      scheme: 'MD5-CRYPT',
    });
  });

  it('ignores whitespace around a stored hash, left by CSV and SQL imports', async () => {
    const vector = vectorFrom('doveadm pw -s SHA512-CRYPT');
    await expect(verifyPasswordHash(` \t${vector.stored}\r\n`, vector.password, withPlaintext)).resolves.toMatchObject({
      ok: true,
    });
  });

  it('keeps trailing spaces of a cleartext password, which belong to the password', async () => {
    await expect(verifyPasswordHash('{PLAIN}secret ', 'secret', withPlaintext)).resolves.toMatchObject({
      reason: 'mismatch',
    });
    await expect(verifyPasswordHash('{PLAIN}secret ', 'secret ', withPlaintext)).resolves.toMatchObject({ ok: true });
  });

  it('uses the candidate exactly as given: no trimming, no Unicode normalisation', async () => {
    const vector = vectors.find((candidate) => candidate.scheme === 'SHA512' && candidate.password === 'pässwörd');
    expect(vector).toBeDefined();
    const stored = vector?.stored ?? '';
    await expect(verifyPasswordHash(stored, 'pässwörd'.normalize('NFD'), withPlaintext)).resolves.toMatchObject({
      reason: 'mismatch',
    });
    await expect(verifyPasswordHash(stored, 'pässwörd ', withPlaintext)).resolves.toMatchObject({ reason: 'mismatch' });
  });

  it('ignores bcrypt password bytes after the 72nd, exactly like Dovecot', async () => {
    const vector = vectors.find(
      (candidate) => candidate.source === 'doveadm pw -s BLF-CRYPT' && Buffer.byteLength(candidate.password) > 72,
    );
    expect(vector).toBeDefined();
    const { stored = '', password = '' } = vector ?? {};
    await expect(verifyPasswordHash(stored, `${password} and more`, withPlaintext)).resolves.toMatchObject({
      ok: true,
    });
  });

  it('accepts a PLAIN-TRUNC password that starts with the stored, truncated one', async () => {
    await expect(verifyPasswordHash('{PLAIN-TRUNC}4-pass', 'passage', withPlaintext)).resolves.toMatchObject({
      ok: true,
    });
    await expect(verifyPasswordHash('{PLAIN-TRUNC}4-pass', 'pas', withPlaintext)).resolves.toMatchObject({
      reason: 'mismatch',
    });
  });
});

describe('verifyPasswordHash refusing what it must not accept', () => {
  it.each(['PLAIN', 'CLEAR', 'CLEARTEXT', 'PLAIN-TRUNC'])(
    'refuses {%s} as scheme_disabled unless plaintext is allowed, even with the right password',
    async (scheme) => {
      await expect(verifyPasswordHash(`{${scheme}}6-secret`, '6-secret', { allowPlaintext: false })).resolves.toEqual({
        ok: false,
        reason: 'scheme_disabled',
        scheme,
      });
    },
  );

  it.each([
    ['an unknown scheme', '{NOPE}abc', 'NOPE'],
    ['an unknown encoding suffix', '{SHA256.BIN}n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=', 'SHA256'],
    ['DIGEST-MD5, which needs the username', '{DIGEST-MD5}75e5f2eab75ef80bca2055f90bc5e2a1', 'DIGEST-MD5'],
    ['OTP, a one-time state', '{OTP}sha1 1024 57a746dd8a3841e0 e6b3db08dd80d4b4', 'OTP'],
    [
      'yescrypt through CRYPT',
      '{CRYPT}$y$j9T$QzCSANf8nXEmHF5NUu5J/1$2odG0UWfKbU3OmGoUMKhztvH8p4o6EOnCHEthoLvMMC',
      'CRYPT',
    ],
    [
      'scrypt through CRYPT',
      '{CRYPT}$7$CU..../....e3Jz1hbazyzjYzI6EJwxJ/$6RFBddaKPAa3hpn.4mBeDNHZ7D8aJxqxzp0jXF3r7T2',
      'CRYPT',
    ],
    ['the buggy $2x$ bcrypt', '{BLF-CRYPT}$2x$05$vbB/TOcTHwWXfxb62Fp9g.nJfw75Zl9x0HYoubP.IMMj7Wh89Owq6', 'BLF-CRYPT'],
    [
      'argon2d, which Dovecot lacks',
      '{ARGON2ID}$argon2d$v=19$m=65536,t=3,p=1$gX2tB7tA7N7aBBhv0HqtoQ$qRGFHzvemFCi4+tQsqGwKtx3sQi0OSxsjMzx7l4rcXs',
      'ARGON2ID',
    ],
  ])('reports %s as unsupported_scheme', async (_case, stored, scheme) => {
    await expect(verifyPasswordHash(stored, 'test', withPlaintext)).resolves.toEqual({
      ok: false,
      reason: 'unsupported_scheme',
      scheme,
    });
  });

  it('reports a value without a {SCHEME} prefix as unsupported, having no default scheme', async () => {
    const bare = '$2y$05$tNkilhVhAAGtHrlaENLErOBvSTu7wdbAQiRg7q/R5tnUJ03XyxBu.';
    await expect(verifyPasswordHash(bare, 'test', withPlaintext)).resolves.toEqual({
      ok: false,
      reason: 'unsupported_scheme',
    });
  });

  it.each([
    ['nothing', ''],
    ['only whitespace', ' \r\n'],
    ['a scheme without a hash', '{SHA256}'],
    ['a scheme followed by whitespace', '{BLF-CRYPT} \n'],
    ['an empty cleartext password', '{PLAIN}'],
  ])('reports %s as empty_hash', async (_case, stored) => {
    await expect(verifyPasswordHash(stored, '', withPlaintext)).resolves.toMatchObject({
      ok: false,
      reason: 'empty_hash',
    });
  });

  it('refuses a PLAIN-TRUNC entry of length 0, which Dovecot would match against any password', async () => {
    await expect(verifyPasswordHash('{PLAIN-TRUNC}0-', 'anything', withPlaintext)).resolves.toMatchObject({
      reason: 'malformed_hash',
    });
  });

  const sha512Crypt = vectorFrom('doveadm pw -s SHA512-CRYPT').stored;
  const bcrypt = vectorFrom('doveadm pw -s BLF-CRYPT').stored;
  const argon2id = vectorFrom('doveadm pw -s ARGON2ID').stored;
  const scram = vectorFrom('doveadm pw -s SCRAM-SHA-256').stored;
  const hex40 = 'b81f266a464ee6b02cc9f0c8b286d765487e3d7c';
  const b64salt = Buffer.alloc(16, 7).toString('base64');
  const b64key = Buffer.alloc(64, 9).toString('base64');
  it.each([
    ['an unclosed scheme', '{SHA256n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg='],
    ['an empty scheme name', '{}abc'],
    ['a digest that is not base64', '{SHA256}n4bQgYhMfWWaL+qgxVrQ!!O/TxsrC4Is0V1sFbDwCgg='],
    ['unpadded base64', '{SHA256}n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg'],
    ['a digest of the wrong length', '{SHA256}n4bQgYhMfWWaL+qgxVrQFQ=='],
    ['invalid hex under .HEX', '{SHA256.HEX}zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
    ['a PLAIN-MD4 digest too short', '{PLAIN-MD4}db346d691d7acc4d'],
    ['a CRAM-MD5 context too short', '{CRAM-MD5}e02d374fde0dc75a17a5'],
    ['an MD5 value neither $1$ nor a digest', '{MD5}not-a-digest'],
    ['a salted digest without salt', '{SSHA}qUqP5cyxm6YcTAhz05Hph5gvu9M='],
    ['SMD5 shorter than its digest', '{SMD5}AAAA'],
    ['a bcrypt hash cut short', bcrypt.slice(0, -5)],
    ['a bcrypt cost above 16', bcrypt.replace('$05$', '$17$')],
    ['a bcrypt cost below 4', bcrypt.replace('$05$', '$03$')],
    ['an unknown bcrypt variant', bcrypt.replace('$2y$', '$2q$')],
    ['a non-bcrypt value under BLF-CRYPT', `{BLF-CRYPT}${sha512Crypt.slice('{SHA512-CRYPT}'.length)}`],
    ['a SHA512-CRYPT hash cut short', sha512Crypt.slice(0, -5)],
    ['SHA512-CRYPT with rounds beyond the guard', sha512Crypt.replace('$6$', '$6$rounds=99999999$')],
    ['a SHA-crypt salt with invalid characters', sha512Crypt.replace('$6$', '$6$b!d')],
    ['an MD5-CRYPT salt longer than 8', '{MD5-CRYPT}$1$abcdefghij$xYuxUFvxUOR4Pd6a7EeUS0'],
    ['MD5-CRYPT without its $1$', '{MD5-CRYPT}abcdefgh$xYuxUFvxUOR4Pd6a7EeUS0'],
    ['a DES hash of the wrong length', '{DES-CRYPT}8iFLYHz4xMW.'],
    ['DES with invalid characters', '{CRYPT}8iFLYHz4xM!.U'],
    ['extended DES with a zero count', '{CRYPT}_....tXJhsQsTQ3bsBg.'],
    ['extended DES with a count beyond the guard', '{CRYPT}_zzzztXJhsQsTQ3bsBg.'],
    ['an argon2 hash without its digest', argon2id.slice(0, argon2id.lastIndexOf('$'))],
    ['argon2 with invalid base64', argon2id.replace(/\$[^$]+$/, '$!!!!')],
    ['argon2 memory beyond the guard', argon2id.replace('m=65536', 'm=99999999')],
    ['PBKDF2 with a short digest', '{PBKDF2}$1$rTMn9BgOIyfg0Stn$5000$b81f266a'],
    ['PBKDF2 with a foreign prefix', `{PBKDF2}$2$rTMn9BgOIyfg0Stn$5000$${hex40}`],
    ['PBKDF2 with zero rounds', `{PBKDF2}$1$rTMn9BgOIyfg0Stn$0$${hex40}`],
    ['PBKDF2 with rounds beyond the guard', `{PBKDF2}$1$rTMn9BgOIyfg0Stn$99999999$${hex40}`],
    ['PBKDF2-SHA512 without its hash', `{PBKDF2-SHA512}10000$${b64salt}$`],
    ['PBKDF2-SHA512 with zero iterations', `{PBKDF2-SHA512}0$${b64salt}$${b64key}`],
    ['PBKDF2-SHA512 with iterations beyond the guard', `{PBKDF2-SHA512}99999999$${b64salt}$${b64key}`],
    ['PBKDF2-SHA512 with a salt that is not base64', `{PBKDF2-SHA512}10000$not.base64!$${b64key}`],
    ['PBKDF2-SHA512 with a hash that is not base64', `{PBKDF2-SHA512}10000$${b64salt}$${b64key.slice(1)}@`],
    ['PBKDF2-SHA512 with a fourth field', `{PBKDF2-SHA512}10000$${b64salt}$${b64key}$x`],
    ['PBKDF2-SHA512 with a key longer than 64 bytes', `{PBKDF2-SHA512}1$${b64salt}$${'A'.repeat(400)}`],
    // mailcow would derive 32 bytes here; PBKDF2's shorter output is a prefix of the longer one.
    ['PBKDF2-SHA512 with a key cut to 32 bytes', `{PBKDF2-SHA512}10000$${b64salt}$${b64key.slice(0, 44)}`],
    ['PBKDF2-SHA512 with a salt cut inside a base64 group', `{PBKDF2-SHA512}10000$${b64salt.slice(0, 5)}$${b64key}`],
    ['SCRAM with fields missing', scram.slice(0, scram.lastIndexOf(','))],
    ['SCRAM below 4096 iterations', scram.replace('{SCRAM-SHA-256}4096,', '{SCRAM-SHA-256}100,')],
    ['SCRAM with a stored key of the wrong size', scram.replace(/,[^,]+,([^,]+)$/, ',c2hvcnQ=,$1')],
    ['PLAIN-TRUNC without its length prefix', '{PLAIN-TRUNC}secret'],
  ])('reports %s as malformed_hash', async (_case, stored) => {
    await expect(verifyPasswordHash(stored, 'test', withPlaintext)).resolves.toMatchObject({
      ok: false,
      reason: 'malformed_hash',
    });
  });

  it.each(vectors)('never throws nor accepts a cut-off $scheme value from "$source"', async (vector) => {
    const { stored } = vector;
    const cuts = new Set([1, 5, Math.floor(stored.length / 2), Math.floor(stored.length / 3), stored.length - 1]);
    for (const cut of cuts) {
      const truncated = stored.slice(0, stored.length - cut);
      // A PLAIN-TRUNC entry cut inside its password is a shorter password: still a refusal.
      await expect(verifyPasswordHash(truncated, vector.password, withPlaintext)).resolves.toMatchObject({ ok: false });
    }
  });

  it('never throws on inputs that are not strings at all', async () => {
    const notAString = null as unknown as string;
    await expect(verifyPasswordHash(notAString, 'x', withPlaintext)).resolves.toMatchObject({ ok: false });
    await expect(verifyPasswordHash('{PLAIN}x', notAString, withPlaintext)).resolves.toMatchObject({ ok: false });
    expect(isExpensiveScheme(notAString)).toBe(false);
  });
});

describe('isExpensiveScheme', () => {
  it.each([
    ['{BLF-CRYPT}$2y$05$tNkilhVhAAGtHrlaENLErOBvSTu7wdbAQiRg7q/R5tnUJ03XyxBu.', true],
    ['{sha512-crypt}$6$abc$def', true],
    ['{CRYPT}8iFLYHz4xMW.U', true],
    ['{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$a$b', true],
    ['{PBKDF2}$1$salt$5000$abc', true],
    ['{PBKDF2-SHA512}10000$c2FsdA==$abc', true],
    ['{SCRAM-SHA-1}4096,salt,a,b', true],
    ['{MD5}$1$KQNhVYo9$ZObV.NzUA5cUZaAdiHhUi1', true],
    ['$1$KQNhVYo9$ZObV.NzUA5cUZaAdiHhUi1', true],
    ['{MD5}098f6bcd4621d373cade4e832627b4f6', false],
    ['{SHA256}n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=', false],
    ['{SSHA512}abcd', false],
    ['{PLAIN}secret', false],
    ['{NOPE}abc', false],
    ['garbage', false],
  ])('sends %s to the pool: %s', (stored, isExpensive) => {
    expect(isExpensiveScheme(stored)).toBe(isExpensive);
  });
});
