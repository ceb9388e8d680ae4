import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { createSecretBox } from './secret-box.js';

const KEY = 'k'.repeat(40);

describe('createSecretBox', () => {
  it('round-trips a secret and never stores it in the clear', () => {
    const box = createSecretBox(KEY);
    const sealed = box.seal('client-secret-äöü');
    expect(sealed).not.toContain('client-secret');
    expect(box.open(sealed)).toBe('client-secret-äöü');
  });

  it('seals the same secret differently each time', () => {
    const box = createSecretBox(KEY);
    expect(box.seal('s')).not.toBe(box.seal('s'));
  });

  it("reads mailcow's plain-text values unchanged", () => {
    expect(createSecretBox(KEY).open('plain-from-mailcow')).toBe('plain-from-mailcow');
  });

  it('refuses to open a value sealed under another key', () => {
    const sealed = createSecretBox(KEY).seal('s');
    expect(() => createSecretBox('z'.repeat(40)).open(sealed)).toThrow(/cannot be decrypted/);
  });

  it('refuses a tampered value', () => {
    const sealed = createSecretBox(KEY).seal('secret');
    const tampered = `${sealed.slice(0, -4)}AAAA`;
    expect(() => createSecretBox(KEY).open(tampered)).toThrow(AppError);
  });

  it('says clearly that the key is missing', () => {
    expect(() => createSecretBox(undefined).seal('s')).toThrow(/POSTERN_SECRET_KEY is not set/);
  });
});
