// The audit writer's pure parts: what counts as a change, which values never reach the table.
import { describe, expect, it } from 'vitest';
import { type AuditEntry, changedFields, mailboxActor, outcomeOf, redactSecrets, systemActor } from './audit.js';

describe('changedFields', () => {
  it('keeps only the fields whose values differ, with null for a missing side', () => {
    expect(
      changedFields(
        { active: true, domains: ['a.example'], quota: 1 },
        { active: true, domains: ['b.example'], name: 'x' },
      ),
    ).toEqual({
      before: { domains: ['a.example'], quota: 1, name: null },
      after: { domains: ['b.example'], quota: null, name: 'x' },
    });
  });

  it('is empty when nothing changed', () => {
    expect(changedFields({ a: [1, 2] }, { a: [1, 2] })).toEqual({ before: {}, after: {} });
  });
});

describe('redactSecrets', () => {
  it.each([
    [{ password: 'p@ss' }, { password: '[redacted]' }],
    [{ client_secret: 's3cret' }, { client_secret: '[redacted]' }],
    [{ client_secret: 'replaced' }, { client_secret: 'replaced' }],
    [{ api_key: 'k' }, { api_key: '[redacted]' }],
    [{ key: 'k' }, { key: '[redacted]' }],
    [{ key_id: 'abc' }, { key_id: 'abc' }],
    [{ token: { nested: 'x' } }, { token: '[redacted]' }],
    [{ list: [{ recovery_code: 'AAAA-BBBB' }] }, { list: [{ recovery_code: '[redacted]' }] }],
    [
      { password_changed: true, recovery_codes_left: 4 },
      { password_changed: true, recovery_codes_left: 4 },
    ],
    [
      { reason: 'disabled', service: 'imap' },
      { reason: 'disabled', service: 'imap' },
    ],
  ])('%j -> %j', (input, expected) => {
    expect(redactSecrets(input)).toEqual(expected);
  });
});

describe('outcomeOf', () => {
  it.each([
    ['admin.login', undefined, 'success'],
    ['admin.login.failed', undefined, 'failure'],
    ['mail_login.refused', undefined, 'failure'],
    ['sogo.handoff.denied', undefined, 'failure'],
    ['sync.run', 'failure', 'failure'],
  ] as const)('%s (%s) -> %s', (action, outcome, expected) => {
    expect(outcomeOf({ action, ...(outcome ? { outcome } : {}) })).toBe(expected);
  });
});

describe('the audit actor', () => {
  it('always states its kind: a bare name does not type-check', () => {
    // @ts-expect-error a writer must say whether the name is an admin, a key, a mailbox or postern itself
    const bare: AuditEntry = { actor: 'root', action: 'admin.login' };
    const typed: AuditEntry[] = [
      { actor: systemActor('cli'), action: 'admin.create' },
      { actor: mailboxActor('alice@example.org'), action: 'web.login' },
      { actor: { kind: 'admin', name: 'root', role: 'superadmin' }, action: 'admin.login' },
    ];
    expect(typeof bare.actor).toBe('string');
    expect(typed.map((entry) => entry.actor.kind)).toEqual(['system', 'mailbox', 'admin']);
  });
});
