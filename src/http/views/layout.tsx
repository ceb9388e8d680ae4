// The page frame of every browser page postern serves, and the one refusal page. Plain HTML
// with a little inline CSS; no scripts.
import type { Child } from 'hono/jsx';

export const css = `
:root { color-scheme: light dark; --fg: #1d232b; --muted: #5b6672; --bg: #f5f6f8; --card: #fff; --line: #d9dde3; --accent: #1f5fbf; --danger: #b3261e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ed; --muted: #a3adb8; --bg: #15181c; --card: #1e2227; --line: #353b43; --accent: #7aa7ff; --danger: #ff8a80; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
section, .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1.25rem; margin-bottom: 1.25rem; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
input[type=text], input[type=email], input[type=password] { width: 100%; padding: .5rem .6rem; font: inherit; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: .75rem 0; }
fieldset label { display: inline-flex; gap: .35rem; font-weight: normal; margin: .25rem 1rem .25rem 0; }
button, .button { display: inline-block; padding: .5rem 1rem; font: inherit; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; cursor: pointer; }
.button.secondary, button.secondary { background: transparent; color: var(--accent); }
button.danger { background: transparent; border-color: var(--danger); color: var(--danger); padding: .25rem .6rem; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .4rem .3rem; border-bottom: 1px solid var(--line); vertical-align: top; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
.muted { color: var(--muted); }
.error { border-left: 4px solid var(--danger); padding: .5rem .75rem; background: var(--card); margin-bottom: 1rem; }
.secret { font: 1.3rem/1.4 ui-monospace, monospace; letter-spacing: .05em; padding: .75rem; border: 1px dashed var(--accent); border-radius: 6px; display: inline-block; user-select: all; }
.topbar { display: flex; justify-content: space-between; align-items: center; gap: 1rem; margin-bottom: 1rem; }
.divider { text-align: center; color: var(--muted); margin: 1rem 0; }
`;

export function Layout(props: { title: string; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {/* The web app's secureHeaders sends Referrer-Policy: no-referrer, under which browsers send
            `Origin: null` with form POSTs; our CSRF check needs the real Origin of same-origin posts. */}
        <meta name="referrer" content="same-origin" />
        {/* No favicon: an empty one keeps browsers from asking for /favicon.ico (a 404 each page). */}
        <link rel="icon" href="data:," />
        <title>{props.title} · postern</title>
        <style>{css}</style>
      </head>
      <body>
        <main>{props.children}</main>
      </body>
    </html>
  );
}

/** A refusal or error the person can act on: what happened, and a way back. */
export function MessagePage(props: { title: string; message: string; back?: { href: string; label: string } }) {
  const back = props.back ?? { href: '/login', label: 'Back to sign-in' };
  return (
    <Layout title={props.title}>
      <section role="alert">
        <h1>{props.title}</h1>
        <p>{props.message}</p>
        <p>
          <a class="button secondary" href={back.href}>
            {back.label}
          </a>
        </p>
      </section>
    </Layout>
  );
}
