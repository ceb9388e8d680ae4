// Rendering a console page: the layout with the navigation the signed-in admin's role may see,
// and the console's error page (404s and refusals inside the frame, faults without detail).
import type { Context } from 'hono';
import type { Child } from 'hono/jsx';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorPage } from '../render-error.js';
import { ConsoleLayout } from '../views/console-layout.js';
import { MessagePage } from '../views/layout.js';
import { navFor } from './context.js';

export interface PageOptions {
  title: string;
  /** The href of the navigation entry this page belongs to. */
  section: string;
  notice?: string | undefined;
  status?: ContentfulStatusCode;
}

export function renderPage(c: Context, options: PageOptions, body: Child) {
  const view = c.get('console');
  return c.html(
    <ConsoleLayout
      view={view}
      nav={navFor(view.actor)}
      title={options.title}
      section={options.section}
      notice={options.notice}
    >
      {body}
    </ConsoleLayout>,
    options.status ?? 200,
  );
}

/** The console's error page (render-error.ts logs first): refusals say what was wrong, faults do not. */
export const consoleErrorPage: ErrorPage = (c, appError) => {
  const status = appError.status as ContentfulStatusCode;
  const title = appError.code === 'not_found' ? 'Not found' : appError.expose ? 'Request refused' : 'Unavailable';
  const message = appError.expose
    ? appError.message
    : 'The service is temporarily unavailable. Please try again in a moment.';
  if (!c.get('console'))
    return c.html(MessagePage({ title, message, back: { href: '/admin', label: 'Back' } }), status);
  return renderPage(
    c,
    { title, section: '', status },
    <section role="alert" id="console-error">
      <p>{message}</p>
      <p>
        <a class="button secondary" href="/admin">
          Back to the dashboard
        </a>
      </p>
    </section>,
  );
};
