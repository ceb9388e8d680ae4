// The sync diff: which mailboxes a directory listing should create, update, deactivate or
// reactivate, and which users are skipped and why. Pure: no I/O, no clock; apply-sync.ts
// feeds it page by page and executes (or only reports) what it returns.
//
// Streaming shape (so 50,000 users are never held at once):
// - planPage(users of one page, mailboxes of those users' emails, domains of those emails)
//   → create / update / skip. Non-destructive, so it may be applied page by page.
// - planDirectoryEnd(every IdP mailbox, seen emails) → deactivate / reactivate / unmark,
//   computed once the listing is complete, from the map of seen emails (email → enabled).
// - refusalFor(...) gates the end actions: an empty listing or a suspicious drop applies nothing.
// planSync() composes the three over a whole listing; it is the specification the streaming
// engine follows and what the table tests exercise.
// Keycloak's paging has no snapshot (a user deleted or added between two page requests shifts
// the rest), so one listing can miss a user who is still there or list one twice: the `seen`
// map keeps each email's Keycloak id so a repeat is no duplicate, and apply-sync.ts confirms
// every deactivation with Keycloak before it writes.
// Memory bound of a run: one page of users (100) and its mailbox rows, the `seen` map (one
// lower-case email, the user's id and two flags per listed user: ~200 B each, so 50,000 users
// ≈ 10 MB),
// and the end actions (at most one small object per IdP mailbox that changes).
//
// Why one file of ~340 lines: the whole diff, pure, in one place: planPage, planDirectoryEnd and
// refusalFor are the streaming engine's steps and planSync composes them into the specification
// the table tests exercise; they share the action and state types above them. No I/O to separate.
import { foldAddress } from '../address.js';
import type { KeycloakSettings } from '../sources/idp-settings.js';
import type { KeycloakUser } from '../sources/keycloak-admin.js';
import type { MailboxAuthSource } from '../storage/mailboxes.js';
import { pickTemplate, type TemplateMappings } from '../templates/pick-template.js';

/** Attribute that marks a mailbox deactivated by sync; its value is the `active` to restore ("1"/"2"). */
export const DEPROVISION_MARKER = 'postern_deprovisioned';

export type DirectoryUser = Pick<
  KeycloakUser,
  'username' | 'email' | 'enabled' | 'firstName' | 'lastName' | 'attributes'
> &
  Partial<Pick<KeycloakUser, 'id' | 'emailVerified'>>;

/** What the listing said about an email: the user who holds it (first in listing order). */
export interface SeenUser {
  /** Keycloak's id of the user; the same id listed again is a page-shift repeat, not a duplicate. */
  id?: string;
  enabled: boolean;
  /** Unverified holders are remembered (the mailbox is not "gone") but never drive a mailbox. */
  verified: boolean;
}

/** What planning needs to know about an existing mailbox. */
export interface MailboxState {
  /** Lower-case address. */
  username: string;
  name: string;
  /** 1 = active, 2 = receives mail but no login, 0 = inactive. */
  active: number;
  authSource: MailboxAuthSource | null;
  attributeHash: string | undefined;
  /** The `active` value to restore when sync deactivated this mailbox; undefined otherwise. */
  deprovisionedFrom: 1 | 2 | undefined;
}

export interface SyncSettings {
  importUsers: boolean;
  periodicSync: boolean;
  deprovision: boolean;
  maxDropPercent: number;
  attributeField: string;
  mappings: TemplateMappings;
}

export function syncSettingsOf(settings: KeycloakSettings): SyncSettings {
  return {
    importUsers: settings.import_users,
    periodicSync: settings.periodic_sync,
    deprovision: settings.postern_deprovision,
    maxDropPercent: settings.postern_max_drop_percent,
    attributeField: settings.attribute_field,
    mappings: {
      mappers: settings.mappers,
      templates: settings.templates,
      ...(settings.default_template ? { defaultTemplate: settings.default_template } : {}),
    },
  };
}

export interface PlanContext {
  settings: SyncSettings;
  /** Mailbox templates in the database: name → attribute hash (sha1 of its JSON text). */
  templates: ReadonlyMap<string, { hash: string }>;
  /** Domain → active, for the domains of the users being planned; absent = no such domain. */
  domains: ReadonlyMap<string, { active: boolean }>;
}

export type SkipReason =
  | 'no_email'
  | 'invalid_email'
  | 'duplicate_email'
  | 'unknown_domain'
  | 'inactive_domain'
  | 'no_template'
  | 'template_missing'
  | 'authsource_not_keycloak'
  | 'disabled_upstream'
  /** Keycloak has not verified the email: SSO refuses such a sign-in, so sync does not act on it either. */
  | 'email_not_verified';

