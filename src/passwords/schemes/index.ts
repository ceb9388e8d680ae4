// The password schemes postern verifies, under Dovecot 2.3's names, with Dovecot's encodings.
// Pure computation on already-decoded values: no `{SCHEME}` parsing, no policy (plaintext opt-in).
import type { PayloadEncoding } from '../stored-hash.js';
import { verifyArgon2 } from './argon2.js';
import { verifyBcrypt } from './bcrypt.js';
import { verifyCramMd5 } from './cram-md5.js';
import { verifyCrypt } from './crypt.js';
import { type DigestAlgorithm, digestLengthBytes, verifyDigest, verifySaltedDigest } from './digest.js';
import { verifyMd5Crypt, verifyMd5Scheme } from './md5-crypt.js';
import { verifyPbkdf2, verifyPbkdf2Sha512 } from './pbkdf2.js';
import { verifyPlain, verifyPlainTrunc } from './plain.js';
import { verifyScram } from './scram.js';
import type { BcryptImpl, SchemeDefinition, SchemeOutcome, VerifyContext } from './types.js';

export type { BcryptImpl, SchemeDefinition, SchemeOutcome, VerifyContext };

const always = () => true;
const never = () => false;

/** Crypt-style values are ASCII text; latin1 maps each stored byte to one character. */
function textScheme(verify: (stored: string, candidate: Buffer, context: VerifyContext) => SchemeOutcome) {
  return {
    defaultEncoding: 'none',
    isExpensive: always,
    verify: (raw, candidate, context) => verify(raw.toString('latin1'), candidate, context),
  } satisfies SchemeDefinition;
}

function digestScheme(algorithm: DigestAlgorithm, defaultEncoding: PayloadEncoding): SchemeDefinition {
  return {
    defaultEncoding,
    rawLength: digestLengthBytes[algorithm],
    isExpensive: never,
    verify: (raw, candidate) => verifyDigest(algorithm, raw, candidate),
  };
}

function saltedDigestScheme(algorithm: DigestAlgorithm): SchemeDefinition {
  return {
    defaultEncoding: 'base64',
    isExpensive: never,
    verify: (raw, candidate) => verifySaltedDigest(algorithm, raw, candidate),
  };
}

const plainScheme: SchemeDefinition = {
  defaultEncoding: 'none',
  isPlaintext: true,
  isExpensive: never,
  verify: verifyPlain,
};

const cramScheme: SchemeDefinition = {
  defaultEncoding: 'hex',
  rawLength: 32,
  isExpensive: never,
  verify: verifyCramMd5,
};

const cryptScheme = textScheme(verifyCrypt);
const argon2Scheme = textScheme(verifyArgon2);

/**
 * Keyed by upper-case name: Dovecot compares scheme names case-insensitively. Two schemes of
 * `doveadm pw -l` cannot be checked from a password alone and are absent (unsupported_scheme):
 * DIGEST-MD5 hashes the username and realm in, OTP is a state that changes on every use.
 */
export const schemesByName: ReadonlyMap<string, SchemeDefinition> = new Map<string, SchemeDefinition>([
  ['ARGON2I', argon2Scheme],
  ['ARGON2ID', argon2Scheme],
  // BLF-CRYPT insists on a bcrypt value, unlike CRYPT which also takes one.
  ['BLF-CRYPT', textScheme((stored, candidate, context) => verifyBcrypt(stored, candidate, context.bcryptImpl))],
  ['CRYPT', cryptScheme],
  ['DES-CRYPT', cryptScheme],
  ['SHA256-CRYPT', cryptScheme],
  ['SHA512-CRYPT', cryptScheme],
  ['MD5-CRYPT', textScheme(verifyMd5Crypt)],
  ['MD5', { ...textScheme(verifyMd5Scheme), isExpensive: (payload) => payload.startsWith('$1$') }],
  ['PBKDF2', textScheme(verifyPbkdf2)],
  // Not in `doveadm pw -l`: FreeIPA's format, which mailcow's verify_hash() accepts.
  ['PBKDF2-SHA512', textScheme(verifyPbkdf2Sha512)],
  ['SCRAM-SHA-1', textScheme((stored, candidate) => verifyScram('sha1', stored, candidate))],
  ['SCRAM-SHA-256', textScheme((stored, candidate) => verifyScram('sha256', stored, candidate))],
  ['SHA', digestScheme('sha1', 'base64')],
  ['SHA1', digestScheme('sha1', 'base64')],
  ['SHA256', digestScheme('sha256', 'base64')],
  ['SHA512', digestScheme('sha512', 'base64')],
  ['PLAIN-MD4', digestScheme('md4', 'hex')],
  ['PLAIN-MD5', digestScheme('md5', 'hex')],
  ['LDAP-MD5', digestScheme('md5', 'base64')],
  ['SMD5', saltedDigestScheme('md5')],
  ['SSHA', saltedDigestScheme('sha1')],
  ['SSHA256', saltedDigestScheme('sha256')],
  ['SSHA512', saltedDigestScheme('sha512')],
  ['CRAM-MD5', cramScheme],
  ['HMAC-MD5', cramScheme],
  ['PLAIN', plainScheme],
  ['CLEAR', plainScheme],
  ['CLEARTEXT', plainScheme],
  ['PLAIN-TRUNC', { ...plainScheme, verify: verifyPlainTrunc }],
]);
