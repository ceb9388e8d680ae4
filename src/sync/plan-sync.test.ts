// planSync is the specification of the Keycloak sync: every action and every edge, as tables.
import { describe, expect, it } from 'vitest';
import {
  type DirectoryUser,
  type MailboxState,
  type PlanContext,
  planDirectoryEnd,
  planPage,
  planSync,
  refusalFor,
  type SyncAction,
  type SyncSettings,
} from './plan-sync.js';

const settings = (overrides: Partial<SyncSettings> = {}): SyncSettings => ({
  importUsers: true,
  periodicSync: true,
  deprovision: false,
  maxDropPercent: 20,
  attributeField: 'mailcow_template',
  mappings: {
    mappers: ['premium', 'basic', 'ghost'],
    templates: ['Premium', 'Basic', 'Ghost'],
    defaultTemplate: 'Basic',
  },
  ...overrides,
});

const context = (overrides: Partial<SyncSettings> = {}): PlanContext => ({
  settings: settings(overrides),
  // 'Ghost' is mapped but does not exist in the database.
  templates: new Map([
    ['Premium', { hash: 'hash-premium' }],
    ['Basic', { hash: 'hash-basic' }],
  ]),
  domains: new Map([
    ['example.org', { active: true }],
    ['sleepy.example', { active: false }],
  ]),
});

const user = (username: string, extra: Partial<DirectoryUser> = {}): DirectoryUser => ({
  username,
  email: `${username}@example.org`,
  enabled: true,
  emailVerified: true,
  firstName: username[0]?.toUpperCase() + username.slice(1),
  lastName: 'Doe',
  attributes: { mailcow_template: ['premium'] },
  ...extra,
});

const mailbox = (username: string, extra: Partial<MailboxState> = {}): MailboxState => ({
  username,
  name: `${username[0]?.toUpperCase()}${username.slice(1, username.indexOf('@'))} Doe`,
  active: 1,
  authSource: 'keycloak',
  attributeHash: 'hash-premium',
  deprovisionedFrom: undefined,
  ...extra,
});

function actionsOf(plan: ReturnType<typeof planSync>): SyncAction[] {
  if ('refused' in plan) throw new Error(`unexpected refusal: ${plan.refused}`);
  return plan.actions;
}

describe('planSync: creating mailboxes (import_users)', () => {
  it.each<[string, DirectoryUser, Partial<SyncSettings>, SyncAction[]]>([
    [
      'creates a mailbox from the mapped template',
      user('alice'),
      {},
      [{ type: 'create', email: 'alice@example.org', name: 'Alice Doe', template: 'Premium', templateWhy: 'mapped' }],
    ],
    [
      'uses the default template when the attribute is absent',
      user('bob', { attributes: {} }),
      {},
      [{ type: 'create', email: 'bob@example.org', name: 'Bob Doe', template: 'Basic', templateWhy: 'default' }],
    ],
    [
      'uses the default template when the attribute value maps to nothing',
      user('carol', { attributes: { mailcow_template: ['platinum'] } }),
      {},
      [{ type: 'create', email: 'carol@example.org', name: 'Carol Doe', template: 'Basic', templateWhy: 'default' }],
    ],
    [
      'reads the configured attribute_field',
      user('dave', { attributes: { department: ['premium'] } }),
      { attributeField: 'department' },
      [{ type: 'create', email: 'dave@example.org', name: 'Dave Doe', template: 'Premium', templateWhy: 'mapped' }],
    ],
    [
      'lower-cases the email and names the mailbox after the local part when the user has no name',
      user('eve', { email: 'Eve@Example.ORG', firstName: undefined, lastName: undefined }),
      {},
      [{ type: 'create', email: 'eve@example.org', name: 'eve', template: 'Premium', templateWhy: 'mapped' }],
    ],
    [
      'skips without a default template when nothing maps',
      user('frank', { attributes: {} }),
      { mappings: { mappers: ['premium'], templates: ['Premium'] } },
      [{ type: 'skip', username: 'frank', email: 'frank@example.org', why: 'no_template' }],
    ],
    [
      'skips when the mapped template is missing from the database',
      user('gina', { attributes: { mailcow_template: ['ghost'] } }),
      {},
      [{ type: 'skip', username: 'gina', email: 'gina@example.org', why: 'template_missing', template: 'Ghost' }],
    ],
    [
      'skips a user without an email',
      user('henry', { email: undefined }),
      {},
      [{ type: 'skip', username: 'henry', why: 'no_email' }],
    ],
    [
      'skips an email whose domain does not exist',
      user('ivy', { email: 'ivy@elsewhere.example' }),
      {},
      [{ type: 'skip', username: 'ivy', email: 'ivy@elsewhere.example', why: 'unknown_domain' }],
    ],
    [
      'skips an email whose domain is inactive',
      user('jack', { email: 'jack@sleepy.example' }),
      {},
      [{ type: 'skip', username: 'jack', email: 'jack@sleepy.example', why: 'inactive_domain' }],
    ],
    [
      'skips an address without a domain',
      user('kim', { email: 'kim@' }),
      {},
      [{ type: 'skip', username: 'kim', email: 'kim@', why: 'invalid_email' }],
    ],
    [
      'does not create a mailbox for a user disabled in Keycloak',
      user('lena', { enabled: false }),
      {},
      [{ type: 'skip', username: 'lena', email: 'lena@example.org', why: 'disabled_upstream' }],
    ],
    ['creates nothing with import_users off', user('mike'), { importUsers: false }, []],
  ])('%s', (_title, directoryUser, overrides, expected) => {
    expect(actionsOf(planSync([directoryUser], [], context(overrides)))).toEqual(expected);
  });

  it('skips the second of two users with the same email (case-insensitively)', () => {
    const plan = planSync([user('nora'), user('nora2', { email: 'NORA@example.org' })], [], context());
    expect(actionsOf(plan)).toEqual([
      expect.objectContaining({ type: 'create', email: 'nora@example.org' }),
      { type: 'skip', username: 'nora2', email: 'nora@example.org', why: 'duplicate_email' },
    ]);
  });
});

