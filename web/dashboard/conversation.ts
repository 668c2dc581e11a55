// One open conversation: the header (visitor, presence, assign to me, resolve / reopen, the
// visitor-panel toggle), the message history (newest 40 first, older pages loaded when the agent
// scrolls to the top or presses "Load earlier messages"; the view stays where it was), the
// visitor's typing indicator and the reply composer (Enter sends, Shift+Enter breaks the line;
// our typing is reported to the visitor, at most every 3 s, and stopped 3 s after the last key).
//
// Replies are shown at once as "Sending…" and replaced by the stored message when the server
// answers; the same message arriving as a room `newMessage` is recognised by its id, so it is
// never shown twice. A reply that fails stays with a Retry button. Message text is always set as
// text; only http(s) addresses in it become links (built as elements).
import { api, ApiError, currentUserId } from './api';
import { h, icon, safeHref, sr } from './dom';
import { ago, clock, dayLabel, dateTime, shortUrl, visitorName } from './format';
import type { Conversation, Member, Message, MessagePage } from './types';
import { MAX_REPLY } from './types';
import { avatar, button, iconButton, spinner, toast } from './ui';

const PAGE = 40;
const GROUP_MS = 5 * 60_000;
const URL_RE = /\bhttps?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]}]/g;

interface Pending {
  key: number;
  content: string;
  failed: boolean;
  createdAt: string;
}

export interface PaneHooks {
  back(): void;
  toggleInfo(): void;
  infoOpen(): boolean;
  changed(c: Conversation): void;
}

