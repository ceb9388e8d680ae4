// Traditional DES crypt(3) (13 characters, what DES-CRYPT writes) and BSDi extended DES
// (`_` + count + salt), as glibc/libxcrypt compute them. Only what crypt(3) needs; it must never
// serve as general-purpose DES encryption.
import { entryAt, isSameCryptString } from './bytes.js';
import type { SchemeOutcome } from './types.js';

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TRADITIONAL = /^[./0-9A-Za-z]{13}$/;
const EXTENDED = /^_[./0-9A-Za-z]{19}$/;
/** About two seconds of CPU; BSD's default is 725. */
const MAX_EXTENDED_COUNT = 1 << 20;

// FIPS 46-3 tables, 1-based bit positions as the standard prints them.
const INITIAL_PERMUTATION = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24,
  16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31,
  23, 15, 7,
];
const FINAL_PERMUTATION = INITIAL_PERMUTATION.map((_, i) => INITIAL_PERMUTATION.indexOf(i + 1) + 1);
const ROUND_PERMUTATION = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];
const KEY_PERMUTATION_1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, 63, 55,
  47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];
const KEY_PERMUTATION_2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47, 55, 30,
  40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const KEY_SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
// biome-ignore format: one S-box per line keeps them checkable against the standard
const S_BOXES = [
  [14,4,13,1,2,15,11,8,3,10,6,12,5,9,0,7, 0,15,7,4,14,2,13,1,10,6,12,11,9,5,3,8, 4,1,14,8,13,6,2,11,15,12,9,7,3,10,5,0, 15,12,8,2,4,9,1,7,5,11,3,14,10,0,6,13],
  [15,1,8,14,6,11,3,4,9,7,2,13,12,0,5,10, 3,13,4,7,15,2,8,14,12,0,1,10,6,9,11,5, 0,14,7,11,10,4,13,1,5,8,12,6,9,3,2,15, 13,8,10,1,3,15,4,2,11,6,7,12,0,5,14,9],
  [10,0,9,14,6,3,15,5,1,13,12,7,11,4,2,8, 13,7,0,9,3,4,6,10,2,8,5,14,12,11,15,1, 13,6,4,9,8,15,3,0,11,1,2,12,5,10,14,7, 1,10,13,0,6,9,8,7,4,15,14,3,11,5,2,12],
  [7,13,14,3,0,6,9,10,1,2,8,5,11,12,4,15, 13,8,11,5,6,15,0,3,4,7,2,12,1,10,14,9, 10,6,9,0,12,11,7,13,15,1,3,14,5,2,8,4, 3,15,0,6,10,1,13,8,9,4,5,11,12,7,2,14],
  [2,12,4,1,7,10,11,6,8,5,3,15,13,0,14,9, 14,11,2,12,4,7,13,1,5,0,15,10,3,9,8,6, 4,2,1,11,10,13,7,8,15,9,12,5,6,3,0,14, 11,8,12,7,1,14,2,13,6,15,0,9,10,4,5,3],
  [12,1,10,15,9,2,6,8,0,13,3,4,14,7,5,11, 10,15,4,2,7,12,9,5,6,1,13,14,0,11,3,8, 9,14,15,5,2,8,12,3,7,0,4,10,1,13,11,6, 4,3,2,12,9,5,15,10,11,14,1,7,6,0,8,13],
  [4,11,2,14,15,0,8,13,3,12,9,7,5,10,6,1, 13,0,11,7,4,9,1,10,14,3,5,12,2,15,8,6, 1,4,11,13,12,3,7,14,10,15,6,8,0,5,9,2, 6,11,13,8,1,4,10,7,9,5,0,15,14,2,3,12],
  [13,2,8,4,6,15,11,1,10,9,3,14,5,0,12,7, 1,15,13,8,10,3,7,4,12,5,6,11,0,14,9,2, 7,11,4,1,9,12,14,2,0,6,10,13,15,3,5,8, 2,1,14,7,4,10,8,13,15,12,9,0,3,5,6,11],
];

/** A 64-bit block as two unsigned 32-bit halves, bit 1 of the standard being the top bit of `high`. */
type Block = readonly [high: number, low: number];