describe('planSync: updating mailboxes (periodic_sync)', () => {
  it.each<[string, DirectoryUser, MailboxState, Partial<SyncSettings>, SyncAction[]]>([
    [
      'updates when the mapped template changed',
      user('alice', { attributes: { mailcow_template: ['basic'] } }),
      mailbox('alice@example.org'),
      {},
      [{ type: 'update', email: 'alice@example.org', template: 'Basic', name: 'Alice Doe', why: 'template_changed' }],
    ],
    [
      'updates when the template itself changed (hash differs)',
      user('alice'),
      mailbox('alice@example.org', { attributeHash: 'an-older-hash' }),
      {},
      [{ type: 'update', email: 'alice@example.org', template: 'Premium', name: 'Alice Doe', why: 'template_changed' }],
    ],
    [
      'updates when only the name changed',
      user('alice', { lastName: 'Married' }),
      mailbox('alice@example.org'),
      {},
      [{ type: 'update', email: 'alice@example.org', template: 'Premium', name: 'Alice Married', why: 'name_changed' }],
    ],
    ['does nothing when template and name match', user('alice'), mailbox('alice@example.org'), {}, []],
    [
      'matches the mailbox case-insensitively',
      user('alice', { email: 'ALICE@Example.org' }),
      mailbox('alice@example.org'),
      {},
      [],
    ],
    [
      'never falls back to the default template for an update',
      user('alice', { attributes: {} }),
      mailbox('alice@example.org', { attributeHash: 'hash-premium' }),
      {},
      [{ type: 'skip', username: 'alice', email: 'alice@example.org', why: 'no_template' }],
    ],
    [
      'skips when the mapped template is missing from the database',
      user('alice', { attributes: { mailcow_template: ['ghost'] } }),
      mailbox('alice@example.org'),
      {},
      [{ type: 'skip', username: 'alice', email: 'alice@example.org', why: 'template_missing', template: 'Ghost' }],
    ],
    [
      'never touches a mailbox of another auth source',
      user('alice', { attributes: { mailcow_template: ['basic'] } }),
      mailbox('alice@example.org', { authSource: 'mailcow' }),
      {},
      [{ type: 'skip', username: 'alice', email: 'alice@example.org', why: 'authsource_not_keycloak' }],
    ],
    [
      'updates nothing with periodic_sync off',
      user('alice', { attributes: { mailcow_template: ['basic'] } }),
      mailbox('alice@example.org'),
      { periodicSync: false },
      [],
    ],
    [
      'does not create a second mailbox for an existing one with import_users on',
      user('alice'),
      mailbox('alice@example.org'),
      { periodicSync: false, importUsers: true },
      [],
    ],
  ])('%s', (_title, directoryUser, existing, overrides, expected) => {
    expect(actionsOf(planSync([directoryUser], [existing], context(overrides)))).toEqual(expected);
  });
});

