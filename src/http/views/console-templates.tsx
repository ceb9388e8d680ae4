// The templates page: the mailbox templates (list, editor), and for superadmins the attribute →
// template mapping as an ordered table with its preview and the dry-run count.
import type { MappingPreview, MappingRow } from '../../admin/mapping-preview.js';
import type { MailboxTemplate } from '../../storage/templates.js';
import type { ConsoleView } from '../console/context.js';
import { Checkbox, CsrfForm, Field, FormErrors, Select } from './console-layout.js';

const MIB = 1024 * 1024;
export const ACTIVE_LABELS: Record<string, string> = {
  '1': 'active',
  '2': 'receives mail, no login',
  '0': 'inactive',
};

export function quotaMib(template: MailboxTemplate): number {
  return Math.round(Number(template.attributes.quota ?? 0) / MIB);
}

const on = (value: unknown) => value === 1 || value === '1' || value === true;

export interface MappingSection {
  attributeField: string;
  rows: MappingRow[];
  defaultTemplate: string;
  preview?: { input: string; sampleUser?: string | undefined; result: MappingPreview | undefined; note?: string };
  dryRun?: { changed: number; created: number; updated: number; runId: number } | { problem: string };
}

export function TemplatesPage(props: {
  view: ConsoleView;
  templates: MailboxTemplate[];
  canEdit: boolean;
  /** Undefined: no identity provider, or not a superadmin. */
  mapping: MappingSection | 'no_idp' | undefined;
  errors?: Record<string, string> | undefined;
  protocolKeys: readonly string[];
}) {
  const names = props.templates.map((t) => ({ value: t.name, label: t.name }));
  return (
    <>
      <FormErrors errors={props.errors} />
      <section aria-labelledby="templates-heading">
        <h2 id="templates-heading">Mailbox templates</h2>
        <table id="templates">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col" class="num">
                Quota (MiB)
              </th>
              <th scope="col">State</th>
              <th scope="col">Protocols</th>
            </tr>
          </thead>
          <tbody>
            {props.templates.map((template) => (
              <tr>
                <td>
                  <a href={`/admin/templates/${template.id}`}>{template.name}</a>
                </td>
                <td class="num">{quotaMib(template) || 'unlimited'}</td>
                <td>
                  {ACTIVE_LABELS[String(template.attributes.active ?? '1')] ?? String(template.attributes.active)}
                </td>
                <td>
                  {props.protocolKeys
                    .filter((key) => on(template.attributes[key]))
                    .map((key) => key.replace(/_access$/, ''))
                    .join(', ') || 'none'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {props.canEdit ? (
          <CsrfForm view={props.view} action="/admin/templates" class="toolbar" id="template-create">
            <Field name="name" label="New template name" required />
            <button type="submit">Create template</button>
          </CsrfForm>
        ) : null}
      </section>
      {props.mapping === 'no_idp' ? (
        <section aria-labelledby="mapping-heading">
          <h2 id="mapping-heading">Attribute mapping</h2>
          <p>
            Configure the <a href="/admin/identity-provider">identity provider</a> first: the mapping is part of its
            settings.
          </p>
        </section>
      ) : props.mapping ? (
        <MappingTable view={props.view} mapping={props.mapping} names={names} />
      ) : null}
    </>
  );
}

function MappingTable(props: {
  view: ConsoleView;
  mapping: MappingSection;
  names: { value: string; label: string }[];
}) {
  const { mapping, view } = props;
  const last = mapping.rows.length - 1;
  return (
    <section aria-labelledby="mapping-heading">
      <h2 id="mapping-heading">Attribute mapping</h2>
      <p class="muted">
        The IdP attribute <code>{mapping.attributeField}</code> picks the template; rows are checked in order and the
        first match wins. Sign-in and sync use this table.
      </p>
      <table id="mapping">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Attribute value</th>
            <th scope="col">Template</th>
            <th scope="col">Order and removal</th>
          </tr>
        </thead>
        <tbody>
          {mapping.rows.map((row, index) => (
            <tr data-row={String(index)}>
              <td>{index + 1}</td>
              <td>
                <code>{row.value}</code>
              </td>
              <td>{row.template}</td>
              <td>
                <CsrfForm view={view} action="/admin/templates/mapping" class="inline">
                  <input type="hidden" name="index" value={String(index)} />
                  <button
                    type="submit"
                    name="op"
                    value="up"
                    class="secondary"
                    disabled={index === 0}
                    aria-label={`Move row ${index + 1} up`}
                  >
                    Move up
                  </button>{' '}
                  <button
                    type="submit"
                    name="op"
                    value="down"
                    class="secondary"
                    disabled={index === last}
                    aria-label={`Move row ${index + 1} down`}
                  >
                    Move down
                  </button>{' '}
                  <button type="submit" name="op" value="remove" class="danger" aria-label={`Remove row ${index + 1}`}>
                    Remove
                  </button>
                </CsrfForm>
              </td>
            </tr>
          ))}
          {mapping.rows.length === 0 ? (
            <tr>
              <td colspan={4}>No mappings yet.</td>
            </tr>
          ) : null}
        </tbody>
      </table>
      <CsrfForm view={view} action="/admin/templates/mapping" class="toolbar" id="mapping-add">
        <input type="hidden" name="op" value="add" />
        <Field name="value" label="Attribute value" required />
        <Select name="template" label="Template" value={props.names[0]?.value ?? ''} options={props.names} />
        <button type="submit">Add mapping</button>
      </CsrfForm>
      <CsrfForm view={view} action="/admin/templates/mapping" class="toolbar" id="mapping-default">
        <input type="hidden" name="op" value="default" />
        <div class="field">
          <label for="f-default-template">Default template (new mailboxes without a match)</label>
          <select id="f-default-template" name="template">
            {[{ value: '', label: '(none: no mailbox is created)' }, ...props.names].map((option) => (
              <option value={option.value} selected={option.value === mapping.defaultTemplate}>
                {option.label}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" class="secondary">
          Set default
        </button>
      </CsrfForm>

      <h3 id="preview-heading">Preview</h3>
      <form
        method="get"
        action="/admin/templates"
        class="toolbar"
        id="mapping-preview"
        aria-labelledby="preview-heading"
      >
        <div class="field">
          <label for="p-value">Attribute value</label>
          <input type="search" id="p-value" name="value" value={mapping.preview?.input} />
        </div>
        <div class="field">
          <label for="p-sample-user">or a sample IdP user (email)</label>
          <input type="search" id="p-sample-user" name="sample_user" value={mapping.preview?.sampleUser} />
        </div>
        <button type="submit">Preview</button>
      </form>
      {mapping.preview ? <PreviewResult preview={mapping.preview} /> : null}

      <h3>Effect on existing mailboxes</h3>
      <CsrfForm view={view} action="/admin/templates/dry-run" class="toolbar" id="mapping-dry-run">
        <button type="submit" class="secondary">
          Count the mailboxes this mapping would change (sync dry run)
        </button>
      </CsrfForm>
      {mapping.dryRun ? (
        'problem' in mapping.dryRun ? (
          <p class="error" role="status" id="dry-run-result">
            {mapping.dryRun.problem}
          </p>
        ) : (
          <p class="notice" role="status" id="dry-run-result">
            This mapping would change {mapping.dryRun.changed} mailbox{mapping.dryRun.changed === 1 ? '' : 'es'} (
            {mapping.dryRun.updated} updated, {mapping.dryRun.created} created):{' '}
            <a href={`/admin/sync/runs/${mapping.dryRun.runId}`}>dry run #{mapping.dryRun.runId}</a>.
          </p>
        )
      ) : null}
    </section>
  );
}

function PreviewResult(props: { preview: NonNullable<MappingSection['preview']> }) {
  const { result, note } = props.preview;
  return (
    <div class="notice" role="status" id="preview-result">
      {note ? <p>{note}</p> : null}
      {result ? (
        <>
          <p>
            <strong id="preview-template">
              {result.create.template ? `Template: ${result.create.template}` : 'No template'}
            </strong>{' '}
            ({result.create.why === 'mapped' ? 'mapped' : result.create.why === 'default' ? 'default' : 'no match'})
          </p>
          <ul>
            {result.why.map((line) => (
              <li>{line}</li>
            ))}
          </ul>
        </>
      ) : null}
    </div>
  );
}

export function TemplateEditor(props: {
  view: ConsoleView;
  template: MailboxTemplate;
  canEdit: boolean;
  protocolKeys: readonly string[];
  aclKeys: readonly string[];
  errors?: Record<string, string> | undefined;
}) {
  const { template } = props;
  const attrs = template.attributes;
  const body = (
    <>
      <Field name="name" label="Name" value={template.name} required readonly={!props.canEdit} />
      <Field name="quota_mib" label="Quota (MiB, 0 = unlimited)" type="number" min={0} value={quotaMib(template)} />
      <Select
        name="active"
        label="State of new mailboxes"
        value={String(attrs.active ?? '1')}
        options={Object.entries(ACTIVE_LABELS).map(([value, label]) => ({ value, label }))}
      />
      <fieldset>
        <legend>Protocols and flags</legend>
        {props.protocolKeys.map((key) => (
          <Checkbox name={key} label={key} checked={on(attrs[key])} />
        ))}
      </fieldset>
      <fieldset>
        <legend>ACLs</legend>
        {props.aclKeys.map((key) => (
          <Checkbox name={key} label={key.replace(/^acl_/, '')} checked={on(attrs[key])} />
        ))}
      </fieldset>
    </>
  );
  return (
    <>
      <FormErrors errors={props.errors} />
      <p>
        <a href="/admin/templates">All templates</a>
      </p>
      {props.canEdit ? (
        <>
          <CsrfForm view={props.view} action={`/admin/templates/${template.id}`} id="template-form">
            {body}
            <div class="actions">
              <button type="submit">Save template</button>
            </div>
          </CsrfForm>
          <CsrfForm view={props.view} action={`/admin/templates/${template.id}/delete`} class="actions">
            <button type="submit" class="danger">
              Delete template
            </button>
          </CsrfForm>
        </>
      ) : (
        <fieldset disabled>{body}</fieldset>
      )}
    </>
  );
}