function readBit(block: Block, position: number): number {
  return position <= 32 ? (block[0] >>> (32 - position)) & 1 : (block[1] >>> (64 - position)) & 1;
}

function permuteBlock(block: Block, table: readonly number[]): Block {
  let high = 0;
  let low = 0;
  table.forEach((position, i) => {
    const bit = readBit(block, position);
    if (i < 32) high |= bit << (31 - i);
    else low |= bit << (63 - i);
  });
  return [high >>> 0, low >>> 0];
}

function rotateLeft32(value: number, bits: number): number {
  const shift = ((bits % 32) + 32) % 32;
  return shift === 0 ? value >>> 0 : ((value << shift) | (value >>> (32 - shift))) >>> 0;
}

/** S-box b's output for each 6-bit input, already moved through the round permutation P. */
const SP_BOXES = S_BOXES.map((box, b) =>
  Array.from({ length: 64 }, (_, input) => {
    const row = ((input >> 4) & 2) | (input & 1);
    const column = (input >> 1) & 15;
    const placed = (entryAt(box, row * 16 + column) << (28 - 4 * b)) >>> 0;
    let permuted = 0;
    ROUND_PERMUTATION.forEach((position, i) => {
      permuted |= ((placed >>> (32 - position)) & 1) << (31 - i);
    });
    return permuted >>> 0;
  }),
);

/** Sixteen subkeys, each as eight 6-bit chunks (one per S-box). */
type Subkeys = readonly (readonly number[])[];

function scheduleKeys(key: Uint8Array): Subkeys {
  const keyBlock: Block = [
    ((entryAt(key, 0) << 24) | (entryAt(key, 1) << 16) | (entryAt(key, 2) << 8) | entryAt(key, 3)) >>> 0,
    ((entryAt(key, 4) << 24) | (entryAt(key, 5) << 16) | (entryAt(key, 6) << 8) | entryAt(key, 7)) >>> 0,
  ];
  const permuted = KEY_PERMUTATION_1.map((position) => readBit(keyBlock, position));
  let left = permuted.slice(0, 28);
  let right = permuted.slice(28);
  return KEY_SHIFTS.map((shift) => {
    left = [...left.slice(shift), ...left.slice(0, shift)];
    right = [...right.slice(shift), ...right.slice(0, shift)];
    const combined = [...left, ...right];
    const bits = KEY_PERMUTATION_2.map((position) => entryAt(combined, position - 1));
    return Array.from({ length: 8 }, (_, chunk) =>
      bits.slice(chunk * 6, chunk * 6 + 6).reduce((value, bit) => (value << 1) | bit, 0),
    );
  });
}

/**
 * crypt(3)'s salt swaps expansion outputs i and i + 24 for each set salt bit i: as masks over
 * the 6-bit chunk pairs (b, b + 4), most significant bit first within a chunk.
 */
function saltMasks(salt: number): number[] {
  return Array.from({ length: 4 }, (_, chunk) => {
    let mask = 0;
    for (let j = 0; j < 6; j++) mask |= ((salt >> (chunk * 6 + j)) & 1) << (5 - j);
    return mask;
  });
}

/** The sixteen Feistel rounds; returns R16 ‖ L16, the block before the final permutation. */
function applyRounds([left, right]: Block, subkeys: Subkeys, masks: readonly number[]): Block {
  let [l, r] = [left, right];
  for (const subkey of subkeys) {
    let feistel = 0;
    for (let b = 0; b < 4; b++) {
      // The expansion E: S-box b reads bits 4b .. 4b+5 of R (1-based, wrapping 0 to 32).
      let first = rotateLeft32(r, 4 * b - 1) >>> 26;
      let second = rotateLeft32(r, 4 * (b + 4) - 1) >>> 26;
      const swapped = (first ^ second) & entryAt(masks, b);
      first ^= swapped;
      second ^= swapped;
      feistel |=
        entryAt(SP_BOXES[b] ?? [], first ^ entryAt(subkey, b)) |
        entryAt(SP_BOXES[b + 4] ?? [], second ^ entryAt(subkey, b + 4));
    }
    [l, r] = [r, (l ^ feistel) >>> 0];
  }
  return [r, l];
}

