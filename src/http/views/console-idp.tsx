// The identity provider page: every key of the provider type in one form (the client secret is
// write-only: the field is always empty, and empty keeps the stored one), and the test
// connection's steps, each with its result.
import type { ConsoleView } from '../console/context.js';
import { Checkbox, CsrfForm, Field, FormErrors, Select } from './console-layout.js';

export type IdpType = 'keycloak' | 'generic-oidc';

interface FieldSpec {
  key: string;
  label: string;
  kind: 'text' | 'secret' | 'bool' | 'number' | 'auth_method';
  hint?: string;
}

const COMMON: FieldSpec[] = [
  { key: 'client_id', label: 'Client ID', kind: 'text' },
  {
    key: 'client_secret',
    label: 'Client secret',
    kind: 'secret',
    hint: 'Write-only: leave empty to keep the stored secret.',
  },
  {
    key: 'redirect_url',
    label: 'Redirect URL',
    kind: 'text',
    hint: 'postern’s /login/sso/callback as the IdP knows it.',
  },
  {
    key: 'attribute_field',
    label: 'Template attribute',
    kind: 'text',
    hint: 'The user attribute (claim) whose value picks the template; mailcow reads mailcow_template.',
  },
  {
    key: 'postern_token_auth_method',
    label: 'How the client secret is sent',
    kind: 'auth_method',
  },
  { key: 'login_provisioning', label: 'Create a mailbox at the first sign-in', kind: 'bool' },
  { key: 'ignore_ssl_error', label: 'Accept an untrusted TLS certificate (lab providers only)', kind: 'bool' },
  {
    key: 'postern_emails_always_verified',
    label: 'The provider verifies every email (accept identities without email_verified)',
    kind: 'bool',
  },
];

/** Sync keys live on the Sync page too; both forms save the same settings. */
export const SYNC_FIELDS: FieldSpec[] = [
  { key: 'import_users', label: 'Import users (create mailboxes for new IdP users)', kind: 'bool' },
  { key: 'periodic_sync', label: 'Periodic full sync (templates and names of existing mailboxes)', kind: 'bool' },
  { key: 'sync_interval', label: 'Sync interval (minutes)', kind: 'number' },
  {
    key: 'postern_deprovision',
    label: 'Deactivate mailboxes whose IdP user is disabled or gone',
    kind: 'bool',
  },
  {
    key: 'postern_max_drop_percent',
    label: 'Drop guard (%)',
    kind: 'number',
    hint: 'A run that would remove more than this share of IdP users applies nothing.',
  },
];

export const FIELDS: Record<IdpType, FieldSpec[]> = {
  keycloak: [
    { key: 'server_url', label: 'Server URL', kind: 'text', hint: 'e.g. https://sso.example.org (Keycloak ≥ 17).' },
    { key: 'realm', label: 'Realm', kind: 'text' },
    { key: 'version', label: 'Keycloak version', kind: 'text', hint: 'e.g. 26.0.0' },
    ...COMMON,
    { key: 'mailpassword_flow', label: 'Mail password flow (check mail passwords against Keycloak)', kind: 'bool' },
    ...SYNC_FIELDS,
  ],
  'generic-oidc': [
    {
      key: 'postern_issuer_url',
      label: 'Issuer URL (discovery)',
      kind: 'text',
      hint: 'With an issuer, the three URLs below are optional.',
    },
    { key: 'authorize_url', label: 'Authorization URL', kind: 'text' },
    { key: 'token_url', label: 'Token URL', kind: 'text' },
    { key: 'userinfo_url', label: 'Userinfo URL', kind: 'text' },
    { key: 'client_scopes', label: 'Scopes', kind: 'text' },
    ...COMMON,
  ],
};

export interface StepView {
  step: string;
  ok: boolean;
  skipped?: true;
  detail: string;
}

const STEP_LABELS: Record<string, string> = {
  discovery: 'Discovery and issuer match',
  endpoints: 'Configured endpoints',
  jwks: 'Signing keys (JWKS)',
  client_credentials: 'Client credentials',
  client_authentication: 'Client authentication',
  admin_api: 'Admin API (view-users)',
  sample_user: 'Sample user',
  attribute_mapping: 'Attribute and template',
};

