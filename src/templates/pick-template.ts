// Which mailbox template an identity gets: the first admin mapping whose attribute value
// matches, else (only when creating) the default template. Pure; no I/O.

export interface TemplateMappings {
  /** Attribute values, index-aligned with `templates` (mailcow's `mappers`). */
  mappers: readonly string[];
  /** Template names, index-aligned with `mappers`. */
  templates: readonly string[];
  /** Used only to create a mailbox when nothing maps (mailcow's `default_template`). */
  defaultTemplate?: string;
}

export type TemplateChoice =
  | { template: string; why: 'mapped'; mapper: string }
  | { template: string; why: 'default' }
  | { template: undefined; why: 'no_mapping' };

/**
 * @param value the identity's mapping attribute (e.g. `mailcow_template`); arrays take the first
 *   element, as Keycloak attributes are string arrays and mailcow reads `[0]`.
 * @param purpose `update` never falls back to the default: an existing mailbox keeps its
 *   template unless an explicit mapping says otherwise (mailcow's rule).
 */
export function pickTemplate(value: unknown, mappings: TemplateMappings, purpose: 'create' | 'update'): TemplateChoice {
  const attribute = normalise(Array.isArray(value) ? value[0] : value);
  if (attribute !== undefined) {
    const index = mappings.mappers.findIndex((mapper) => normalise(mapper) === attribute);
    const template = index >= 0 ? mappings.templates[index] : undefined;
    if (template) return { template, why: 'mapped', mapper: mappings.mappers[index] as string };
  }
  if (purpose === 'create' && mappings.defaultTemplate) return { template: mappings.defaultTemplate, why: 'default' };
  return { template: undefined, why: 'no_mapping' };
}

function normalise(value: unknown): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}