/**
 * `count` chained encryptions. The final permutation of one and the initial permutation of the
 * next cancel out, so both run once, as in FreeSec's do_des().
 */
function encryptRepeatedly(block: Block, subkeys: Subkeys, masks: readonly number[], count: number): Block {
  let state = permuteBlock(block, INITIAL_PERMUTATION);
  for (let i = 0; i < count; i++) state = applyRounds(state, subkeys, masks);
  return permuteBlock(state, FINAL_PERMUTATION);
}

const NO_SALT = saltMasks(0);

function toBlock(bytes: Uint8Array): Block {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  return [view.getUint32(0), view.getUint32(4)];
}

function fromBlock(block: Block): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, block[0]);
  view.setUint32(4, block[1]);
  return bytes;
}

/** Exported for the FIPS known-answer test; crypt(3) never uses DES without a salt. */
export function encryptDesBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  return fromBlock(encryptRepeatedly(toBlock(block), scheduleKeys(key), NO_SALT, 1));
}

function readCryptNumber(text: string): number {
  let value = 0;
  for (let i = 0; i < text.length; i++) value |= CRYPT_ALPHABET.indexOf(text.charAt(i)) << (6 * i);
  return value;
}

/** 64 bits plus two zero bits, six at a time, most significant first. */
function encodeBlock(block: Block): string {
  let text = '';
  for (let position = 1; position <= 66; position += 6) {
    let value = 0;
    for (let b = 0; b < 6; b++) value = (value << 1) | (position + b <= 64 ? readBit(block, position + b) : 0);
    text += CRYPT_ALPHABET.charAt(value);
  }
  return text;
}

/** Each key byte is a password byte shifted left: the low 7 bits count, the top bit is lost. */
function shiftedKeyBytes(password: Uint8Array): Uint8Array {
  return Uint8Array.from(password, (byte) => (byte << 1) & 0xff);
}

/** crypt(3) works on a C string: the password ends at its first NUL byte. */
function asCString(password: Uint8Array): Uint8Array {
  const end = password.indexOf(0);
  return end === -1 ? password : password.subarray(0, end);
}

export function computeTraditionalDesCrypt(password: Uint8Array, setting: string): string {
  const key = new Uint8Array(8);
  key.set(shiftedKeyBytes(asCString(password).subarray(0, 8)));
  const saltText = setting.slice(0, 2);
  return saltText + encodeBlock(encryptRepeatedly([0, 0], scheduleKeys(key), saltMasks(readCryptNumber(saltText)), 25));
}

export function computeExtendedDesCrypt(password: Uint8Array, setting: string): string {
  const shifted = shiftedKeyBytes(asCString(password));
  const key = new Uint8Array(8);
  key.set(shifted.subarray(0, 8));
  // Passwords longer than 8 bytes are folded in: encrypt the key with itself, XOR the next 8.
  for (let offset = 8; offset < shifted.length; offset += 8) {
    key.set(fromBlock(encryptRepeatedly(toBlock(key), scheduleKeys(key), NO_SALT, 1)));
    shifted.subarray(offset, offset + 8).forEach((byte, i) => {
      key[i] = entryAt(key, i) ^ byte;
    });
  }
  const count = readCryptNumber(setting.slice(1, 5));
  const salt = readCryptNumber(setting.slice(5, 9));
  return setting.slice(0, 9) + encodeBlock(encryptRepeatedly([0, 0], scheduleKeys(key), saltMasks(salt), count));
}

export function verifyDesCrypt(stored: string, candidate: Buffer): SchemeOutcome {
  let computed: string;
  if (TRADITIONAL.test(stored)) {
    computed = computeTraditionalDesCrypt(candidate, stored);
  } else if (EXTENDED.test(stored)) {
    // libxcrypt refuses a zero count; the format allows 2^24 - 1, a minute of CPU here.
    const count = readCryptNumber(stored.slice(1, 5));
    if (count === 0 || count > MAX_EXTENDED_COUNT) return 'malformed';
    computed = computeExtendedDesCrypt(candidate, stored);
  } else {
    return 'malformed';
  }
  return isSameCryptString(computed, stored) ? 'match' : 'mismatch';
}
