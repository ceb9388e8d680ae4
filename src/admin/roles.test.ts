// The role rules as a table: every kind of object × superadmin, domain admin of the object's
// domain, domain admin of another domain, read-only key; reads and writes.
import { describe, expect, it } from 'vitest';
import { type Action, type Actor, type AdminObject, can, domainOf, type Permission } from './roles.js';

const superadmin: Actor = { name: 'root', role: 'superadmin', domains: [], access: 'rw' };
const readOnlyKey: Actor = { name: 'api:mailcow-api', role: 'superadmin', domains: [], access: 'ro' };
const helpdesk: Actor = {
  name: 'helpdesk',
  role: 'domainadmin',
  domains: ['example.org', 'Two.Example'],
  access: 'rw',
};
const otherDesk: Actor = { name: 'other', role: 'domainadmin', domains: ['other.example'], access: 'rw' };
const noDomains: Actor = { name: 'empty', role: 'domainadmin', domains: [], access: 'rw' };
const readOnlyDesk: Actor = { name: 'ro-desk', role: 'domainadmin', domains: ['example.org'], access: 'ro' };

const ok: Permission = { allowed: true };
const notFound: Permission = { allowed: false, denial: 'not_found' };
const forbidden: Permission = { allowed: false, denial: 'forbidden' };
const readOnly: Permission = { allowed: false, denial: 'read_only' };

const mailbox: AdminObject = { kind: 'mailbox', domain: 'example.org' };
const global: AdminObject[] = [
  { kind: 'identity_provider' },
  { kind: 'sync' },
  { kind: 'bans' },
  { kind: 'admins' },
  { kind: 'admin', username: 'helpdesk' },
  { kind: 'api_keys' },
];

describe('can', () => {
  it.each<[string, Actor, Action, AdminObject, Permission]>([
    ['a superadmin reads a mailbox of any domain', superadmin, 'read', mailbox, ok],
    ['a superadmin changes IdP settings', superadmin, 'write', { kind: 'identity_provider' }, ok],
    ['a superadmin changes its own account', superadmin, 'write', { kind: 'admin', username: 'root' }, ok],
    ['a read-only key reads IdP settings', readOnlyKey, 'read', { kind: 'identity_provider' }, ok],
    ['a read-only key cannot change a mailbox', readOnlyKey, 'write', mailbox, readOnly],
    ['a domain admin reads a mailbox of its domain', helpdesk, 'read', mailbox, ok],
    ['a domain admin changes a mailbox of its domain', helpdesk, 'write', mailbox, ok],
    ['domains compare without case', helpdesk, 'write', { kind: 'mailbox', domain: 'two.EXAMPLE' }, ok],
    ['a domain admin gets not-found for another domain (read)', otherDesk, 'read', mailbox, notFound],
    ['a domain admin gets not-found for another domain (write)', otherDesk, 'write', mailbox, notFound],
    ['an empty ACL reaches no domain', noDomains, 'read', mailbox, notFound],
    ['an empty domain is no domain', helpdesk, 'read', { kind: 'mailbox', domain: '' }, notFound],
    ['a domain admin reads templates', helpdesk, 'read', { kind: 'templates' }, ok],
    ['a domain admin cannot edit templates', helpdesk, 'write', { kind: 'templates' }, forbidden],
    ['a domain admin reads the audit (narrowed by the query)', helpdesk, 'read', { kind: 'audit' }, ok],
    [
      'a domain admin cannot read its own account',
      helpdesk,
      'read',
      { kind: 'admin', username: 'helpdesk' },
      forbidden,
    ],
    [
      'a domain admin cannot change its own role',
      helpdesk,
      'write',
      { kind: 'admin', username: 'helpdesk' },
      forbidden,
    ],
    ['a read-only domain admin reads its domain', readOnlyDesk, 'read', mailbox, ok],
    ['a read-only domain admin cannot write its domain', readOnlyDesk, 'write', mailbox, readOnly],
    [
      'not-found beats read-only outside the ACL',
      readOnlyDesk,
      'write',
      { kind: 'mailbox', domain: 'x.example' },
      notFound,
    ],
    [
      'the literal ALL row is no wildcard for a domain admin',
      { ...helpdesk, domains: ['ALL'] },
      'read',
      mailbox,
      notFound,
    ],
  ])('%s', (_title, actor, action, object, expected) => {
    expect(can(actor, action, object)).toEqual(expected);
  });

  it.each(
    global.flatMap((object) => (['read', 'write'] as const).map((action) => [object.kind, action, object] as const)),
  )('refuses a domain admin %s (%s) whatever its domains', (_kind, action, object) => {
    expect(can(helpdesk, action, object)).toEqual(forbidden);
    expect(can(superadmin, action, object)).toEqual(ok);
  });
});

describe('domainOf', () => {
  it.each([
    ['alice@Example.ORG', 'example.org'],
    ['"a@b"@example.org', 'example.org'],
    ['no-at-sign', ''],
  ])('%s → %s', (address, domain) => {
    expect(domainOf(address)).toBe(domain);
  });
});
