import { describe, expect, it } from 'vitest';
import type { AppPasswordProtocol } from '../storage/app-passwords.js';
import {
  canonicalService,
  isKnownService,
  isServiceAllowedForAppPassword,
  isServiceAllowedForMailbox,
} from './services.js';

const NO_FLAGS: Record<AppPasswordProtocol, boolean> = {
  imap_access: false,
  pop3_access: false,
  smtp_access: false,
  sieve_access: false,
  dav_access: false,
  eas_access: false,
};
const ALL_FLAGS = Object.fromEntries(Object.keys(NO_FLAGS).map((flag) => [flag, true])) as Record<
  AppPasswordProtocol,
  boolean
>;
const ALL_OFF = {
  imap_access: '0',
  pop3_access: '0',
  smtp_access: '0',
  sieve_access: '0',
  sogo_access: '0',
  dav_access: '0',
  eas_access: '0',
};

// Names Dovecot, Postfix, SOGo and mailcow never send for a password login, and names that only
// exist on Object.prototype.
const UNKNOWN = [
  'lmtp',
  'doveadm',
  'imaps',
  'pop3s',
  'x',
  'NONE',
  'SSO',
  'constructor',
  'toString',
  '__proto__',
  'hasOwnProperty',
  'valueOf',
];

describe('service names', () => {
  it.each([
    ['imap', 'imap'],
    ['IMAP', 'imap'],
    ['pop3', 'pop3'],
    ['smtp', 'smtp'],
    ['submission', 'submission'],
    ['sieve', 'sieve'],
    ['managesieve', 'managesieve'],
    ['sogo', 'SOGO'],
    ['dav', 'DAV'],
    ['Eas', 'EAS'],
  ])('knows %s as %s', (raw, canonical) => {
    expect(canonicalService(raw)).toBe(canonical);
    expect(isKnownService(canonicalService(raw))).toBe(true);
  });

  it.each(UNKNOWN)('does not know %s', (raw) => {
    expect(isKnownService(canonicalService(raw))).toBe(false);
  });

  it.each(UNKNOWN)('%s allows neither a mailbox with every flag off nor any app password', (raw) => {
    const service = canonicalService(raw);
    expect(isServiceAllowedForMailbox(service, ALL_OFF)).toBe(false);
    expect(isServiceAllowedForMailbox(service, {})).toBe(false);
    expect(isServiceAllowedForAppPassword(service, ALL_FLAGS)).toBe(false);
  });

  it.each([
    ['imap', 'imap_access'],
    ['pop3', 'pop3_access'],
    ['smtp', 'smtp_access'],
    ['submission', 'smtp_access'],
    ['sieve', 'sieve_access'],
    ['managesieve', 'sieve_access'],
    ['DAV', 'dav_access'],
    ['EAS', 'eas_access'],
    // SOGo logs into IMAP: its app passwords need the IMAP flag.
    ['SOGO', 'imap_access'],
  ] as const)('%s takes app passwords with %s only', (service, flag) => {
    expect(isServiceAllowedForAppPassword(service, { ...NO_FLAGS, [flag]: true })).toBe(true);
    expect(isServiceAllowedForAppPassword(service, { ...ALL_FLAGS, [flag]: false })).toBe(false);
  });

  it.each([
    ['imap', 'imap_access'],
    ['submission', 'smtp_access'],
    ['SOGO', 'sogo_access'],
    ['DAV', 'dav_access'],
  ])('%s follows the mailbox attribute %s, a missing one allowing as in mailcow', (service, attribute) => {
    expect(isServiceAllowedForMailbox(service, { [attribute]: '1' })).toBe(true);
    expect(isServiceAllowedForMailbox(service, { [attribute]: '0' })).toBe(false);
    expect(isServiceAllowedForMailbox(service, {})).toBe(true);
  });

  it('reads only the mailbox attribute itself, never one inherited from a prototype', () => {
    const attributes = Object.create({ imap_access: '1' }) as Record<string, unknown>;
    attributes.imap_access = '0';
    expect(isServiceAllowedForMailbox('imap', attributes)).toBe(false);
  });
});
