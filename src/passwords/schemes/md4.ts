// MD4 (RFC 1320) for Dovecot's PLAIN-MD4: OpenSSL 3 moved md4 to its legacy provider, so
// node:crypto refuses it. Only for verifying old hashes; never use it to make new ones.
import { entryAt } from './bytes.js';

const ROUND_2_ORDER = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
const ROUND_3_ORDER = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
const ROUND_SHIFTS = [3, 7, 11, 19, 3, 5, 9, 13, 3, 9, 11, 15];

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

export function computeMd4(data: Uint8Array): Buffer {
  const paddedLength = Math.ceil((data.length + 9) / 64) * 64;
  const padded = new Uint8Array(paddedLength);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  const bitLength = data.length * 8;
  view.setUint32(paddedLength - 8, bitLength >>> 0, true);
  view.setUint32(paddedLength - 4, Math.floor(bitLength / 2 ** 32), true);

  let [h0, h1, h2, h3] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  for (let offset = 0; offset < paddedLength; offset += 64) {
    const word = (index: number) => view.getUint32(offset + index * 4, true);
    let [a, b, c, d] = [h0, h1, h2, h3];
    for (let step = 0; step < 48; step++) {
      const round = step >> 4;
      const i = step & 15;
      let mixed: number;
      if (round === 0) mixed = ((b & c) | (~b & d)) + word(i);
      else if (round === 1) mixed = ((b & c) | (b & d) | (c & d)) + word(entryAt(ROUND_2_ORDER, i)) + 0x5a827999;
      else mixed = (b ^ c ^ d) + word(entryAt(ROUND_3_ORDER, i)) + 0x6ed9eba1;
      const rotated = rotateLeft((a + mixed) | 0, entryAt(ROUND_SHIFTS, round * 4 + (i & 3)));
      // Registers rotate instead of naming the target per step: (a, b, c, d) <- (d, new, b, c).
      [a, b, c, d] = [d, rotated, b, c];
    }
    [h0, h1, h2, h3] = [(h0 + a) | 0, (h1 + b) | 0, (h2 + c) | 0, (h3 + d) | 0];
  }

  const digest = Buffer.alloc(16);
  for (const [index, value] of [h0, h1, h2, h3].entries()) digest.writeUInt32LE(value >>> 0, index * 4);
  return digest;
}