export function IdpPage(props: {
  view: ConsoleView;
  type: IdpType;
  values: Record<string, unknown>;
  state: 'none' | 'invalid' | 'ok';
  problems: readonly string[];
  secretSet: boolean;
  errors?: Record<string, string> | undefined;
  sampleUser?: string | undefined;
  report?: { ok: boolean; steps: readonly StepView[] } | undefined;
}) {
  const { values, errors } = props;
  return (
    <>
      {props.state === 'none' ? (
        <p class="notice">No identity provider is configured yet: fill in the form and save.</p>
      ) : null}
      {props.state === 'invalid' && props.problems.length ? (
        <div class="error" role="status" id="idp-problems">
          <p>The stored settings have problems:</p>
          <ul>
            {props.problems.map((problem) => (
              <li>{problem}</li>
            ))}
          </ul>
        </div>
      ) : null}
      {props.report ? <ConnectionReport report={props.report} /> : null}
      <form method="get" action="/admin/identity-provider" class="toolbar" aria-label="Provider type">
        <Select
          name="type"
          label="Provider type"
          value={props.type}
          options={[
            { value: 'keycloak', label: 'Keycloak' },
            { value: 'generic-oidc', label: 'Generic OIDC' },
          ]}
        />
        <button type="submit" class="secondary">
          Switch form
        </button>
      </form>
      <FormErrors errors={errors} />
      <CsrfForm view={props.view} action="/admin/identity-provider" id="idp-form">
        <input type="hidden" name="authsource" value={props.type} />
        {FIELDS[props.type].map((spec) => (
          <SettingField spec={spec} values={values} error={errors?.[spec.key]} secretSet={props.secretSet} />
        ))}
        <fieldset>
          <legend>Test connection</legend>
          <Field
            name="sample_user"
            label="Sample user (email or username, optional)"
            value={props.sampleUser}
            hint="Keycloak: looked up through the admin API; the report shows its attribute value and template."
          />
        </fieldset>
        <div class="actions">
          <button type="submit" id="idp-save">
            Save
          </button>
          <button type="submit" class="secondary" formaction="/admin/identity-provider/test" id="idp-test">
            Test connection (unsaved settings)
          </button>
        </div>
      </CsrfForm>
    </>
  );
}

export function SettingField(props: {
  spec: FieldSpec;
  values: Record<string, unknown>;
  error?: string | undefined;
  secretSet?: boolean;
}) {
  const { spec, values } = props;
  const value = values[spec.key];
  switch (spec.kind) {
    case 'bool':
      return <Checkbox name={spec.key} label={spec.label} checked={value === true} />;
    case 'secret':
      return (
        <Field
          name={spec.key}
          label={`${spec.label}${props.secretSet ? ' (one is stored)' : ''}`}
          type="password"
          autocomplete="new-password"
          hint={spec.hint ?? ''}
          error={props.error}
        />
      );
    case 'auth_method':
      return (
        <Select
          name={spec.key}
          label={spec.label}
          value={typeof value === 'string' ? value : 'client_secret_post'}
          options={[
            { value: 'client_secret_post', label: 'In the form body (client_secret_post, mailcow’s way)' },
            { value: 'client_secret_basic', label: 'HTTP Basic (client_secret_basic)' },
          ]}
          error={props.error}
        />
      );
    case 'number':
      return (
        <Field
          name={spec.key}
          label={spec.label}
          type="number"
          min={0}
          value={value === undefined ? undefined : String(value)}
          {...(spec.hint ? { hint: spec.hint } : {})}
          error={props.error}
        />
      );
    default:
      return (
        <Field
          name={spec.key}
          label={spec.label}
          value={value === undefined || value === null ? undefined : String(value)}
          {...(spec.hint ? { hint: spec.hint } : {})}
          error={props.error}
        />
      );
  }
}

function ConnectionReport(props: { report: { ok: boolean; steps: readonly StepView[] } }) {
  return (
    <section aria-labelledby="report-heading" id="connection-report" role="status">
      <h2 id="report-heading">Test connection: {props.report.ok ? 'every step passed' : 'a step failed'}</h2>
      <ol class="steps">
        {props.report.steps.map((step) => (
          <li data-step={step.step} data-ok={String(step.ok)}>
            <strong>{STEP_LABELS[step.step] ?? step.step}</strong>{' '}
            <span class={step.ok ? 'badge' : 'badge off'}>{step.skipped ? 'skipped' : step.ok ? 'ok' : 'failed'}</span>
            <br />
            <span class="muted">{step.detail}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