export type SyncAction =
  | { type: 'create'; email: string; name: string; template: string; templateWhy: 'mapped' | 'default' }
  | { type: 'update'; email: string; template: string; name?: string; why: 'template_changed' | 'name_changed' }
  | { type: 'deactivate'; email: string; why: 'disabled_upstream' | 'gone_upstream'; previousActive: 1 | 2 }
  | { type: 'reactivate'; email: string; restoreActive: 1 | 2 }
  /** An admin re-enabled a sync-deactivated mailbox: forget the marker so a later admin deactivation is never undone. */
  | { type: 'unmark'; email: string }
  | { type: 'skip'; username: string; email?: string; why: SkipReason; template?: string };

export type SyncActionType = SyncAction['type'];

/** Keycloak user's display name the way mailcow builds it (firstName + " " + lastName). */
export function displayNameOf(user: Pick<DirectoryUser, 'firstName' | 'lastName'>): string | undefined {
  const name = [user.firstName, user.lastName]
    .filter((part) => part !== undefined && part.trim() !== '')
    .join(' ')
    .trim();
  return name === '' ? undefined : name;
}

export function emailOf(user: Pick<DirectoryUser, 'email'>): string | undefined {
  const email = user.email === undefined ? undefined : foldAddress(user.email.trim());
  return email ? email : undefined;
}

export function domainOf(email: string): string | undefined {
  const at = email.lastIndexOf('@');
  return at > 0 && at < email.length - 1 ? email.slice(at + 1) : undefined;
}

/**
 * Plan one page of the listing: creates (import_users), template/name updates (periodic_sync)
 * and skips. `seen` holds the emails of earlier pages (duplicates are skipped); the page's own
 * emails are returned in `seen` for the caller to merge.
 */
export function planPage(
  users: readonly DirectoryUser[],
  mailboxes: ReadonlyMap<string, MailboxState>,
  context: PlanContext,
  earlierSeen: ReadonlyMap<string, SeenUser> = new Map(),
): { actions: SyncAction[]; seen: Map<string, SeenUser> } {
  const { settings } = context;
  const actions: SyncAction[] = [];
  const seen = new Map<string, SeenUser>();
  for (const user of users) {
    const email = emailOf(user);
    if (!email) {
      actions.push({ type: 'skip', username: user.username, why: 'no_email' });
      continue;
    }
    const previous = seen.get(email) ?? earlierSeen.get(email);
    // The same user again: a user added before it between two page requests pushed it onto the
    // next page too. Nothing new to plan.
    if (previous?.id !== undefined && previous.id === user.id) continue;
    const verified = user.emailVerified === true;
    if (!verified) {
      // Consistent with SSO, which refuses an unverified email; an unverified account can neither
      // create a mailbox nor push a template onto one (nor win the email from a verified user).
      actions.push({ type: 'skip', username: user.username, email, why: 'email_not_verified' });
      if (!previous) seen.set(email, { ...(user.id ? { id: user.id } : {}), enabled: user.enabled, verified });
      continue;
    }
    if (previous?.verified) {
      // Keycloak can allow duplicate emails (realm setting); the first verified user in listing order wins.
      actions.push({ type: 'skip', username: user.username, email, why: 'duplicate_email' });
      continue;
    }
    seen.set(email, { ...(user.id ? { id: user.id } : {}), enabled: user.enabled, verified });
    const attribute =
      user.attributes && Object.hasOwn(user.attributes, settings.attributeField)
        ? user.attributes[settings.attributeField]
        : undefined;
    const mailbox = mailboxes.get(email);
    const name = displayNameOf(user);

    if (!mailbox) {
      if (!settings.importUsers) continue;
      const skip = (why: SkipReason, template?: string) =>
        actions.push({ type: 'skip', username: user.username, email, why, ...(template ? { template } : {}) });
      // A mailbox for an account the directory has disabled is pointless; it comes when enabled.
      if (!user.enabled) skip('disabled_upstream');
      else {
        const domain = domainOf(email);
        const domainState = domain ? context.domains.get(domain) : undefined;
        if (!domain) skip('invalid_email');
        else if (!domainState) skip('unknown_domain');
        else if (!domainState.active) skip('inactive_domain');
        else {
          const choice = pickTemplate(attribute, settings.mappings, 'create');
          if (choice.template === undefined) skip('no_template');
          else if (!context.templates.has(choice.template)) skip('template_missing', choice.template);
          else {
            actions.push({
              type: 'create',
              email,
              name: name ?? email.slice(0, email.lastIndexOf('@')),
              template: choice.template,
              templateWhy: choice.why,
            });
          }
        }
      }
      continue;
    }

    if (mailbox.authSource !== 'keycloak') {
      // mailcow: a mailbox of another source is never touched by the Keycloak sync.
      actions.push({ type: 'skip', username: user.username, email, why: 'authsource_not_keycloak' });
      continue;
    }
    if (!settings.periodicSync) continue;
    // Updates never fall back to the default template (mailcow's rule).
    const choice = pickTemplate(attribute, settings.mappings, 'update');
    if (choice.template === undefined) {
      actions.push({ type: 'skip', username: user.username, email, why: 'no_template' });
      continue;
    }
    const template = context.templates.get(choice.template);
    if (!template) {
      actions.push({
        type: 'skip',
        username: user.username,
        email,
        why: 'template_missing',
        template: choice.template,
      });
      continue;
    }
    const nameChanged = name !== undefined && name !== mailbox.name;
    if (template.hash !== mailbox.attributeHash) {
      actions.push({
        type: 'update',
        email,
        template: choice.template,
        ...(name !== undefined ? { name } : {}),
        why: 'template_changed',
      });
    } else if (nameChanged) {
      actions.push({ type: 'update', email, template: choice.template, name, why: 'name_changed' });
    }
  }
  return { actions, seen };
}

