// Loading the public widget settings (GET /api/v1/public/projects/:id/settings) with retry and
// exponential backoff, and turning whatever came back into usable values.
//
// The server answers a refusal (unknown project 404, origin not whitelisted 403, bad id 400)
// without CORS headers, so in the browser a refusal and an unreachable server both surface as
// the same opaque fetch failure. The widget tells them apart with a second, `no-cors` request:
// if that one gets any answer the server is up and has refused this page, which is final (one
// console warning, nothing on the page, no retries); if it fails too the server is unreachable
// and the widget retries with backoff (1 s doubling up to 30 s, with jitter, 8 attempts).
import type { Settings } from './types';
import { sleep, warn } from './util';

const ATTEMPTS = 8;

export const DEFAULTS: Settings = {
  theme: 'light',
  headerText: 'Chat with us',
  position: 'bottom-right',
  primaryColor: '#4f46e5',
  welcomeMessage: 'Hi! How can we help?',
  agentDisplayName: 'Support',
  offlineMessage: "We're away right now. Leave a message and we'll get back to you.",
  autoOpenDelay: 0,
  companyLogoUrl: null,
};

const str = (v: unknown, def: string): string => (typeof v === 'string' && v.trim() ? v.trim() : def);

// Settings with every field checked: unknown enum values, colours the browser does not accept,
// logos that are not http(s) URLs fall back to the defaults.
export function normalise(raw: unknown): Settings {
  const r = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const d = DEFAULTS;
  const color = str(r.primaryColor, d.primaryColor);
  let logo: string | null = null;
  if (typeof r.companyLogoUrl === 'string') {
    try {
      const u = new URL(r.companyLogoUrl);
      if (u.protocol === 'https:' || u.protocol === 'http:') logo = u.href;
    } catch {
      logo = null;
    }
  }
  const delay = Number(r.autoOpenDelay);
  return {
    theme: r.theme === 'dark' ? 'dark' : 'light',
    headerText: str(r.headerText, d.headerText),
    position: r.position === 'bottom-left' ? 'bottom-left' : 'bottom-right',
    primaryColor: window.CSS && CSS.supports('color', color) ? color : d.primaryColor,
    welcomeMessage: str(r.welcomeMessage, d.welcomeMessage),
    agentDisplayName: str(r.agentDisplayName, d.agentDisplayName),
    offlineMessage: str(r.offlineMessage, d.offlineMessage),
    autoOpenDelay: delay > 0 && delay < 86400 ? delay : 0,
    companyLogoUrl: logo,
  };
}

const refused = (what: string, pid: string): null => {
  warn(`chat disabled: ${what} project ${pid} for ${location.origin} (check data-project-id and the project's whitelisted domains)`);
  return null;
};

// The settings, or null after the one warning when the server refuses this page or stays
// unreachable.
export async function loadSettings(url: string, pid: string): Promise<Settings | null> {
  for (let attempt = 1; ; attempt++) {
    let res: Response | null = null;
    try {
      res = await fetch(url, { credentials: 'omit', cache: 'no-store' });
    } catch {
      res = null;
    }
    if (res && res.ok) {
      try {
        return normalise(await res.json());
      } catch {
        res = null; // a garbled answer: retry like a network error
      }
    } else if (res && res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
      return refused(`the server answered ${res.status} to`, pid);
    } else if (!res) {
      const up = await fetch(url, { mode: 'no-cors', credentials: 'omit', cache: 'no-store' }).then(
        () => true,
        () => false,
      );
      if (up) return refused('the server refused', pid);
    }
    if (attempt >= ATTEMPTS) {
      warn(`chat disabled: cannot reach ${new URL(url).origin}`);
      return null;
    }
    await sleep(Math.min(30000, 1000 * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2));
  }
}
