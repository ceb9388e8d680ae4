// CRAM-MD5 / HMAC-MD5: Dovecot stores the two MD5 states of an HMAC key (after the ipad and
// opad blocks) so CRAM-MD5 can run without the password, and verifies plaintext logins by
// recomputing those states. node:crypto hides MD5's internal state, hence the compression here.
import { createHash } from 'node:crypto';
import { entryAt, isEqualConstantTime } from './bytes.js';
import type { SchemeOutcome } from './types.js';

const MD5_BLOCK_BYTES = 64;
const MD5_SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
// RFC 1321's table is floor(|sin(i + 1)| * 2^32); doubles compute it exactly for all 64 entries.
const MD5_SINES = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

/** One MD5 compression from the standard initial state: exactly what HMAC's key blocks go through. */
function compressMd5Block(block: Uint8Array): [number, number, number, number] {
  const view = new DataView(block.buffer, block.byteOffset, MD5_BLOCK_BYTES);
  const initial: readonly [number, number, number, number] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  let [a, b, c, d] = initial;
  for (let i = 0; i < 64; i++) {
    const round = i >> 4;
    let mixed: number;
    let wordIndex: number;
    if (round === 0) [mixed, wordIndex] = [(b & c) | (~b & d), i];
    else if (round === 1) [mixed, wordIndex] = [(d & b) | (~d & c), (5 * i + 1) & 15];
    else if (round === 2) [mixed, wordIndex] = [b ^ c ^ d, (3 * i + 5) & 15];
    else [mixed, wordIndex] = [c ^ (b | ~d), (7 * i) & 15];
    const sum = (a + mixed + entryAt(MD5_SINES, i) + view.getUint32(wordIndex * 4, true)) | 0;
    const rotated = (b + rotateLeft(sum, entryAt(MD5_SHIFTS, round * 4 + (i & 3)))) | 0;
    [a, b, c, d] = [d, rotated, b, c];
  }
  return [(initial[0] + a) | 0, (initial[1] + b) | 0, (initial[2] + c) | 0, (initial[3] + d) | 0];
}

/** The 32-byte context Dovecot's hmac_md5_get_cram_context() writes: outer state, then inner, little-endian. */
export function computeCramMd5Context(password: Uint8Array): Buffer {
  const key = password.length > MD5_BLOCK_BYTES ? createHash('md5').update(password).digest() : password;
  const padBlock = (pad: number) => {
    const block = new Uint8Array(MD5_BLOCK_BYTES).fill(pad);
    key.forEach((byte, i) => {
      block[i] = byte ^ pad;
    });
    return block;
  };
  const context = Buffer.alloc(32);
  const words = [...compressMd5Block(padBlock(0x5c)), ...compressMd5Block(padBlock(0x36))];
  for (const [index, word] of words.entries()) context.writeUInt32LE(word >>> 0, index * 4);
  return context;
}

export function verifyCramMd5(raw: Buffer, candidate: Buffer): SchemeOutcome {
  return isEqualConstantTime(computeCramMd5Context(candidate), raw) ? 'match' : 'mismatch';
}
