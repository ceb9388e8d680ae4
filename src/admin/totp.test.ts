// TOTP with a fixed clock: RFC 6238's own test vector, the edges of the accepted window (one
// 30 s step either way, as mailcow's verifyCode), replay of a spent step, and recovery codes.
import { describe, expect, it } from 'vitest';
import {
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  looksLikeRecoveryCode,
  matchTotpStep,
  stepAt,
  totpCodeAt,
  totpQrSvg,
  totpUri,
} from './totp.js';

// RFC 6238 Appendix B: the SHA-1 seed is the ASCII "12345678901234567890"; at T = 59 s the
// 8-digit TOTP is 94287082, so the 6-digit one (the same HOTP value mod 10^6) is 287082.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('TOTP codes', () => {
  it("matches RFC 6238's SHA-1 test vector", () => {
    expect(stepAt(59_000)).toBe(1);
    expect(totpCodeAt(RFC_SECRET, 1)).toBe('287082');
    // T = 1111111109 → 07081804; T = 1234567890 → 89005924 (RFC 6238 Appendix B).
    expect(totpCodeAt(RFC_SECRET, stepAt(1_111_111_109_000))).toBe('081804');
    expect(totpCodeAt(RFC_SECRET, stepAt(1_234_567_890_000))).toBe('005924');
  });

  const secret = generateTotpSecret();
  const step = 56_789_012;
  const startMs = step * 30_000;

  it.each([
    ['the current step, at its first millisecond', 0, startMs, step],
    ['the current step, at its last millisecond', 0, startMs + 29_999, step],
    ['the previous step (clock drift)', -1, startMs, step - 1],
    ['the next step (clock drift)', +1, startMs + 29_999, step + 1],
    ['two steps back', -2, startMs + 29_999, undefined],
    ['two steps ahead', +2, startMs, undefined],
    ['the previous step one millisecond after it left the window', -1, startMs + 30_000, undefined],
  ])('accepts or refuses %s', (_title, offset, nowMs, expected) => {
    expect(matchTotpStep(secret, totpCodeAt(secret, step + offset), nowMs)).toBe(expected);
  });

  it('never accepts a step at or before the last one used (no replay within the window)', () => {
    const code = totpCodeAt(secret, step);
    expect(matchTotpStep(secret, code, startMs, step - 1)).toBe(step);
    expect(matchTotpStep(secret, code, startMs, step)).toBeUndefined();
    expect(matchTotpStep(secret, code, startMs + 29_999, step)).toBeUndefined();
    expect(matchTotpStep(secret, totpCodeAt(secret, step - 1), startMs, step)).toBeUndefined();
    expect(matchTotpStep(secret, totpCodeAt(secret, step + 1), startMs, step)).toBe(step + 1);
  });

  it.each(['', '12345', '1234567', 'abcdef', '12 34 5x'])('refuses the malformed code %j', (code) => {
    expect(matchTotpStep(secret, code, startMs)).toBeUndefined();
  });

  it('accepts a code typed with spaces', () => {
    const code = totpCodeAt(secret, step);
    expect(matchTotpStep(secret, `${code.slice(0, 3)} ${code.slice(3)}`, startMs)).toBe(step);
  });

  it('makes 160-bit base32 secrets and an otpauth URI with mailcow-compatible parameters', () => {
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(totpUri({ issuer: 'postern', account: 'root', secret }));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(uri.searchParams.get('algorithm')).toBe('SHA1');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
  });

  it('renders the QR code as an SVG', async () => {
    const svg = await totpQrSvg(totpUri({ issuer: 'postern', account: 'root', secret }));
    expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).not.toContain(secret);
  });
});

describe('recovery codes', () => {
  it('makes ten distinct 80-bit codes in groups of four', () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  });

  it('hashes what was typed the same way, whatever the case, dashes or spaces', () => {
    const [code = ''] = generateRecoveryCodes(1);
    const loose = ` ${code.toLowerCase().replaceAll('-', ' ')} `;
    expect(looksLikeRecoveryCode(loose)).toBe(true);
    expect(hashRecoveryCode(loose)).toBe(hashRecoveryCode(code));
    expect(hashRecoveryCode(code)).toMatch(/^[0-9a-f]{64}$/);
    expect(looksLikeRecoveryCode('123456')).toBe(false);
  });
});