/**
 * After a complete listing: deactivate IdP mailboxes whose user is disabled or gone (only with
 * deprovisioning on), reactivate the ones sync deactivated whose user is back and enabled, and
 * drop stale markers. Only `authsource = keycloak` mailboxes are ever considered.
 */
export function planDirectoryEnd(
  idpMailboxes: Iterable<MailboxState>,
  seen: ReadonlyMap<string, Pick<SeenUser, 'enabled'>>,
  settings: SyncSettings,
): SyncAction[] {
  const actions: SyncAction[] = [];
  for (const mailbox of idpMailboxes) {
    if (mailbox.authSource !== 'keycloak') continue;
    const enabled = seen.get(mailbox.username)?.enabled;
    if (mailbox.active === 0) {
      // Only a deactivation made by sync is undone; an admin's own (no marker) never is.
      if (mailbox.deprovisionedFrom !== undefined && enabled === true) {
        actions.push({ type: 'reactivate', email: mailbox.username, restoreActive: mailbox.deprovisionedFrom });
      }
      continue;
    }
    const previousActive: 1 | 2 = mailbox.active === 2 ? 2 : 1;
    if (settings.deprovision && enabled !== true) {
      actions.push({
        type: 'deactivate',
        email: mailbox.username,
        why: enabled === false ? 'disabled_upstream' : 'gone_upstream',
        previousActive,
      });
    } else if (mailbox.deprovisionedFrom !== undefined) {
      actions.push({ type: 'unmark', email: mailbox.username });
    }
  }
  return actions;
}

export interface SafetyInput {
  /** Users in the listing (all of them, with or without email). */
  listedUsers: number;
  /** Mailboxes with authsource keycloak, any state. */
  idpMailboxes: number;
  /** Of those, the ones not inactive (active 1 or 2): what deprovisioning could remove. */
  activeIdpMailboxes: number;
  deactivations: number;
  maxDropPercent: number;
}

/** Why a run must apply nothing, or undefined when it looks sane. */
export function refusalFor(input: SafetyInput): string | undefined {
  if (input.listedUsers === 0 && input.idpMailboxes > 0) {
    return `Keycloak listed no users while ${input.idpMailboxes} Keycloak mailboxes exist (wrong realm, missing view-users, or a broken user federation?)`;
  }
  if (input.deactivations > 0 && input.deactivations * 100 > input.maxDropPercent * input.activeIdpMailboxes) {
    const percent = ((input.deactivations * 100) / Math.max(1, input.activeIdpMailboxes)).toFixed(1);
    return `${input.deactivations} of ${input.activeIdpMailboxes} active Keycloak mailboxes (${percent}%) would be deactivated, more than the allowed ${input.maxDropPercent}% (postern_max_drop_percent)`;
  }
  return undefined;
}

export type SyncPlan = { actions: SyncAction[] } | { refused: string };

/**
 * The whole diff of one listing against the mailboxes (pure). `mailboxes` may hold every
 * mailbox; only those matching listed emails and the keycloak ones matter.
 */
export function planSync(
  directoryUsers: readonly DirectoryUser[],
  mailboxes: readonly MailboxState[],
  context: PlanContext,
): SyncPlan {
  const byEmail = new Map(
    mailboxes.map((mailbox) => [
      foldAddress(mailbox.username),
      { ...mailbox, username: foldAddress(mailbox.username) },
    ]),
  );
  const { actions, seen } = planPage(directoryUsers, byEmail, context);
  const idp = [...byEmail.values()].filter((mailbox) => mailbox.authSource === 'keycloak');
  const endActions = planDirectoryEnd(idp, seen, context.settings);
  const refused = refusalFor({
    listedUsers: directoryUsers.length,
    idpMailboxes: idp.length,
    activeIdpMailboxes: idp.filter((mailbox) => mailbox.active !== 0).length,
    deactivations: endActions.filter((action) => action.type === 'deactivate').length,
    maxDropPercent: context.settings.maxDropPercent,
  });
  if (refused) return { refused };
  return { actions: [...actions, ...endActions] };
}
