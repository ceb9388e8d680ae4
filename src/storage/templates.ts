// mailcow's `templates` table (mailbox templates only). The raw attributes JSON text is kept
// as read, because mailcow's attribute_hash is the sha1 of exactly that text.
import type { Db } from './db.js';
import { parseAttributes } from './mailboxes.js';

export interface MailboxTemplate {
  id: number;
  name: string;
  attributes: Record<string, unknown>;
  /** The attributes column verbatim; its sha1 is mailcow's attribute_hash. */
  rawAttributes: string;
}

interface TemplateRow {
  id: number;
  template: string;
  attributes: string | null;
  [key: string]: unknown;
}

function toTemplate(row: TemplateRow): MailboxTemplate {
  const raw = typeof row.attributes === 'string' ? row.attributes : JSON.stringify(row.attributes ?? {});
  return { id: Number(row.id), name: row.template, attributes: parseAttributes(raw), rawAttributes: raw };
}

export async function listMailboxTemplates(db: Pick<Db, 'many'>): Promise<MailboxTemplate[]> {
  const rows = await db.many<TemplateRow>(
    "SELECT id, template, attributes FROM templates WHERE type = 'mailbox' ORDER BY id",
  );
  return rows.map(toTemplate);
}

/** mailcow's names are not unique; like mailcow, the first one wins. */
export async function findMailboxTemplateByName(
  db: Pick<Db, 'one'>,
  name: string,
): Promise<MailboxTemplate | undefined> {
  const row = await db.one<TemplateRow>(
    "SELECT id, template, attributes FROM templates WHERE type = 'mailbox' AND template = ? ORDER BY id LIMIT 1",
    [name],
  );
  return row ? toTemplate(row) : undefined;
}

export async function findMailboxTemplateById(db: Pick<Db, 'one'>, id: number): Promise<MailboxTemplate | undefined> {
  const row = await db.one<TemplateRow>(
    "SELECT id, template, attributes FROM templates WHERE type = 'mailbox' AND id = ?",
    [id],
  );
  return row ? toTemplate(row) : undefined;
}

export async function insertMailboxTemplate(
  db: Pick<Db, 'execute'>,
  name: string,
  attributes: Record<string, unknown>,
): Promise<number> {
  const { insertId } = await db.execute(
    "INSERT INTO templates (template, type, attributes, created, modified) VALUES (?, 'mailbox', ?, NOW(), NOW())",
    [name, JSON.stringify(attributes)],
  );
  return insertId;
}

export async function updateMailboxTemplate(
  db: Pick<Db, 'execute'>,
  id: number,
  changes: { name?: string; attributes?: Record<string, unknown> },
): Promise<boolean> {
  const sets: string[] = [];
  const params: (string | number)[] = [];
  if (changes.name !== undefined) {
    sets.push('template = ?');
    params.push(changes.name);
  }
  if (changes.attributes !== undefined) {
    sets.push('attributes = ?');
    params.push(JSON.stringify(changes.attributes));
  }
  if (sets.length === 0) return true;
  const { affectedRows } = await db.execute(
    `UPDATE templates SET ${sets.join(', ')}, modified = NOW() WHERE id = ? AND type = 'mailbox'`,
    [...params, id],
  );
  return affectedRows === 1;
}

export async function deleteMailboxTemplate(db: Pick<Db, 'execute'>, id: number): Promise<boolean> {
  const { affectedRows } = await db.execute("DELETE FROM templates WHERE id = ? AND type = 'mailbox'", [id]);
  return affectedRows === 1;
}
