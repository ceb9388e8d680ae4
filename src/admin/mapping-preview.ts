// The attribute → template mapping as admins edit and preview it: ordered rows over mailcow's
// index-aligned `mappers`/`templates` arrays, and "which template would this value get, and
// why" from the same pickTemplate() that sign-in and sync use. Pure, apart from the sample-user
// lookup, which goes through the Keycloak admin client as sync does.
import { AppError } from '../errors.js';
import type { KeycloakAdminClient } from '../sources/keycloak-admin.js';
import { pickTemplate, type TemplateChoice, type TemplateMappings } from '../templates/pick-template.js';

export interface MappingRow {
  value: string;
  template: string;
}

export interface Mapping {
  rows: MappingRow[];
  defaultTemplate: string;
}

export function mappingOf(settings: {
  mappers: readonly string[];
  templates: readonly string[];
  default_template: string;
}): Mapping {
  return {
    rows: settings.mappers.map((value, index) => ({ value, template: settings.templates[index] ?? '' })),
    defaultTemplate: settings.default_template,
  };
}

/** Back to mailcow's keys. */
export function settingsOfMapping(mapping: Mapping) {
  return {
    mappers: mapping.rows.map((row) => row.value),
    templates: mapping.rows.map((row) => row.template),
    default_template: mapping.defaultTemplate,
  };
}

export type MappingChange =
  | { op: 'add'; value: string; template: string }
  | { op: 'remove'; index: number }
  | { op: 'move'; index: number; to: number }
  | { op: 'default'; template: string };

/**
 * One edit of the table. A value that is already mapped is refused: the first row would win
 * and the second could never apply. Throws AppError bad_request/not_found for impossible edits.
 */
export function changeMapping(mapping: Mapping, change: MappingChange): Mapping {
  const rows = [...mapping.rows];
  switch (change.op) {
    case 'add': {
      const value = change.value.trim();
      if (value === '') throw new AppError('bad_request', 'value: must not be empty');
      if (rows.some((row) => row.value.trim() === value)) {
        throw new AppError('conflict', `value: "${value}" is already mapped (the first row would always win)`);
      }
      rows.push({ value, template: change.template });
      return { ...mapping, rows };
    }
    case 'remove':
      if (!rows[change.index]) throw new AppError('not_found', 'no such mapping row');
      rows.splice(change.index, 1);
      return { ...mapping, rows };
    case 'move': {
      const row = rows[change.index];
      if (!row || change.to < 0 || change.to >= rows.length)
        throw new AppError('bad_request', 'cannot move that row there');
      rows.splice(change.index, 1);
      rows.splice(change.to, 0, row);
      return { ...mapping, rows };
    }
    case 'default':
      return { ...mapping, defaultTemplate: change.template };
  }
}

export interface MappingPreview {
  /** The attribute value as pickTemplate reads it (first element of a list, trimmed). */
  value: string | undefined;
  /** A new mailbox (sign-in provisioning, import). */
  create: TemplateChoice;
  /** An existing mailbox (sign-in, periodic sync): never the default. */
  update: TemplateChoice;
  /** 0-based row that matched, if any. */
  matchedRow: number | undefined;
  /** Sentences: which rows were compared and what decided. */
  why: string[];
}

export function previewMapping(value: unknown, mapping: Mapping, attributeField: string): MappingPreview {
  const mappings: TemplateMappings = {
    ...settingsOfMapping(mapping),
    ...(mapping.defaultTemplate ? { defaultTemplate: mapping.defaultTemplate } : {}),
  };
  const create = pickTemplate(value, mappings, 'create');
  const update = pickTemplate(value, mappings, 'update');
  const first = Array.isArray(value) ? value[0] : value;
  const shown = typeof first === 'string' ? first.trim() || undefined : first === undefined ? undefined : String(first);
  const matchedRow =
    create.why === 'mapped' ? mapping.rows.findIndex((row) => row.value.trim() === create.mapper.trim()) : -1;
  const why: string[] = [];
  if (shown === undefined) why.push(`The user has no ${attributeField} value, so no row can match.`);
  else {
    why.push(
      `Rows are compared in order with ${attributeField} = "${shown}" (exact text, spaces around it ignored); the first match wins.`,
    );
  }
  if (create.why === 'mapped') {
    why.push(
      `Row ${matchedRow + 1} ("${create.mapper}") matches: template "${create.template}", for new and existing mailboxes.`,
    );
  } else if (create.why === 'default') {
    why.push(
      `No row matches: a new mailbox gets the default template "${create.template}"; an existing mailbox keeps the template it has.`,
    );
  } else {
    why.push(
      'No row matches and there is no default template: no mailbox is created; an existing mailbox keeps its template.',
    );
  }
  return { value: shown, create, update, matchedRow: matchedRow >= 0 ? matchedRow : undefined, why };
}

export interface SampleUser {
  username: string;
  email: string | undefined;
  value: unknown;
}

/** The sample user's attribute, looked up by email as sync does; undefined when no user has it. */
export async function findSampleUser(
  client: Pick<KeycloakAdminClient, 'findUsersByEmail'>,
  email: string,
  attributeField: string,
): Promise<SampleUser | undefined> {
  const [user] = await client.findUsersByEmail(email);
  if (!user) return undefined;
  return { username: user.username, email: user.email, value: user.attributes?.[attributeField] };
}
