// Entry point of /widget.js, embedded on a customer's page with
//   <script src="https://chat.example.com/widget.js" data-project-id="ID" async></script>
// It finds its own <script> tag, takes the server's address from its src (the folder that holds
// widget.js: the API and /socket.io/ live beside it), loads the public settings, and only then
// shows the launcher and connects. The one global it adds is window.Parley:
//   Parley.open(), Parley.close(), Parley.toggle(),
//   Parley.onUnread(cb) → unsubscribe function; cb(count) now and on every change.
// Optional attributes: data-visitor-uid and data-user-hash for sites that use identity
// verification (PROTOCOL.md section 7); without them the visitor uid is a random UUID kept in
// localStorage (`parley:visitor_uid`), shared by the tabs of one browser.
import type { Chat } from './chat';
import { startChat } from './chat';
import { trackNavigation } from './session';
import { loadSettings } from './settings';
import type { View } from './ui';
import { mountUI } from './ui';
import { load, save, uuid, warn } from './util';

interface ParleyApi {
  open(): void;
  close(): void;
  toggle(): void;
  onUnread(cb: (count: number) => void): () => void;
}

const UID_RE = /^[A-Za-z0-9_-]{8,64}$/;
const w = window as unknown as { Parley?: ParleyApi };

async function boot(script: HTMLScriptElement | null): Promise<void> {
  let view: View | undefined;
  let wanted: boolean | undefined; // open()/close() called before the window existed
  let unread = 0;
  const subs = new Set<(n: number) => void>();
  const tell = (cb: (n: number) => void): void => {
    try {
      cb(unread);
    } catch (e) {
      console.error(e);
    }
  };
  w.Parley = Object.freeze({
    open: () => (view ? view.open() : (wanted = true)),
    close: () => (view ? view.close() : (wanted = false)),
    toggle: () => (view ? view.toggle() : (wanted = !wanted)),
    onUnread(cb: (count: number) => void) {
      if (typeof cb === 'function') {
        subs.add(cb);
        tell(cb);
      }
      return () => void subs.delete(cb);
    },
  });

  if (!script || !script.src) return warn('cannot find its <script> tag');
  const pid = script.getAttribute('data-project-id') || '';
  if (!/^[1-9]\d{0,15}$/.test(pid)) return warn(`data-project-id must be a project number, not "${pid}"`);
  const src = new URL(script.src, location.href);
  const dir = src.pathname.slice(0, src.pathname.lastIndexOf('/') + 1);
  const settings = await loadSettings(`${src.origin}${dir}api/v1/public/projects/${pid}/settings`, pid);
  if (!settings) return;
  if (!document.body) await new Promise((r) => document.addEventListener('DOMContentLoaded', r, { once: true }));

  const given = script.getAttribute('data-visitor-uid');
  let uid = given && UID_RE.test(given) ? given : load<string>('parley:visitor_uid');
  if (typeof uid !== 'string' || !UID_RE.test(uid)) {
    uid = uuid();
    save('parley:visitor_uid', uid);
  }

  let chat: Chat | undefined;
  const v = mountUI(settings, () => chat as Chat);
  const show = v.unread;
  v.unread = (n: number) => {
    show(n);
    unread = n;
    subs.forEach(tell);
  };
  chat = startChat(
    {
      base: src.origin,
      path: `${dir}socket.io/`,
      pid: Number(pid),
      uid,
      userHash: script.getAttribute('data-user-hash') || undefined,
      agentName: settings.agentDisplayName,
    },
    v,
  );
  const c = chat;
  trackNavigation(() => c.navigated());
  view = v;
  v.restore();
  if (wanted !== undefined) wanted ? v.open() : v.close();
}

// Read synchronously: currentScript is only set while this script first runs.
const me = (document.currentScript ||
  document.querySelector('script[data-project-id][src*="widget"]')) as HTMLScriptElement | null;
if (!w.Parley) boot(me).catch((e) => warn(`failed to start: ${e}`));
