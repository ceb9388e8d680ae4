// Who may do what in the admin API and console: one `can(actor, action, object)` that every
// route and page asks, on the object itself. Pure: no SQL, no hono; the caller loads the actor
// (admin account or API key) and the object (e.g. the mailbox, to learn its real domain).

export type Role = 'superadmin' | 'domainadmin';

export interface Actor {
  /** Audit name: an admin's username, or `api:config` / `api:mailcow-api` for keys. */
  name: string;
  role: Role;
  /** A domain admin's ACL, lower case (domain_admins rows); ignored for superadmins. */
  domains: readonly string[];
  /** Read-only keys may only read. */
  access: 'ro' | 'rw';
}

export type Action = 'read' | 'write';

/** What is being read or changed. Objects in a domain carry the domain they really belong to. */
export type AdminObject =
  | { kind: 'identity_provider' }
  | { kind: 'templates' }
  | { kind: 'sync' }
  | { kind: 'bans' }
  | { kind: 'admins' }
  | { kind: 'admin'; username: string }
  | { kind: 'api_keys' }
  | { kind: 'audit' }
  | { kind: 'mailbox'; domain: string }
  | { kind: 'domain'; domain: string };

/**
 * `not_found`: the object is outside the actor's domains; answered exactly like a missing one
 * so that existence does not leak. `forbidden`: the actor's role never reaches this kind of
 * object. `read_only`: a read-only key asked to change something.
 */
export type Permission = { allowed: true } | { allowed: false; denial: 'not_found' | 'forbidden' | 'read_only' };

const ALLOWED: Permission = { allowed: true };
const deny = (denial: 'not_found' | 'forbidden' | 'read_only'): Permission => ({ allowed: false, denial });

/** Superadmins: everything. Domain admins: their domains' objects; templates read-only; never IdP settings, sync, bans, admins (themselves included) or keys. */
export function can(actor: Actor, action: Action, object: AdminObject): Permission {
  const scoped = roleAllows(actor, action, object);
  if (!scoped.allowed) return scoped;
  if (action === 'write' && actor.access === 'ro') return deny('read_only');
  return ALLOWED;
}

function roleAllows(actor: Actor, action: Action, object: AdminObject): Permission {
  if (actor.role === 'superadmin') return ALLOWED;
  switch (object.kind) {
    case 'mailbox':
    case 'domain':
      return isInAcl(actor, object.domain) ? ALLOWED : deny('not_found');
    case 'templates':
      // A domain admin applies templates to its mailboxes but does not edit them (they are shared).
      return action === 'read' ? ALLOWED : deny('forbidden');
    case 'audit':
      // The audit query itself narrows a domain admin to entries about its domains.
      return action === 'read' ? ALLOWED : deny('forbidden');
    case 'identity_provider':
    case 'sync':
    case 'bans':
    case 'admins':
    case 'admin':
    case 'api_keys':
      return deny('forbidden');
  }
}

/** The domain part of a mailbox address, lower case ('' when there is none). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

function isInAcl(actor: Actor, domain: string): boolean {
  const wanted = domain.toLowerCase();
  return wanted !== '' && actor.domains.some((allowed) => allowed.toLowerCase() === wanted);
}
