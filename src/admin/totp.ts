// TOTP (RFC 6238) as mailcow's UI does it, so both accept the same authenticators: HMAC-SHA1,
// 6 digits, 30 s steps, one step of drift either way (mailcow: RobThree/TwoFactorAuth with
// verifyCode($secret, $code, $discrepancy = 1), data/web/inc/lib/vendor/robthree/twofactorauth/
// lib/TwoFactorAuth.php), the base32 secret in `tfa.secret`. postern adds what mailcow lacks: a
// code is accepted once (the step is recorded in `tfa.counter` and must move forward), and
// recovery codes. Codes come from otpauth; the QR code is rendered server-side as SVG.
import { randomInt, timingSafeEqual } from 'node:crypto';
import { HOTP, Secret } from 'otpauth';
import QRCode from 'qrcode';
import { sha256Hex } from '../digest.js';

export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** Steps of clock drift accepted on each side (mailcow's discrepancy). */
export const TOTP_DRIFT_STEPS = 1;
export const RECOVERY_CODE_COUNT = 10;

/** 160 random bits (RFC 4226's recommended key length), base32 as authenticator apps expect. */
export function generateTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

export function stepAt(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS);
}

export function totpCodeAt(secret: string, step: number): string {
  return HOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: TOTP_DIGITS, counter: step });
}

/**
 * The step the code belongs to, among now and the drift steps around it, that is later than
 * `lastStep` (a step already used, or an older one, is never accepted again); undefined otherwise.
 */
export function matchTotpStep(secret: string, code: string, nowMs: number, lastStep = -1): number | undefined {
  const typed = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(typed)) return undefined;
  const current = stepAt(nowMs);
  let matched: number | undefined;
  for (let step = current - TOTP_DRIFT_STEPS; step <= current + TOTP_DRIFT_STEPS; step++) {
    let expected: string;
    try {
      expected = totpCodeAt(secret, step);
    } catch {
      return undefined;
    }
    // Every candidate step is compared, in constant time, whatever matched before.
    const isMatch = timingSafeEqual(Buffer.from(expected), Buffer.from(typed));
    if (isMatch && step > lastStep && matched === undefined) matched = step;
  }
  return matched;
}

/** The otpauth:// URI authenticator apps read (Key Uri Format). */
export function totpUri(input: { issuer: string; account: string; secret: string }): string {
  const label = `${encodeURIComponent(input.issuer)}:${encodeURIComponent(input.account)}`;
  const params = new URLSearchParams({
    secret: input.secret,
    issuer: input.issuer,
    algorithm: 'SHA1',
    digits: String(TOTP_DIGITS),
    period: String(TOTP_PERIOD_SECONDS),
  });
  return `otpauth://totp/${label}?${params.toString()}`;
}

/** An SVG image of the URI, rendered here: the secret never goes to a third-party QR service. */
export async function totpQrSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

// Recovery codes: 16 symbols of Crockford's base32 alphabet (80 bits), in groups of four; it has
// no I, L, O or U, so what is read off paper is typed back right.
const RECOVERY_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function generateRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    let code = '';
    for (let i = 0; i < 16; i++) code += RECOVERY_ALPHABET[randomInt(32)];
    return code.match(/.{4}/g)?.join('-') ?? code;
  });
}

/** Whatever the person typed, in the form the hash was taken of: upper case, no spaces or dashes. */
export function normaliseRecoveryCode(typed: string): string {
  return typed.toUpperCase().replace(/[\s-]+/g, '');
}

export function looksLikeRecoveryCode(typed: string): boolean {
  return /^[A-Z0-9]{16}$/.test(normaliseRecoveryCode(typed));
}

/** SHA-256 suffices: 80 random bits cannot be searched for, unlike a password. */
export function hashRecoveryCode(typed: string): string {
  return sha256Hex(normaliseRecoveryCode(typed));
}
