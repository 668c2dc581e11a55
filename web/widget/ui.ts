// The widget's DOM, all inside one open Shadow DOM on a <parley-widget> element: the launcher
// button with its unread badge, and the chat window (header with logo, title and close button,
// connection banner, message list, agent typing indicator, composer with a length counter).
// Every piece of user or server text is set with textContent (links are built as elements);
// nothing is ever parsed as HTML. Colours, theme and side come from the settings.
import css from './widget.css';
import type { Chat, ChatView } from './chat';
import type { Conn, Item, Settings } from './types';
import { MAX_CHARS } from './types';
import { attrs, chars, el, icon, load, save } from './util';

export interface View extends ChatView {
  open(byUser?: boolean): void;
  close(): void;
  toggle(): void;
  restore(): void;
}

const I_CHAT =
  'M12 3.5c-5 0-9 3.4-9 7.6 0 2.3 1.2 4.4 3.1 5.8L5.5 20.5l4-2.1c.8.2 1.6.3 2.5.3 5 0 9-3.4 9-7.6S17 3.5 12 3.5z';
const I_DOWN = 'M6 9.5l6 6 6-6';
const I_SEND = 'M12 19V5.5M6 11.5l6-6 6 6';
const URL_RE = /\bhttps?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]}]/g;

// Text colour readable on the primary colour (hex colours; others get white).
function onColor(c: string): string {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(c);
  if (!m) return '#fff';
  const h = m[1].length === 3 ? m[1].replace(/./g, '$&$&') : m[1];
  const n = parseInt(h, 16);
  const yiq = ((n >> 16) * 299 + ((n >> 8) & 255) * 587 + (n & 255) * 114) / 1000;
  return yiq > 160 ? '#111827' : '#fff';
}

