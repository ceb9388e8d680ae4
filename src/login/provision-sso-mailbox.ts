// SSO mailbox provisioning (mailcow-compat.md §5 steps 7-8, with postern's stricter rules): the
// identity an IdP vouched for becomes a mailbox from the mapped template on first sign-in, and
// later sign-ins re-apply the mapped template. Its reads and writes are storage/'s.
import { foldAddress } from '../address.js';
import type { Logger } from '../log.js';
import { type IdpSettings, templateMappingsOf } from '../sources/idp-settings.js';
import { mailboxActor, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { findMailboxStatus } from '../storage/mailboxes.js';
import { findMailboxTemplateByName } from '../storage/templates.js';
import { applyTemplateToMailbox, createMailboxFromTemplate } from '../templates/apply-template.js';
import { pickTemplate } from '../templates/pick-template.js';
import { auditSsoRefusal, refuse, type WebRefusal } from './web-refusal.js';

export interface ProvisionDeps {
  db: Db;
  log: Logger;
}

/** The identity the IdP vouched for, reduced to what provisioning needs. */
export interface SsoIdentity {
  /** Email after foldAddress: the mailbox key. */
  email: string;
  name: string;
  /** Value of settings.attribute_field (string, or Keycloak's string array), if any. */
  attribute: unknown;
}

export type SsoLoginOutcome =
  | { ok: true; username: string; provisioned: boolean; template?: string; templateApplied: boolean }
  | WebRefusal;

/**
 * Match the IdP identity to a mailbox by email, creating it from the mapped template on first
 * login and re-applying the mapped template on later ones. Never takes over a mailbox of
 * another auth source, and never re-enables a mailbox or domain an admin disabled.
 */
export async function provisionSsoMailbox(
  deps: ProvisionDeps,
  settings: IdpSettings,
  identity: SsoIdentity,
  context: { ip?: string } = {},
): Promise<SsoLoginOutcome> {
  const email = foldAddress(identity.email);
  const mappings = templateMappingsOf(settings);
  const ip = context.ip;
  const refused = (refusal: WebRefusal) => auditSsoRefusal(deps.db, ip, email, refusal);

  for (let attempt = 0; attempt < 2; attempt++) {
    const existing = await findMailboxStatus(deps.db, email);

    if (existing) {
      const source = existing.authSource ?? 'mailcow';
      if (source !== settings.authsource) {
        return refused(
          source === 'mailcow'
            ? refuse(
                409,
                'local_mailbox',
                'This mailbox uses its password',
                `The mailbox ${email} signs in with its password, not through single sign-on. Ask an admin to switch it to single sign-on.`,
              )
            : refuse(
                409,
                'other_source',
                'This mailbox uses another sign-in',
                `The mailbox ${email} belongs to another sign-in source (${source}). Ask an admin.`,
              ),
        );
      }
      if (['location', 'thing', 'group'].includes(existing.kind)) {
        return refused(
          refuse(
            403,
            'resource_mailbox',
            'Not a personal mailbox',
            `${email} is a resource mailbox and cannot sign in.`,
          ),
        );
      }

      let applied: string | undefined;
      const choice = pickTemplate(identity.attribute, mappings, 'update');
      if (choice.template) {
        const template = await findMailboxTemplateByName(deps.db, choice.template);
        if (!template) {
          deps.log.warn(
            { user: email, template: choice.template },
            'mapped template does not exist; mailbox left as it is',
          );
        } else {
          const result = await deps.db.transaction((tx) =>
            applyTemplateToMailbox(tx, {
              username: existing.username,
              template,
              ...(identity.name ? { name: identity.name } : {}),
            }),
          );
          if (result.changed) {
            applied = template.name;
            await recordAudit(deps.db, {
              actor: mailboxActor(email),
              action: 'sso.template',
              target: existing.username,
              detail: { template: template.name, mapper: choice.why === 'mapped' ? choice.mapper : undefined },
              ...(ip ? { ip } : {}),
            });
          }
        }
      }

      // Re-read: applying a template may have lowered `active`.
      const now = await findMailboxStatus(deps.db, existing.username);
      if (now?.active !== 1) {
        return refused(
          refuse(403, 'mailbox_inactive', 'Mailbox disabled', `The mailbox ${email} is disabled. Ask an admin.`),
        );
      }
      if (!now.domainActive) {
        return refused(
          refuse(403, 'domain_inactive', 'Domain disabled', `The domain of ${email} is disabled. Ask an admin.`),
        );
      }
      await recordAudit(deps.db, {
        actor: mailboxActor(email),
        action: 'sso.login',
        target: existing.username,
        ...(ip ? { ip } : {}),
      });
      return {
        ok: true,
        username: existing.username,
        provisioned: false,
        templateApplied: applied !== undefined,
        ...(applied ? { template: applied } : {}),
      };
    }

    if (!settings.login_provisioning) {
      return refused(
        refuse(
          403,
          'provisioning_off',
          'No mailbox for this address',
          `There is no mailbox for ${email}, and mailboxes are not created at sign-in. Ask an admin.`,
        ),
      );
    }
    const choice = pickTemplate(identity.attribute, mappings, 'create');
    if (!choice.template) {
      return refused(
        refuse(
          403,
          'no_template',
          'No mailbox template',
          `No mailbox template matches your account, so no mailbox can be created for ${email}. Ask an admin.`,
        ),
      );
    }
    const template = await findMailboxTemplateByName(deps.db, choice.template);
    if (!template) {
      deps.log.error({ template: choice.template }, 'mapped template does not exist');
      return refused(
        refuse(
          403,
          'no_template',
          'No mailbox template',
          `The mailbox template "${choice.template}" does not exist, so no mailbox can be created for ${email}. Ask an admin.`,
        ),
      );
    }
    const created = await deps.db.transaction((tx) =>
      createMailboxFromTemplate(tx, {
        username: email,
        name: identity.name,
        authSource: settings.authsource,
        template,
      }),
    );
    if (!created.ok) {
      const domain = email.slice(email.lastIndexOf('@') + 1);
      switch (created.reason) {
        case 'exists':
          continue; // created concurrently (another tab, a sync): treat as an existing mailbox
        case 'unknown_domain':
          return refused(
            refuse(
              403,
              'unknown_domain',
              'Domain not hosted here',
              `The domain ${domain} is not hosted on this server, so no mailbox can be created for ${email}.`,
            ),
          );
        case 'inactive_domain':
          return refused(
            refuse(
              403,
              'inactive_domain',
              'Domain disabled',
              `The domain ${domain} is disabled, so no mailbox can be created for ${email}. Ask an admin.`,
            ),
          );
        case 'invalid_address':
          return refused(
            refuse(403, 'no_email', 'Unusable email address', `${email} cannot be used as a mailbox address.`),
          );
        case 'unusable_address':
          return refused(
            refuse(
              403,
              'unusable_address',
              'Unusable email address',
              `No mailbox can be created for ${email}: ${created.detail ?? 'it cannot be a mailbox address'}. Ask an admin.`,
            ),
          );
        case 'collides':
          deps.log.warn(
            { user: email, existing: created.existing },
            'SSO address is another spelling of an existing mailbox or alias under the database collation',
          );
          return refused(
            refuse(
              409,
              'address_collides',
              'Address already taken',
              `No mailbox can be created for ${email}: the mail database treats it as the same address as an existing mailbox or alias. Ask an admin.`,
            ),
          );
      }
    }
    await recordAudit(deps.db, {
      actor: mailboxActor(email),
      action: 'sso.provision',
      target: email,
      detail: { template: template.name, why: choice.why, authsource: settings.authsource },
      ...(ip ? { ip } : {}),
    });
    if (Number(template.attributes.active ?? 1) !== 1) {
      return refused(
        refuse(
          403,
          'mailbox_inactive',
          'Mailbox created but disabled',
          `A mailbox was created for ${email}, but its template leaves it unable to sign in. Ask an admin.`,
        ),
      );
    }
    await recordAudit(deps.db, {
      actor: mailboxActor(email),
      action: 'sso.login',
      target: email,
      ...(ip ? { ip } : {}),
    });
    return { ok: true, username: email, provisioned: true, template: template.name, templateApplied: true };
  }
  return refused(
    refuse(409, 'conflict', 'Please try again', 'Your mailbox changed while you were signing in. Please try again.'),
  );
}