describe('planSync: deprovisioning and reactivation', () => {
  const many = (count: number) => Array.from({ length: count }, (_, i) => user(`user${i}`));
  const manyMailboxes = (count: number) =>
    Array.from({ length: count }, (_, i) => mailbox(`user${i}@example.org`, { name: `User${i} Doe` }));

  it.each<[string, DirectoryUser[], MailboxState[], Partial<SyncSettings>, SyncAction[]]>([
    [
      'deactivates the mailbox of a user disabled in Keycloak when deprovisioning is on',
      [...many(9), user('user9', { enabled: false })],
      manyMailboxes(10),
      { deprovision: true },
      [{ type: 'deactivate', email: 'user9@example.org', why: 'disabled_upstream', previousActive: 1 }],
    ],
    [
      'deactivates the mailbox of a user gone from Keycloak when deprovisioning is on',
      many(9),
      manyMailboxes(10),
      { deprovision: true },
      [{ type: 'deactivate', email: 'user9@example.org', why: 'gone_upstream', previousActive: 1 }],
    ],
    [
      'remembers that a mail-only mailbox (active 2) was deactivated from 2',
      many(9),
      [...manyMailboxes(9), mailbox('user9@example.org', { name: 'User9 Doe', active: 2 })],
      { deprovision: true },
      [{ type: 'deactivate', email: 'user9@example.org', why: 'gone_upstream', previousActive: 2 }],
    ],
    [
      'deactivates nobody with deprovisioning off (the default)',
      [...many(9), user('user9', { enabled: false })],
      manyMailboxes(10),
      {},
      [],
    ],
    [
      'never deactivates a mailbox of another auth source',
      many(9),
      [...manyMailboxes(9), mailbox('user9@example.org', { name: 'User9 Doe', authSource: 'mailcow' })],
      { deprovision: true },
      [],
    ],
    [
      'leaves a mailbox an admin deactivated alone',
      many(10),
      [...manyMailboxes(9), mailbox('user9@example.org', { name: 'User9 Doe', active: 0 })],
      { deprovision: true },
      [],
    ],
    [
      'reactivates a mailbox sync deactivated once its user is back and enabled',
      many(10),
      [...manyMailboxes(9), mailbox('user9@example.org', { name: 'User9 Doe', active: 0, deprovisionedFrom: 2 })],
      { deprovision: true },
      [{ type: 'reactivate', email: 'user9@example.org', restoreActive: 2 }],
    ],
    [
      'reactivates even after deprovisioning was switched off',
      many(10),
      [...manyMailboxes(9), mailbox('user9@example.org', { name: 'User9 Doe', active: 0, deprovisionedFrom: 1 })],
      {},
      [{ type: 'reactivate', email: 'user9@example.org', restoreActive: 1 }],
    ],
    [
      'keeps a sync-deactivated mailbox off while its user is still disabled',
      [...many(9), user('user9', { enabled: false })],
      [...manyMailboxes(9), mailbox('user9@example.org', { name: 'User9 Doe', active: 0, deprovisionedFrom: 1 })],
      { deprovision: true },
      [],
    ],
    [
      'forgets the marker of a mailbox an admin re-enabled',
      many(10),
      [...manyMailboxes(9), mailbox('user9@example.org', { name: 'User9 Doe', active: 1, deprovisionedFrom: 1 })],
      { deprovision: true },
      [{ type: 'unmark', email: 'user9@example.org' }],
    ],
  ])('%s', (_title, users, mailboxes, overrides, expected) => {
    expect(actionsOf(planSync(users, mailboxes, context(overrides)))).toEqual(expected);
  });

  it('refuses a suspicious drop: more than postern_max_drop_percent would be deactivated', () => {
    const plan = planSync(many(7), manyMailboxes(10), context({ deprovision: true, maxDropPercent: 20 }));
    expect(plan).toEqual({ refused: expect.stringContaining('3 of 10 active Keycloak mailboxes (30.0%)') });
  });

  it('allows a drop of exactly postern_max_drop_percent', () => {
    const plan = actionsOf(planSync(many(8), manyMailboxes(10), context({ deprovision: true, maxDropPercent: 20 })));
    expect(plan.filter((action) => action.type === 'deactivate')).toHaveLength(2);
  });

  it('refuses an empty listing while Keycloak mailboxes exist, even with deprovisioning off', () => {
    expect(planSync([], manyMailboxes(3), context())).toEqual({
      refused: expect.stringContaining('listed no users while 3'),
    });
  });

  it('accepts an empty listing when there are no Keycloak mailboxes yet', () => {
    expect(planSync([], [mailbox('local@example.org', { authSource: 'mailcow' })], context())).toEqual({ actions: [] });
  });

  it('refuses the whole plan, creates included', () => {
    const plan = planSync([user('newcomer'), ...many(5)], manyMailboxes(10), context({ deprovision: true }));
    expect(plan).toHaveProperty('refused');
  });
});