const clock = (iso: string): string => {
  const d = new Date(iso);
  return isNaN(+d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
};

// Message text with http(s) URLs as links; everything else as plain text nodes.
function fill(b: HTMLElement, text: string): void {
  let i = 0;
  let m: RegExpExecArray | null;
  URL_RE.lastIndex = 0;
  while ((m = URL_RE.exec(text))) {
    b.append(text.slice(i, m.index));
    attrs(el('a', '', b, m[0]), { href: m[0], target: '_blank', rel: 'noopener noreferrer nofollow' });
    i = m.index + m[0].length;
  }
  b.append(text.slice(i));
}

export function mountUI(s: Settings, chat: () => Chat): View {
  const host = document.createElement('parley-widget');
  const root = host.attachShadow({ mode: 'open' });
  el('style', '', root, css);
  const pw = el('div', 'pw', root);
  pw.dataset.theme = s.theme;
  pw.dataset.side = s.position === 'bottom-left' ? 'left' : 'right';
  pw.style.setProperty('--p', s.primaryColor);
  pw.style.setProperty('--pt', onColor(s.primaryColor));

  // ---- window ----
  const win = el('div', 'win', pw);
  attrs(win, { id: 'pw-win', role: 'dialog', 'aria-label': s.headerText });
  const hd = el('div', 'hd', win);
  const initial = el('div', 'av', null, Array.from(s.agentDisplayName || s.headerText)[0].toUpperCase());
  if (s.companyLogoUrl) {
    const img = el('img', 'av logo', hd);
    attrs(img, { src: s.companyLogoUrl, alt: '', referrerpolicy: 'no-referrer' });
    img.onerror = () => img.replaceWith(initial);
  } else hd.appendChild(initial);
  const ht = el('div', 'ht', hd);
  el('div', 'ti', ht, s.headerText);
  el('div', 'su', ht, s.agentDisplayName);
  const x = el('button', 'x', hd);
  attrs(x, { type: 'button', 'aria-label': 'Close chat', title: 'Close' });
  icon(I_DOWN, x);

  const banner = el('div', 'bn', win);
  banner.setAttribute('role', 'status');

  const list = el('div', 'ls', win);
  attrs(list, { role: 'log', 'aria-label': 'Messages', tabindex: '0' });
  const welcome = el('div', 'm th f', list);
  el('div', 'wh', welcome, s.agentDisplayName);
  fill(el('div', 'b', welcome), s.welcomeMessage);

  const ty = el('div', 'ty', win);
  ty.setAttribute('role', 'status');
  const tyDots = el('div', 'dots', ty);
  for (let i = 0; i < 3; i++) el('i', '', tyDots);
  const tyText = el('span', '', ty);

  const form = el('form', 'cp', win);
  const ta = el('textarea', '', form);
  attrs(ta, { rows: '1', 'aria-label': 'Message', placeholder: 'Write a message…', 'aria-describedby': 'pw-count' });
  const send = el('button', 'sd', form);
  attrs(send, { type: 'submit', 'aria-label': 'Send message', title: 'Send' });
  send.disabled = true;
  icon(I_SEND, send);
  const count = el('div', 'ct', form);
  count.id = 'pw-count';

  // ---- launcher ----
  const ln = el('button', 'ln', pw);
  attrs(ln, { type: 'button', 'aria-controls': 'pw-win', 'aria-expanded': 'false' });
  icon(I_CHAT, ln).classList.add('i1');
  icon(I_DOWN, ln).classList.add('i2');
  const badge = el('span', 'bd', ln);
  attrs(badge, { 'aria-hidden': 'true' });
  badge.hidden = true;

  let isOpen = false;
  let unread = 0;
  const label = (): void => {
    const u = unread ? `, ${unread} unread message${unread > 1 ? 's' : ''}` : '';
    ln.setAttribute('aria-label', (isOpen ? 'Close chat' : 'Open chat') + u);
  };
  label();

  const nearEnd = (): boolean => list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const toEnd = (): void => {
    list.scrollTop = list.scrollHeight;
  };

  function setOpen(v: boolean, byUser: boolean): void {
    if (byUser) save('parley:touched', 1, 'sessionStorage');
    if (v === isOpen) return;
    isOpen = v;
    pw.classList.toggle('open', v);
    ln.setAttribute('aria-expanded', String(v));
    label();
    save('parley:open', v ? 1 : undefined, 'sessionStorage');
    if (v) {
      toEnd();
      chat().read();
      if (byUser) ta.focus({ preventScroll: true });
    } else {
      chat().stopTyping();
      if (root.activeElement) ln.focus();
    }
  }

  // ---- composer ----
  const autosize = (): void => {
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight + ta.offsetHeight - ta.clientHeight, 120)}px`;
  };
  const onInput = (): void => {
    const n = chars(ta.value.trim());
    count.textContent = n >= MAX_CHARS * 0.8 ? `${n} / ${MAX_CHARS}` : '';
    count.classList.toggle('over', n > MAX_CHARS);
    send.disabled = !n || n > MAX_CHARS;
  };
  const submit = (): void => {
    const text = ta.value.trim();
    if (!text || chars(text) > MAX_CHARS) return;
    ta.value = '';
    autosize();
    onInput();
    chat().send(text);
    toEnd();
  };
  ta.addEventListener('input', () => {
    autosize();
    onInput();
    if (ta.value.trim()) chat().typing();
  });
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  ta.addEventListener('blur', () => chat().stopTyping());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  x.addEventListener('click', () => setOpen(false, true));
  ln.addEventListener('click', () => setOpen(!isOpen, true));
  pw.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && isOpen) {
      e.stopPropagation();
      setOpen(false, true);
      ln.focus();
    }
  });

  // ---- messages ----
  const rows = new Map<string, HTMLElement>();

  function meta(r: HTMLElement, it: Item, last: boolean): void {
    const mt = r.lastChild as HTMLElement;
    mt.textContent = '';
    if (!it.mine) return;
    if (it.st === 'failed') {
      el('span', '', mt, it.err === 'rate_limited' ? 'Too many messages. Wait a moment.' : 'Not sent.');
      const b = el('button', 'rt', mt, 'Retry');
      attrs(b, { type: 'button', 'aria-label': 'Retry sending this message' });
      b.onclick = () => chat().retry(it.t as string);
    } else if (it.st === 'sending') mt.textContent = 'Sending…';
    else if (last) mt.textContent = `${it.st === 'read' ? 'Seen' : 'Sent'} · ${clock(it.at)}`;
  }

  function render(items: Item[]): void {
    const keep = new Set<string>();
    let at = welcome.nextSibling;
    let added = false;
    const end = nearEnd();
    let lastMine = -1;
    items.forEach((it, i) => it.mine && it.st !== 'failed' && it.st !== 'sending' && (lastMine = i));
    items.forEach((it, i) => {
      keep.add(it.k);
      let r = rows.get(it.k);
      if (!r) {
        r = el('div', `m ${it.mine ? 'me' : 'th'}`);
        el('div', 'wh', r, s.agentDisplayName);
        const b = el('div', 'b', r);
        fill(b, it.text);
        b.title = clock(it.at);
        el('div', 'mt', r);
        rows.set(it.k, r);
        added = true;
      }
      const first = i ? items[i - 1].mine !== it.mine : it.mine;
      const sig = `${first}${it.st}${i === lastMine}${it.err}`;
      if (r.dataset.s !== sig) {
        r.dataset.s = sig;
        r.classList.toggle('f', first);
        r.classList.toggle('sending', it.st === 'sending');
        r.classList.toggle('failed', it.st === 'failed');
        meta(r, it, i === lastMine);
      }
      if (r !== at) list.insertBefore(r, at);
      else at = at.nextSibling;
    });
    for (const [k, r] of rows) {
      if (!keep.has(k)) {
        r.remove();
        rows.delete(k);
      }
    }
    if (added && (end || items[items.length - 1]?.mine)) toEnd();
  }

  // ---- connection state and typing ----
  let offlineTimer: ReturnType<typeof setTimeout> | undefined;
  function conn(c: Conn): void {
    clearTimeout(offlineTimer);
    const down = c === 'reconnecting' || c === 'offline';
    banner.textContent = c === 'reconnecting' ? 'Reconnecting…' : c === 'offline' ? 'Chat is unavailable right now.' : '';
    pw.classList.toggle('down', down);
    ta.disabled = c === 'offline';
    // A long outage: tell the visitor that messages are kept and will be answered.
    if (c === 'reconnecting') offlineTimer = setTimeout(() => (banner.textContent = s.offlineMessage), 20000);
  }

  let typingTimer: ReturnType<typeof setTimeout> | undefined;
  function typing(name: string | null): void {
    clearTimeout(typingTimer);
    const end = nearEnd();
    tyText.textContent = name ? `${name} is typing…` : '';
    pw.classList.toggle('typing', !!name);
    if (name) typingTimer = setTimeout(() => typing(null), 10000);
    if (end) toEnd();
  }

  const view: View = {
    render,
    conn,
    typing,
    unread(n: number): void {
      unread = n;
      badge.textContent = n > 9 ? '9+' : String(n);
      badge.hidden = !n;
      label();
    },
    visible: () => isOpen && document.visibilityState === 'visible',
    open: (byUser = true) => setOpen(true, byUser),
    close: () => setOpen(false, true),
    toggle: () => setOpen(!isOpen, true),
    // Reopens the window if it was open before a reload in this tab; else the settings'
    // auto-open, once per browsing session and only if the visitor has not opened or closed it.
    restore(): void {
      const touched = (): unknown => load('parley:touched', 'sessionStorage');
      if (load('parley:open', 'sessionStorage')) setOpen(true, false);
      else if (s.autoOpenDelay && !touched()) {
        setTimeout(() => touched() || setOpen(true, false), s.autoOpenDelay * 1000);
      }
    },
  };

  document.body.appendChild(host);
  return view;
}
