// /api/v1/domains and /api/v1/alias-domains: the domain use-cases of src/admin/domains.ts as JSON.
// Limits are mailcow's `domain` columns (MiB for the quotas). A domain admin sees and changes
// only its domains (404 for others); creating and deleting domains is the superadmin's.
import { Hono } from 'hono';
import { z } from 'zod';
import {
  createAliasDomain,
  createDomain,
  DOMAIN_PAGE_SIZE,
  deleteAliasDomain,
  deleteDomain,
  domainFieldsSchema,
  flagSchema,
  getAliasDomain,
  getDomain,
  listAliasDomainsFor,
  listDomainsFor,
  setAliasDomainActive,
  updateDomain,
} from '../../admin/domains.js';
import type { Deps } from '../../deps.js';
import type { AliasDomainRecord, DomainRecord } from '../../storage/domains.js';
import { changeBy, unwrap } from './admin-outcome.js';
import { parseWith, readBody } from './admin-request.js';

export function domainView(domain: DomainRecord) {
  return {
    domain: domain.domain,
    description: domain.description,
    active: domain.active,
    mailboxes: domain.mailboxes,
    aliases: domain.aliases,
    defquota: domain.defquota,
    maxquota: domain.maxquota,
    quota: domain.quota,
    gal: domain.gal,
    backupmx: domain.backupmx,
    created: domain.created,
  };
}

export function aliasDomainView(record: AliasDomainRecord) {
  return {
    alias_domain: record.aliasDomain,
    target_domain: record.targetDomain,
    active: record.active,
    created: record.created,
  };
}

const listQuery = z.strictObject({
  search: z.string().max(255).optional(),
  after: z.string().max(255).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

const createBody = domainFieldsSchema.extend({ domain: z.string({ error: 'required' }).max(255) }).strict();
const updateBody = domainFieldsSchema.strict();
const aliasCreateBody = z.strictObject({
  alias_domain: z.string({ error: 'required' }).max(255),
  target_domain: z.string({ error: 'required' }).max(255),
  active: flagSchema.optional(),
});
const aliasUpdateBody = z.strictObject({ active: flagSchema });

export function createDomainRoutes(deps: Pick<Deps, 'db'>) {
  const app = new Hono();

  app.get('/', async (c) => {
    const query = parseWith(listQuery, c.req.query(), 'query');
    const limit = query.limit ?? DOMAIN_PAGE_SIZE;
    const rows = await listDomainsFor(deps, c.get('admin').actor, { ...query, limit });
    return c.json({
      domains: rows.map((row) => ({
        ...domainView(row),
        mailbox_count: row.mailboxCount,
        alias_domain_count: row.aliasDomainCount,
      })),
      next: rows.length === limit ? (rows.at(-1)?.domain ?? null) : null,
    });
  });

  app.post('/', async (c) => {
    const body = await readBody(c, createBody);
    const created = unwrap(await createDomain(deps, changeBy(c), body));
    return c.json(domainView(created), 201);
  });

  app.get('/:domain', async (c) => {
    const details = unwrap(await getDomain(deps, c.get('admin').actor, c.req.param('domain')));
    return c.json({
      ...domainView(details.domain),
      usage: {
        mailboxes: details.usage.mailboxCount,
        aliases: details.usage.aliasCount,
        biggest_mailbox_mib: details.usage.biggestMailboxMiB,
        quota_sum_mib: details.usage.quotaSumMiB,
      },
      alias_domains: details.aliasDomains.map(aliasDomainView),
    });
  });

  app.patch('/:domain', async (c) => {
    const body = await readBody(c, updateBody);
    return c.json(domainView(unwrap(await updateDomain(deps, changeBy(c), c.req.param('domain'), body))));
  });

  app.delete('/:domain', async (c) => {
    unwrap(await deleteDomain(deps, changeBy(c), c.req.param('domain')));
    return c.json({ success: true });
  });

  return app;
}

export function createAliasDomainRoutes(deps: Pick<Deps, 'db'>) {
  const app = new Hono();

  app.get('/', async (c) => {
    const { target } = parseWith(z.strictObject({ target: z.string().max(255).optional() }), c.req.query(), 'query');
    const rows = await listAliasDomainsFor(deps, c.get('admin').actor, target ? { target } : {});
    return c.json({ alias_domains: rows.map(aliasDomainView) });
  });

  app.post('/', async (c) => {
    const body = await readBody(c, aliasCreateBody);
    const created = unwrap(
      await createAliasDomain(deps, changeBy(c), {
        aliasDomain: body.alias_domain,
        targetDomain: body.target_domain,
        ...(body.active !== undefined ? { active: body.active } : {}),
      }),
    );
    return c.json(aliasDomainView(created), 201);
  });

  app.get('/:name', async (c) =>
    c.json(aliasDomainView(unwrap(await getAliasDomain(deps, c.get('admin').actor, c.req.param('name'))))),
  );

  app.patch('/:name', async (c) => {
    const { active } = await readBody(c, aliasUpdateBody);
    return c.json(aliasDomainView(unwrap(await setAliasDomainActive(deps, changeBy(c), c.req.param('name'), active))));
  });

  app.delete('/:name', async (c) => {
    unwrap(await deleteAliasDomain(deps, changeBy(c), c.req.param('name')));
    return c.json({ success: true });
  });

  return app;
}