describe('the streaming pieces', () => {
  it('planPage returns the seen emails with their enabled flag and skips emails seen on earlier pages', () => {
    const earlier = new Map([['alice@example.org', { id: 'id-alice', enabled: true, verified: true }]]);
    const { actions, seen } = planPage(
      [user('alice2', { email: 'alice@example.org' }), user('bob', { enabled: false })],
      new Map(),
      context(),
      earlier,
    );
    expect(actions).toEqual([
      { type: 'skip', username: 'alice2', email: 'alice@example.org', why: 'duplicate_email' },
      { type: 'skip', username: 'bob', email: 'bob@example.org', why: 'disabled_upstream' },
    ]);
    expect([...seen]).toEqual([['bob@example.org', { enabled: false, verified: true }]]);
  });

  it('planPage ignores a user listed again with the same id (a page shift), but skips another user with that email', () => {
    const earlier = new Map([['alice@example.org', { id: 'id-alice', enabled: true, verified: true }]]);
    const { actions, seen } = planPage(
      [user('alice', { id: 'id-alice' }), user('alice2', { id: 'id-other', email: 'alice@example.org' })],
      new Map(),
      context(),
      earlier,
    );
    expect(actions).toEqual([{ type: 'skip', username: 'alice2', email: 'alice@example.org', why: 'duplicate_email' }]);
    expect(seen.size).toBe(0);
  });

  it('planPage skips an unverified email, remembers it as present, and lets a verified user take the email', () => {
    const { actions, seen } = planPage(
      [
        user('squatter', { id: 'id-s', email: 'nora@example.org', emailVerified: false }),
        user('nora', { id: 'id-n' }),
        user('lone', { id: 'id-l', emailVerified: false }),
      ],
      new Map([['lone@example.org', mailbox('lone@example.org', { attributeHash: 'stale' })]]),
      context({ importUsers: true, periodicSync: true }),
    );
    expect(actions).toEqual([
      { type: 'skip', username: 'squatter', email: 'nora@example.org', why: 'email_not_verified' },
      expect.objectContaining({ type: 'create', email: 'nora@example.org' }),
      { type: 'skip', username: 'lone', email: 'lone@example.org', why: 'email_not_verified' },
    ]);
    expect(seen.get('nora@example.org')).toEqual({ id: 'id-n', enabled: true, verified: true });
    expect(seen.get('lone@example.org')).toEqual({ id: 'id-l', enabled: true, verified: false });
  });

  it('planDirectoryEnd only considers keycloak mailboxes', () => {
    const actions = planDirectoryEnd(
      [mailbox('a@example.org', { authSource: 'generic-oidc' }), mailbox('b@example.org')],
      new Map(),
      settings({ deprovision: true }),
    );
    expect(actions).toEqual([{ type: 'deactivate', email: 'b@example.org', why: 'gone_upstream', previousActive: 1 }]);
  });

  it.each([
    [{ listedUsers: 0, idpMailboxes: 0, activeIdpMailboxes: 0, deactivations: 0, maxDropPercent: 20 }, false],
    [{ listedUsers: 10, idpMailboxes: 10, activeIdpMailboxes: 10, deactivations: 2, maxDropPercent: 20 }, false],
    [{ listedUsers: 10, idpMailboxes: 10, activeIdpMailboxes: 10, deactivations: 3, maxDropPercent: 20 }, true],
    [{ listedUsers: 10, idpMailboxes: 10, activeIdpMailboxes: 10, deactivations: 10, maxDropPercent: 100 }, false],
    [{ listedUsers: 1, idpMailboxes: 1, activeIdpMailboxes: 1, deactivations: 1, maxDropPercent: 0 }, true],
  ])('refusalFor(%o) refuses: %s', (input, refused) => {
    expect(refusalFor(input) !== undefined).toBe(refused);
  });
});