// Text with http(s) URLs as links, appended to el as nodes.
export function richText(el: HTMLElement, text: string): void {
  let i = 0;
  let m: RegExpExecArray | null;
  URL_RE.lastIndex = 0;
  while ((m = URL_RE.exec(text))) {
    el.append(text.slice(i, m.index));
    const href = safeHref(m[0]);
    if (href) el.append(h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' }, m[0]));
    else el.append(m[0]);
    i = m.index + m[0].length;
  }
  el.append(text.slice(i));
}

let pendingSeq = 0;

export class ConversationPane {
  el: HTMLElement;
  conv: Conversation;
  private base: string;
  private messages: Message[] = [];
  private pending: Pending[] = [];
  private hasMore = false;
  private loadingOlder = false;
  private loaded = false;
  private destroyed = false;
  private head: HTMLElement;
  private list: HTMLDivElement;
  private top: HTMLDivElement;
  private body: HTMLDivElement;
  private typingEl: HTMLDivElement;
  private jump: HTMLButtonElement;
  private ta: HTMLTextAreaElement;
  private sendBtn: HTMLButtonElement;
  private counter: HTMLSpanElement;
  private typingOn = false;
  private typingSentAt = 0;
  private typingIdle: ReturnType<typeof setTimeout> | undefined;
  private visitorTyping = false;
  private freshIds = new Set<number>();
  private readTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    conv: Conversation,
    private members: Map<number, Member>,
    private hooks: PaneHooks,
  ) {
    this.conv = conv;
    this.base = `/projects/${conv.projectId}/inbox/conversations/${conv.id}`;
    this.head = h('header', 'conv-head');
    this.top = h('div', 'history-top');
    this.body = h('div', 'history-body');
    this.list = h(
      'div',
      { class: 'history', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0', 'aria-label': 'Messages' },
      this.top,
      this.body,
    );
    this.typingEl = h('div', { class: 'typing', role: 'status', hidden: true });
    this.jump = h('button', { class: 'jump', type: 'button', hidden: true, onclick: () => this.toEnd(true) }, icon('down'), h('span', null, 'New messages'));
    this.ta = h('textarea', {
      rows: '1',
      maxlength: String(MAX_REPLY + 200),
      placeholder: 'Write a reply…',
    });
    this.counter = h('span', { class: 'counter', 'aria-live': 'polite' });
    this.sendBtn = h('button', { class: 'btn btn-primary send', type: 'submit', disabled: true }, h('span', null, 'Send'), icon('send'));
    const form = h(
      'form',
      'composer',
      h('label', { class: 'sr', for: `reply-${conv.id}` }, 'Reply'),
      this.ta,
      h('div', 'composer-bar', h('span', 'composer-hint', h('kbd', null, 'Enter'), ' to send · ', h('kbd', null, 'Shift'), ' + ', h('kbd', null, 'Enter'), ' for a new line'), this.counter, this.sendBtn),
    );
    this.ta.id = `reply-${conv.id}`;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    this.ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    this.ta.addEventListener('input', () => this.onInput());
    this.list.addEventListener('scroll', () => this.onScroll(), { passive: true });

    this.el = h(
      'section',
      { class: 'conv', 'aria-label': 'Conversation' },
      this.head,
      h('div', 'history-wrap', this.list, this.jump),
      this.typingEl,
      form,
    );
    this.renderHead();
    this.top.append(spinner('Loading messages'));
  }

  private get name(): string {
    return visitorName(this.conv.visitor);
  }

  // ---- header ----

  renderHead(): void {
    const c = this.conv;
    const me = currentUserId();
    const v = c.visitor;
    const online = !!v?.isOnline;
    const where = v?.currentUrl ? shortUrl(v.currentUrl) : '';
    const sub = online ? (where ? `Online · ${where}` : 'Online') : v?.lastSeenAt ? `Offline · seen ${ago(v.lastSeenAt)}` : 'Offline';
    const assignee = c.assigneeId ? this.members.get(c.assigneeId) : undefined;
    const mine = c.assigneeId !== null && c.assigneeId === me;
    const solved = c.status === 'solved';

    const assign = mine
      ? button('Unassign', { kind: 'ghost', size: 'sm', icon: 'user', onclick: () => this.assign(false), attrs: { 'aria-label': 'Assigned to you. Unassign' } })
      : button('Assign to me', { kind: 'secondary', size: 'sm', icon: 'user', onclick: () => this.assign(true) });
    const status = solved
      ? button('Reopen', { kind: 'secondary', size: 'sm', icon: 'reopen', onclick: () => this.setStatus('open') })
      : button('Resolve', { kind: 'primary', size: 'sm', icon: 'check', onclick: () => this.setStatus('solved') });
    assign.classList.add('act-assign');
    status.classList.add('act-status');

    this.head.replaceChildren(
      iconButton('back', 'Back to conversations', () => this.hooks.back(), { class: 'icon-btn back-btn' }),
      avatar(this.name, v?.uid ?? String(c.visitorId), { online, size: 40 }),
      h(
        'div',
        'conv-who',
        h('h2', null, h('span', 'conv-name', this.name), c.status !== 'open' ? h('span', `pill pill-${c.status}`, c.status === 'solved' ? 'Resolved' : c.status === 'pending' ? 'Pending' : 'Spam') : null),
        h('p', { class: `conv-sub${online ? ' on' : ''}`, title: v?.currentUrl ?? '' }, sub),
      ),
      h(
        'div',
        'conv-actions',
        c.assigneeId && !mine ? h('span', { class: 'assignee', title: assignee ? assignee.email : '' }, avatar(assignee?.fullName ?? 'Agent', `user:${c.assigneeId}`, { size: 22 }), h('span', null, assignee?.fullName ?? 'Another agent')) : null,
        mine ? h('span', 'assignee mine', icon('user'), h('span', null, 'You')) : null,
        assign,
        status,
        iconButton('info', 'Visitor details', () => this.hooks.toggleInfo(), {
          class: 'icon-btn info-btn',
          'aria-pressed': String(this.hooks.infoOpen()),
          'aria-controls': 'visitor-panel',
        }),
      ),
    );
    this.ta.placeholder = `Reply to ${this.name}…`;
  }

  update(c: Conversation): void {
    this.conv = c;
    this.renderHead();
  }

  private async patch(body: unknown, path = '', method = 'PATCH'): Promise<void> {
    try {
      const c = await api<Conversation>(method, this.base + path, body);
      if (this.destroyed) return;
      this.conv = { ...this.conv, ...c, visitor: c.visitor ?? this.conv.visitor };
      this.renderHead();
      this.hooks.changed(this.conv);
    } catch (e) {
      toast((e as ApiError).message || 'Something went wrong', 'error');
    }
  }

  private setStatus(status: 'open' | 'solved'): void {
    void this.patch({ status }).then(() => {
      const b = this.head.querySelector<HTMLButtonElement>('.act-status');
      b?.focus();
      toast(status === 'solved' ? 'Conversation resolved' : 'Conversation reopened', 'success');
    });
  }

  private assign(toMe: boolean): void {
    void (toMe ? this.patch({}, '/assignments', 'POST') : this.patch(undefined, '/assignments', 'DELETE')).then(() => {
      this.head.querySelector<HTMLButtonElement>('.act-assign')?.focus();
    });
  }

  markRead(): void {
    if (this.conv.unreadCount <= 0 || document.visibilityState === 'hidden') return;
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      if (!this.destroyed && this.conv.unreadCount > 0) void this.patch({ read: true });
    }, 250);
  }

  // ---- history ----

  async load(): Promise<void> {
    try {
      const page = await api<MessagePage>('GET', `${this.base}/messages?limit=${PAGE}`);
      if (this.destroyed) return;
      this.merge(page.data);
      this.hasMore = page.hasMore;
      this.loaded = true;
      this.render();
      this.toEnd(false);
      this.fill();
    } catch (e) {
      if (this.destroyed) return;
      this.top.replaceChildren(h('div', 'history-note error', (e as ApiError).message, ' ', button('Try again', { kind: 'ghost', size: 'sm', onclick: () => void this.load() })));
    }
  }

  // Events missed while the socket was away: the newest page again, merged by id.
  async resync(): Promise<void> {
    if (!this.loaded) return;
    try {
      const page = await api<MessagePage>('GET', `${this.base}/messages?limit=${PAGE}`);
      if (this.destroyed) return;
      const near = this.nearEnd();
      const before = this.messages.length;
      this.merge(page.data);
      if (this.messages.length !== before) {
        this.render();
        if (near) this.toEnd(false);
      }
    } catch {
      // the next resync or event will do
    }
  }

  private merge(ms: Message[]): void {
    const byId = new Map(this.messages.map((m) => [m.id, m]));
    for (const m of ms) byId.set(m.id, m);
    this.messages = [...byId.values()].sort((a, b) => a.id - b.id);
  }

  // Loads older pages while the history does not fill its box (so scrolling up is possible).
  private fill(): void {
    if (this.hasMore && this.list.scrollHeight <= this.list.clientHeight + 40) void this.loadOlder();
  }

  async loadOlder(): Promise<void> {
    if (this.loadingOlder || !this.hasMore || !this.messages.length) return;
    this.loadingOlder = true;
    this.renderTop();
    const oldest = this.messages[0].id;
    try {
      const page = await api<MessagePage>('GET', `${this.base}/messages?before=${oldest}&limit=${PAGE}`);
      if (this.destroyed) return;
      const fromBottom = this.list.scrollHeight - this.list.scrollTop;
      this.merge(page.data);
      this.hasMore = page.hasMore;
      this.loadingOlder = false;
      this.render();
      // Keep the messages the agent was reading where they were.
      this.list.scrollTop = this.list.scrollHeight - fromBottom;
      this.fill();
    } catch (e) {
      this.loadingOlder = false;
      this.renderTop();
      toast((e as ApiError).message, 'error');
    }
  }

  private onScroll(): void {
    if (this.list.scrollTop < 150) void this.loadOlder();
    if (this.nearEnd()) this.jump.hidden = true;
  }

  private nearEnd(): boolean {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 120;
  }

  private toEnd(smooth: boolean): void {
    this.list.scrollTo({ top: this.list.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    this.jump.hidden = true;
  }

  private renderTop(): void {
    if (this.loadingOlder) this.top.replaceChildren(spinner('Loading earlier messages'));
    else if (this.hasMore) {
      this.top.replaceChildren(button('Load earlier messages', { kind: 'ghost', size: 'sm', onclick: () => void this.loadOlder(), attrs: { class: 'btn btn-ghost btn-sm load-older' } }));
    } else {
      this.top.replaceChildren(
        h('div', 'history-start', h('span', 'history-start-icon', icon('chat')), h('strong', null, `Conversation with ${this.name}`), h('span', null, `Started ${dateTime(this.conv.createdAt)}`)),
      );
    }
  }

  private sender(m: Message): string {
    if (m.fromCustomer) return this.name;
    if (m.userId && m.userId === currentUserId()) return 'You';
    return (m.userId && this.members.get(m.userId)?.fullName) || 'Agent';
  }

  private render(): void {
    this.renderTop();
    type Item = { key: string; mine: boolean; who: string; at: string; content: string; id?: number; pending?: Pending; fresh: boolean };
    const items: Item[] = this.messages.map((m) => ({
      key: m.fromCustomer ? 'v' : `a${m.userId ?? 0}`,
      mine: !m.fromCustomer,
      who: this.sender(m),
      at: m.createdAt,
      content: m.content,
      id: m.id,
      fresh: this.freshIds.has(m.id),
    }));
    for (const p of this.pending) {
      items.push({ key: `p${p.key}`, mine: true, who: 'You', at: p.createdAt, content: p.content, pending: p, fresh: true });
    }
    this.freshIds.clear();

    // Day separators, then groups: consecutive messages of one sender within five minutes.
    const blocks: (string | Item[])[] = [];
    let lastDay = '';
    let cur: Item[] | null = null;
    for (const it of items) {
      const day = dayLabel(it.at);
      if (day !== lastDay) {
        blocks.push(day);
        lastDay = day;
        cur = null;
      }
      const prev = cur ? cur[cur.length - 1] : null;
      if (!cur || !prev || prev.key !== it.key || new Date(it.at).getTime() - new Date(prev.at).getTime() > GROUP_MS) {
        cur = [];
        blocks.push(cur);
      }
      cur.push(it);
    }

    const rows: HTMLElement[] = blocks.map((b) => {
      if (typeof b === 'string') return h('div', { class: 'day', role: 'separator', 'aria-label': b }, h('span', null, b));
      const last = b[b.length - 1];
      const meta = h('div', 'msg-meta');
      if (last.pending) {
        const p = last.pending;
        if (p.failed) meta.append(h('span', 'failed-text', icon('info'), h('span', null, 'Not sent')), button('Retry', { kind: 'ghost', size: 'sm', onclick: () => this.retry(p) }));
        else meta.append(h('span', null, 'Sending…'));
      } else meta.append(h('span', null, `${last.who} · ${clock(last.at)}`));
      return h(
        'div',
        `msg-group ${last.mine ? 'mine' : 'theirs'}`,
        last.mine ? null : avatar(this.name, this.conv.visitor?.uid ?? String(this.conv.visitorId), { size: 30 }),
        h(
          'div',
          'msg-col',
          b.map((it) => {
            const el = h('div', {
              class: `bubble${it.pending ? (it.pending.failed ? ' failed' : ' sending') : ''}${it.fresh ? ' fresh' : ''}`,
              dataset: it.id ? { id: String(it.id) } : {},
              title: dateTime(it.at),
            });
            el.append(sr(`${it.who}, ${clock(it.at)}: `));
            richText(el, it.content);
            return el;
          }),
          meta,
        ),
      );
    });
    if (!items.length && this.loaded) rows.push(h('div', 'history-note', 'No messages yet.'));
    this.body.replaceChildren(...rows);
  }

  // A message of this conversation from the room (or our own reply).
  add(m: Message): void {
    if (this.messages.some((x) => x.id === m.id)) return;
    const near = this.nearEnd();
    // Our own reply arriving from the room before the POST answered: drop the pending copy.
    if (!m.fromCustomer && m.userId === currentUserId()) {
      const i = this.pending.findIndex((p) => !p.failed && p.content.trim() === m.content);
      if (i >= 0) this.pending.splice(i, 1);
    }
    this.messages.push(m);
    this.messages.sort((a, b) => a.id - b.id);
    this.freshIds.add(m.id);
    if (m.fromCustomer) this.setTyping(false);
    this.render();
    if (near || !m.fromCustomer) this.toEnd(true);
    else this.jump.hidden = false;
  }

  setTyping(on: boolean): void {
    if (on === this.visitorTyping) return;
    this.visitorTyping = on;
    this.typingEl.hidden = !on;
    this.typingEl.replaceChildren(...(on ? [h('span', 'dots', h('i'), h('i'), h('i')), h('span', null, `${this.name} is typing…`)] : []));
    if (on && this.nearEnd()) requestAnimationFrame(() => this.toEnd(false));
  }

  // ---- composer ----

  private onInput(): void {
    const ta = this.ta;
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight + 2, 180)}px`;
    const n = Array.from(ta.value.trim()).length;
    this.sendBtn.disabled = n === 0 || n > MAX_REPLY;
    this.counter.textContent = n > MAX_REPLY - 500 ? `${n} / ${MAX_REPLY}` : '';
    this.counter.classList.toggle('over', n > MAX_REPLY);
    if (ta.value.trim()) this.typing(true);
    else this.typing(false);
  }

  private typing(on: boolean): void {
    clearTimeout(this.typingIdle);
    const now = Date.now();
    if (on) {
      if (!this.typingOn || now - this.typingSentAt > 3000) {
        this.typingOn = true;
        this.typingSentAt = now;
        void api('POST', `${this.base}/typing`, { isTyping: true }).catch(() => {});
      }
      this.typingIdle = setTimeout(() => this.typing(false), 3000);
    } else if (this.typingOn) {
      this.typingOn = false;
      void api('POST', `${this.base}/typing`, { isTyping: false }).catch(() => {});
    }
  }

  private send(): void {
    const text = this.ta.value.trim();
    if (!text || Array.from(text).length > MAX_REPLY) return;
    this.ta.value = '';
    this.onInput();
    this.typing(false);
    const p: Pending = { key: ++pendingSeq, content: text, failed: false, createdAt: new Date().toISOString() };
    this.pending.push(p);
    this.render();
    this.toEnd(true);
    this.post(p);
  }

  private post(p: Pending): void {
    api<Message>('POST', `${this.base}/messages`, { text: p.content })
      .then((m) => {
        if (this.destroyed) return;
        this.pending = this.pending.filter((x) => x !== p);
        if (!this.messages.some((x) => x.id === m.id)) {
          this.messages.push(m);
          this.messages.sort((a, b) => a.id - b.id);
        }
        this.render();
        this.toEnd(false);
        this.hooks.changed({ ...this.conv, lastMessageSnippet: m.content, lastMessageTimestamp: m.createdAt });
      })
      .catch((e: ApiError) => {
        if (this.destroyed) return;
        p.failed = true;
        this.render();
        toast(`Reply not sent: ${e.message}`, 'error');
      });
  }

  private retry(p: Pending): void {
    p.failed = false;
    this.render();
    this.post(p);
  }

  focusComposer(): void {
    this.ta.focus({ preventScroll: true });
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.readTimer);
    this.typing(false);
    clearTimeout(this.typingIdle);
  }
}
