import { describe, expect, it } from 'vitest';
import { computeCramMd5Context } from './schemes/cram-md5.js';
import { computeExtendedDesCrypt, computeTraditionalDesCrypt, encryptDesBlock } from './schemes/des-crypt.js';
import { computeMd4 } from './schemes/md4.js';
import { computeMd5Crypt } from './schemes/md5-crypt.js';

describe('hand-written primitives against published answers', () => {
  it.each([
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ])('computes MD4 of %j as RFC 1320 says', (input, digest) => {
    expect(computeMd4(Buffer.from(input)).toString('hex')).toBe(digest);
  });

  it('encrypts the FIPS 81 / textbook DES block correctly', () => {
    const ciphertext = encryptDesBlock(Buffer.from('133457799bbcdff1', 'hex'), Buffer.from('0123456789abcdef', 'hex'));
    expect(Buffer.from(ciphertext).toString('hex')).toBe('85e813540f0ab405');
  });

  it("matches the DES crypt(3) sample Dovecot uses to probe the system's crypt()", () => {
    expect(computeTraditionalDesCrypt(Buffer.from('08/15!test~4711'), 'JB')).toBe('JBOZ0DgmtucwE');
  });

  it('matches FreeBSD extended DES for a password longer than 8 bytes', () => {
    // From `mkpasswd -m bsdicrypt`; checked with `doveadm pw -t '{CRYPT}…'`.
    expect(computeExtendedDesCrypt(Buffer.from('test'), '_J9..tXJh')).toBe('_J9..tXJhsQsTQ3bsBg.');
  });

  it('matches md5crypt as written by openssl passwd -1', () => {
    expect(computeMd5Crypt(Buffer.from('pässwörd'), Buffer.from('abcdefgh'))).toBe(
      '$1$abcdefgh$xYuxUFvxUOR4Pd6a7EeUS0',
    );
  });

  it('hashes HMAC keys longer than one MD5 block first, as CRAM-MD5 requires', () => {
    // `doveadm pw -s CRAM-MD5 -p` with 100 × "x".
    expect(computeCramMd5Context(Buffer.from('x'.repeat(100))).toString('hex')).toBe(
      '52197db948d0932512a61b183e7d05b04e94d60a3bb0d00f92d3df52a5d275ca',
    );
  });
});
