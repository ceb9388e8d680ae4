// The admin console's frame and form parts: one layout (skip link, navigation, sign-out), a form
// that always carries the session's CSRF token, and labelled fields. Plain HTML and CSS served
// inline; no scripts are needed for anything, so every page works by keyboard alone.
import type { Child } from 'hono/jsx';
import type { ConsoleView, NavEntry } from '../console/context.js';
import { css as baseCss } from './layout.js';

const consoleCss = `
main { max-width: 72rem; }
.skip { position: absolute; left: -999px; top: 0; background: var(--card); padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: 1rem; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.console-header { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; gap: 1rem; max-width: 72rem; margin: 1rem auto 0; padding: 0 1rem; }
.console-header .brand { font-weight: 700; font-size: 1.1rem; color: var(--fg); text-decoration: none; }
.console-header form { display: inline; }
.console-nav { max-width: 72rem; margin: .75rem auto 0; padding: 0 1rem; }
.console-nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem; border-bottom: 1px solid var(--line); }
.console-nav a { display: block; padding: .45rem .8rem; text-decoration: none; color: var(--accent); border-radius: 6px 6px 0 0; }
.console-nav a[aria-current=page] { background: var(--card); border: 1px solid var(--line); border-bottom-color: var(--card); margin-bottom: -1px; color: var(--fg); font-weight: 600; }
input[type=number], input[type=search], select, textarea { padding: .45rem .6rem; font: inherit; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
input[type=number] { width: 12rem; }
.field { margin-bottom: .5rem; }
.field .hint { color: var(--muted); font-size: .9rem; margin: .15rem 0 0; }
.field .field-error { color: var(--danger); font-size: .9rem; margin: .15rem 0 0; }
.check { display: flex; gap: .4rem; align-items: center; font-weight: normal; margin: .4rem 0; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin-top: 1rem; }
.inline { display: inline; }
.notice { border-left: 4px solid var(--accent); padding: .5rem .75rem; background: var(--card); margin-bottom: 1rem; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .85rem; border: 1px solid var(--line); }
.badge.off { color: var(--danger); border-color: var(--danger); }
.toolbar { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; justify-content: space-between; margin-bottom: 1rem; }
.toolbar form { display: flex; gap: .5rem; align-items: end; }
.toolbar label { margin: 0 0 .25rem; }
.pager { display: flex; gap: 1rem; margin-top: 1rem; }
td.num, th.num { text-align: right; }
`;

export function ConsoleLayout(props: {
  view: ConsoleView;
  title: string;
  /** The navigation entry this page belongs to (its href), marked aria-current. */
  section: string;
  nav: readonly NavEntry[];
  notice?: string | undefined;
  children?: Child;
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {/* See layout.tsx: same-origin referrers keep the Origin of form posts for the CSRF check. */}
        <meta name="referrer" content="same-origin" />
        <link rel="icon" href="data:," />
        <title>{props.title} · postern admin</title>
        <style>{baseCss + consoleCss}</style>
      </head>
      <body class="console">
        <a class="skip" href="#content">
          Skip to content
        </a>
        <header class="console-header">
          <a class="brand" href="/admin">
            postern admin
          </a>
          <span>
            <span class="muted" id="console-user">
              {props.view.username} ({props.view.actor.role === 'superadmin' ? 'superadmin' : 'domain admin'})
            </span>{' '}
            <CsrfForm view={props.view} action="/admin/logout" class="inline">
              <button type="submit" class="secondary" id="sign-out">
                Sign out
              </button>
            </CsrfForm>
          </span>
        </header>
        <nav class="console-nav" aria-label="Console">
          <ul>
            {props.nav.map((entry) => (
              <li>
                <a href={entry.href} aria-current={entry.href === props.section ? 'page' : undefined}>
                  {entry.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="content" tabindex={-1}>
          <h1>{props.title}</h1>
          {props.notice ? (
            <div class="notice" role="status" id="notice">
              {props.notice}
            </div>
          ) : null}
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** A POST form that carries the session's CSRF token; the console refuses any post without it. */
export function CsrfForm(props: { view: ConsoleView; action: string; class?: string; id?: string; children?: Child }) {
  return (
    <form method="post" action={props.action} class={props.class} id={props.id}>
      <input type="hidden" name="csrf" value={props.view.csrf} />
      {props.children}
    </form>
  );
}

/** Problems of a whole form (role="alert" so screen readers announce it). */
export function FormErrors(props: { errors?: Record<string, string> | undefined }) {
  const messages = Object.values(props.errors ?? {});
  return messages.length ? (
    <div class="error" role="alert">
      <p>Please correct the following:</p>
      <ul>
        {messages.map((message) => (
          <li>{message}</li>
        ))}
      </ul>
    </div>
  ) : null;
}

/** A labelled input; its error and hint are tied to it with aria-describedby. */
export function Field(props: {
  name: string;
  label: string;
  value?: string | number | undefined;
  type?: 'text' | 'email' | 'password' | 'number' | 'search';
  required?: boolean;
  hint?: string;
  error?: string | undefined;
  autocomplete?: string;
  min?: number;
  readonly?: boolean;
}) {
  const id = `f-${props.name}`;
  const described = [props.hint ? `${id}-hint` : '', props.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <input
        type={props.type ?? 'text'}
        id={id}
        name={props.name}
        value={props.value === undefined ? undefined : String(props.value)}
        required={props.required}
        autocomplete={props.autocomplete}
        min={props.min}
        readonly={props.readonly}
        aria-invalid={props.error ? 'true' : undefined}
        aria-describedby={described || undefined}
      />
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
      {props.error ? (
        <p class="field-error" id={`${id}-error`}>
          {props.error}
        </p>
      ) : null}
    </div>
  );
}

/** A labelled checkbox; unchecked boxes send nothing, so readers treat absence as "off". */
export function Checkbox(props: {
  name: string;
  label: string;
  checked: boolean;
  value?: string;
  /** Needed when two forms of one page have a field of the same name (ids must be unique). */
  id?: string;
}) {
  const id = props.id ?? `f-${props.name}`;
  return (
    <label class="check" for={id}>
      <input type="checkbox" id={id} name={props.name} value={props.value ?? '1'} checked={props.checked} />
      {props.label}
    </label>
  );
}

/** A labelled select. */
export function Select(props: {
  name: string;
  label: string;
  value: string;
  options: readonly { value: string; label: string }[];
  error?: string | undefined;
}) {
  const id = `f-${props.name}`;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <select id={id} name={props.name} aria-invalid={props.error ? 'true' : undefined}>
        {props.options.map((option) => (
          <option value={option.value} selected={option.value === props.value}>
            {option.label}
          </option>
        ))}
      </select>
      {props.error ? <p class="field-error">{props.error}</p> : null}
    </div>
  );
}
