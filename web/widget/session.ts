// Where the visitor is and has been: navigation tracking for `updateContext` (page loads and
// single-page-app navigation through history.pushState/replaceState, popstate and hashchange)
// and the `sessionMetadata` sent with a conversation's first message (referrer, landing page,
// the most recent URLs of this browsing session, language, time zone). The session record
// lives in sessionStorage, so it spans the pages of one tab's visit and ends with the tab.
import { load, save } from './util';

interface Session {
  r: string; // referrer at landing
  l: string; // landing page
  u: string[]; // URL history, oldest first
}

const KEY = 'parley:session';
const MAX_URLS = 20;
const MAX_URL = 500; // characters kept of each URL in the metadata (20 x 500 fits in 16 KiB)
export const MAX_CONTEXT_URL = 2048; // `updateContext.currentUrl` limit (protocol-decisions.md)

let session: Session;

function remember(url: string): void {
  const u = url.slice(0, MAX_URL);
  if (session.u[session.u.length - 1] !== u) {
    session.u.push(u);
    if (session.u.length > MAX_URLS) session.u.splice(0, session.u.length - MAX_URLS);
    save(KEY, session, 'sessionStorage');
  }
}

// Starts tracking; onChange(url) runs after every change of location.href.
export function trackNavigation(onChange: (url: string) => void): void {
  const s = load<Session>(KEY, 'sessionStorage');
  session =
    s && typeof s.l === 'string' && Array.isArray(s.u)
      ? s
      : { r: document.referrer.slice(0, MAX_URL), l: location.href.slice(0, MAX_URL), u: [] };
  let last = location.href;
  remember(last);
  const check = (): void => {
    if (location.href !== last) {
      last = location.href;
      remember(last);
      onChange(last);
    }
  };
  // Wrap the two history methods (keeping the page's own wrappers and return values): there is
  // no event for them, and the Navigation API is not in every browser yet.
  for (const m of ['pushState', 'replaceState'] as const) {
    const orig = history[m];
    try {
      history[m] = function (this: History, ...args: Parameters<History['pushState']>) {
        const r = orig.apply(this, args);
        check();
        return r;
      };
    } catch {
      // a page that froze History: popstate and hashchange still work
    }
  }
  addEventListener('popstate', check);
  addEventListener('hashchange', check);
}

// The metadata of a new conversation (well under the server's 16 KiB).
export function sessionMetadata(): Record<string, unknown> {
  let tz = '';
  try {
    tz = Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  } catch {
    tz = '';
  }
  return {
    referrer: session.r || null,
    landingPage: session.l,
    currentUrl: location.href.slice(0, MAX_URL),
    urlHistory: session.u.slice(),
    language: navigator.language,
    timeZone: tz,
    userAgent: navigator.userAgent.slice(0, 300),
  };
}
