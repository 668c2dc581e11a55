// The inbox of one project: the conversation list (Open / Resolved / All, newest activity first,
// 25 at a time with "Load more"), the open conversation and the visitor panel. It listens to the
// project room and keeps everything current without a reload: a new conversation appears at
// the top, snippets, times and unread counts follow new messages, dots follow presence, "typing…"
// follows the visitor, status and assignment changes follow `conversationUpdated`, deletions
// remove the row. After a reconnect (`resync`) the list and the open history are reloaded.
//
// Layout: three columns on a wide screen; on a narrower one the visitor panel becomes a drawer;
// on a phone one column at a time (the list, or the conversation with a back button).
import { api, ApiError } from './api';
import { ConversationPane } from './conversation';
import { h } from './dom';
import { shortTime, visitorName } from './format';
import { attention, isHidden } from './notify';
import type { Ctx, Route, View } from './shell';
import type { Conversation, LiveEvents, Member, Page, Project, Visitor } from './types';
import { avatar, button, empty, spinner, toast } from './ui';
import { visitorPanel } from './visitor';

type Filter = 'open' | 'solved' | 'all';
const FILTERS: { key: Filter; label: string; query: string }[] = [
  { key: 'open', label: 'Open', query: 'open,pending' },
  { key: 'solved', label: 'Resolved', query: 'solved' },
  { key: 'all', label: 'All', query: 'open,pending,solved' },
];
const LIMIT = 25;
const TYPING_TTL_MS = 6000;
const WIDE = '(min-width: 1180px)';

function matches(f: Filter, c: Conversation): boolean {
  if (c.status === 'spam') return false;
  if (f === 'open') return c.status === 'open' || c.status === 'pending';
  if (f === 'solved') return c.status === 'solved';
  return true;
}

const activity = (c: Conversation): number => new Date(c.lastMessageTimestamp ?? c.createdAt).getTime() || 0;

export class InboxView implements View {
  el: HTMLElement;
  title: string;
  private project: Project;
  private filter: Filter;
  private convs = new Map<number, Conversation>();
  private total = 0;
  private loadedPages = 0;
  private members = new Map<number, Member>();
  private typing = new Map<number, ReturnType<typeof setTimeout>>();
  private openId: number | null = null;
  private pane: ConversationPane | null = null;
  private visitors = new Map<number, Visitor>();
  private infoOpen: boolean;
  private listEl: HTMLUListElement;
  private listBox: HTMLElement;
  private footer: HTMLDivElement;
  private convBox: HTMLElement;
  private infoBox: HTMLElement;
  private tabs = new Map<Filter, HTMLButtonElement>();
  private unsub: (() => void)[] = [];
  private clockTimer: ReturnType<typeof setInterval>;
  private loading = false;
  private listError: string | null = null;
  private destroyed = false;
  private shown = false; // open() has drawn the middle column once
  private placeholderAny: boolean | null = null;
  private fetching = new Map<number, boolean>(); // conversation id → loaded again after this load

  constructor(
    private ctx: Ctx,
    project: Project,
    cid: number | null,
  ) {
    this.project = project;
    this.title = `Inbox · ${project.name}`;
    this.filter = (localStorage.getItem('parley.filter') as Filter) || 'open';
    if (!FILTERS.some((f) => f.key === this.filter)) this.filter = 'open';
    this.infoOpen = matchMedia(WIDE).matches;

    const switcher =
      ctx.projects.length > 1
        ? h(
            'select',
            {
              class: 'project-select',
              'aria-label': 'Project',
              onchange: (e: Event) => ctx.go(`#/inbox/${(e.target as HTMLSelectElement).value}`),
            },
            ctx.projects.map((p) => h('option', { value: String(p.id), selected: p.id === project.id }, p.name)),
          )
        : h('span', 'project-name', project.name);

    const tabs = h(
      'div',
      { class: 'segmented', role: 'group', 'aria-label': 'Show conversations' },
      FILTERS.map((f) => {
        const b = h('button', { type: 'button', 'aria-pressed': String(f.key === this.filter), onclick: () => this.setFilter(f.key) }, f.label);
        this.tabs.set(f.key, b);
        return b;
      }),
    );
    this.listEl = h('ul', { class: 'conv-list', 'aria-label': 'Conversations' });
    this.listEl.addEventListener('keydown', (e) => this.listKeys(e));
    this.footer = h('div', 'list-footer');
    this.listBox = h(
      'section',
      { class: 'inbox-list', 'aria-labelledby': 'inbox-title' },
      h('header', 'list-head', h('div', 'list-title', h('h1', { id: 'inbox-title' }, 'Inbox'), switcher), tabs),
      h('div', 'list-scroll', this.listEl, this.footer),
    );
    this.convBox = h('section', 'inbox-conv');
    this.infoBox = h('aside', { class: 'inbox-info', id: 'visitor-panel', 'aria-label': 'Visitor details' });
    this.infoBox.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !matchMedia(WIDE).matches && this.infoOpen) {
        e.stopPropagation();
        this.toggleInfo(false);
      }
    });
    this.el = h('div', 'inbox', this.listBox, this.convBox, h('div', { class: 'info-scrim', onclick: () => this.toggleInfo(false) }), this.infoBox);
    this.syncLayout();

    const live = ctx.live;
    this.unsub.push(
      live.on('newMessage', (m) => void this.onMessage(m)),
      live.on('visitorStatusChanged', (p) => this.onPresence(p)),
      live.on('visitorIsTyping', (p) => this.onTyping(p)),
      live.on('visitorContextUpdated', (p) => this.onContext(p)),
      live.on('conversationUpdated', (p) => void this.onUpdated(p)),
      live.on('conversationDeleted', (p) => this.onDeleted(p.conversationId)),
      live.on('visitorUpdated', (p) => this.onVisitorUpdated(p)),
      live.onResync(() => void this.resync()),
    );
    const vis = (): void => {
      if (!isHidden()) this.pane?.markRead();
    };
    document.addEventListener('visibilitychange', vis);
    this.unsub.push(() => document.removeEventListener('visibilitychange', vis));
    this.clockTimer = setInterval(() => this.renderList(), 30_000);

    this.renderList();
    void this.loadMembers();
    void this.loadList(true);
    this.open(cid);
  }

  update(r: Route): boolean {
    if (r.name !== 'inbox' || r.pid !== this.project.id) return false;
    this.open(r.cid);
    return true;
  }

  destroy(): void {
    this.destroyed = true;
    for (const u of this.unsub) u();
    clearInterval(this.clockTimer);
    for (const t of this.typing.values()) clearTimeout(t);
    this.pane?.destroy();
    this.ctx.setUnread(0);
  }

  // ---- data ----

  private async loadMembers(): Promise<void> {
    try {
      const ms = await api<Member[]>('GET', `/projects/${this.project.id}/members`);
      for (const m of ms) this.members.set(m.id, m);
      this.pane?.renderHead();
      this.renderInfo();
    } catch {
      // names fall back to "Agent"
    }
  }

  private query(page: number, limit = LIMIT): string {
    const f = FILTERS.find((x) => x.key === this.filter)!;
    return `/projects/${this.project.id}/inbox/conversations?status=${f.query}&page=${page}&limit=${limit}`;
  }

  private async loadList(reset: boolean): Promise<void> {
    if (this.loading) return;
    this.loading = true;
    this.listError = null;
    const page = reset ? 1 : this.loadedPages + 1;
    const filter = this.filter;
    this.renderFooter();
    try {
      const res = await api<Page<Conversation>>('GET', this.query(page));
      if (this.destroyed || filter !== this.filter) return;
      if (reset) {
        const keep = this.openId !== null ? this.convs.get(this.openId) : undefined;
        this.convs.clear();
        if (keep) this.convs.set(keep.id, keep);
      }
      for (const c of res.data) this.convs.set(c.id, c);
      this.total = res.total;
      this.loadedPages = page;
    } catch (e) {
      this.listError = (e as ApiError).message;
    } finally {
      this.loading = false;
    }
    this.renderList();
  }

  private async resync(): Promise<void> {
    // Everything the list showed, in one request (up to 100 rows).
    const n = Math.min(100, Math.max(LIMIT, this.loadedPages * LIMIT));
    try {
      const res = await api<Page<Conversation>>('GET', this.query(1, n));
      if (this.destroyed) return;
      const open = this.openId !== null ? this.convs.get(this.openId) : undefined;
      this.convs.clear();
      for (const c of res.data) this.convs.set(c.id, c);
      if (open && !this.convs.has(open.id)) {
        const fresh = await api<Conversation>('GET', `/projects/${this.project.id}/inbox/conversations/${open.id}`).catch(() => open);
        this.convs.set(fresh.id, fresh);
      }
      this.total = res.total;
      this.loadedPages = Math.max(1, Math.ceil(n / LIMIT));
      this.renderList();
      if (this.pane && this.openId !== null) {
        const c = this.convs.get(this.openId);
        if (c) this.pane.update(c);
        void this.pane.resync();
        this.renderInfo();
      }
    } catch {
      // offline again: the next join resyncs
    }
  }

  private async fetchConversation(id: number): Promise<Conversation | null> {
    try {
      const c = await api<Conversation>('GET', `/projects/${this.project.id}/inbox/conversations/${id}`);
      return this.destroyed ? null : c;
    } catch {
      return null;
    }
  }

  private setFilter(f: Filter): void {
    if (f === this.filter) return;
    this.filter = f;
    try {
      localStorage.setItem('parley.filter', f);
    } catch {
      // fine
    }
    for (const [k, b] of this.tabs) b.setAttribute('aria-pressed', String(k === f));
    this.loadedPages = 0;
    this.total = 0;
    const open = this.openId !== null ? this.convs.get(this.openId) : undefined;
    this.convs.clear();
    if (open) this.convs.set(open.id, open);
    this.renderList();
    void this.loadList(true);
  }

  // ---- live events ----

  private async onMessage(m: LiveEvents['newMessage']): Promise<void> {
    if (m.fromCustomer) attention();
    this.clearTyping(m.conversationId, m.fromCustomer);
    const c = this.convs.get(m.conversationId);
    if (!c) {
      // A new conversation (or one not loaded): its stored state counts this message already.
      await this.refreshConv(m.conversationId);
      return;
    }
    const next = {
      ...c,
      lastMessageSnippet: m.content.slice(0, 200),
      lastMessageTimestamp: m.createdAt,
      unreadCount: m.fromCustomer ? c.unreadCount + 1 : c.unreadCount,
    };
    this.convs.set(c.id, next);
    if (this.openId === c.id && this.pane) {
      this.pane.update(next);
      this.pane.add(m);
      if (m.fromCustomer) this.pane.markRead();
    }
    this.renderList();
  }

  // Loads conversation id from the server and shows it. Events that arrive while a load is under
  // way ask for one more load after it, so the last load started after the last event.
  private async refreshConv(id: number): Promise<void> {
    if (this.fetching.has(id)) {
      this.fetching.set(id, true);
      return;
    }
    this.fetching.set(id, false);
    try {
      for (;;) {
        const c = await this.fetchConversation(id);
        if (this.destroyed) return;
        if (this.fetching.get(id)) {
          this.fetching.set(id, false);
          continue;
        }
        if (c) {
          if (!this.convs.has(c.id) && matches(this.filter, c)) this.total += 1;
          const cur = this.convs.get(c.id);
          this.convs.set(c.id, { ...c, visitor: c.visitor ?? cur?.visitor });
          if (this.openId === c.id) this.refreshOpen();
          this.renderList();
        }
        return;
      }
    } finally {
      this.fetching.delete(id);
    }
  }

  private onPresence(p: LiveEvents['visitorStatusChanged']): void {
    let touched = false;
    for (const [id, c] of this.convs) {
      if (c.visitor?.uid === p.visitorUid) {
        this.convs.set(id, { ...c, visitor: { ...c.visitor, isOnline: p.isOnline, lastSeenAt: new Date().toISOString() } });
        touched = true;
      }
    }
    for (const [id, v] of this.visitors) if (v.uid === p.visitorUid) this.visitors.set(id, { ...v, isOnline: p.isOnline, lastSeenAt: new Date().toISOString() });
    if (!touched) return;
    this.renderList();
    this.refreshOpen();
  }

  private onTyping(p: LiveEvents['visitorIsTyping']): void {
    const id = p.conversationId;
    if (id == null || !this.convs.has(id)) return;
    clearTimeout(this.typing.get(id));
    if (p.isTyping) this.typing.set(id, setTimeout(() => this.clearTyping(id, true), TYPING_TTL_MS));
    else this.typing.delete(id);
    if (this.openId === id) this.pane?.setTyping(p.isTyping);
    this.renderList();
  }

  private clearTyping(id: number, render: boolean): void {
    if (!this.typing.has(id)) return;
    clearTimeout(this.typing.get(id));
    this.typing.delete(id);
    if (this.openId === id) this.pane?.setTyping(false);
    if (render) this.renderList();
  }

  private onContext(p: LiveEvents['visitorContextUpdated']): void {
    let touched = false;
    for (const [id, c] of this.convs) {
      if ((p.visitorUid && c.visitor?.uid === p.visitorUid) || (p.conversationId !== null && id === p.conversationId)) {
        if (c.visitor) this.convs.set(id, { ...c, visitor: { ...c.visitor, currentUrl: p.currentUrl } });
        touched = true;
      }
    }
    for (const [id, v] of this.visitors) if (v.uid === p.visitorUid) this.visitors.set(id, { ...v, currentUrl: p.currentUrl });
    if (touched) this.refreshOpen();
  }

  private async onUpdated(p: LiveEvents['conversationUpdated']): Promise<void> {
    const c = this.convs.get(p.conversationId);
    if (!c || this.fetching.has(p.conversationId)) {
      await this.refreshConv(p.conversationId);
      return;
    }
    const next = { ...c, ...p.fields, visitor: c.visitor };
    this.convs.set(c.id, next);
    this.renderList();
    if (this.openId === c.id) this.refreshOpen();
  }

  private onDeleted(id: number): void {
    if (!this.convs.delete(id) && this.openId !== id) return;
    this.total = Math.max(0, this.total - 1);
    this.renderList();
    if (this.openId === id) {
      toast('This conversation was deleted');
      this.ctx.go(`#/inbox/${this.project.id}`);
    }
  }

  private onVisitorUpdated(p: LiveEvents['visitorUpdated']): void {
    const vid = p.visitorId ?? p.id;
    for (const [id, c] of this.convs) {
      if (c.visitor && (c.visitorId === vid || c.visitor.uid === (p.visitorUid ?? p.uid))) {
        const v = { ...c.visitor };
        if (typeof p.name === 'string' || p.name === null) v.name = p.name;
        if (typeof p.email === 'string' || p.email === null) v.email = p.email;
        this.convs.set(id, { ...c, visitor: v });
      }
    }
    this.renderList();
    this.refreshOpen();
  }

  // Pushes the stored state of the open conversation to its pane and panel.
  private refreshOpen(): void {
    if (this.openId === null || !this.pane) return;
    const c = this.convs.get(this.openId);
    if (c) this.pane.update(c);
    this.renderInfo();
  }

  // ---- open conversation ----

  private open(cid: number | null): void {
    if (this.shown && cid === this.openId && (cid === null || this.pane)) return;
    this.shown = true;
    this.pane?.destroy();
    this.pane = null;
    this.openId = cid;
    this.placeholderAny = null;
    this.syncLayout();
    this.renderList();
    if (cid === null) {
      this.placeholder();
      this.renderInfo();
      return;
    }
    this.convBox.replaceChildren(h('div', 'conv-loading', spinner('Loading conversation')));
    const known = this.convs.get(cid);
    const ready = known ? Promise.resolve(known) : this.fetchConversation(cid);
    void ready.then((c) => {
      if (this.destroyed || this.openId !== cid) return;
      if (!c) {
        this.convBox.replaceChildren(empty('inbox', 'Conversation not found', 'It may have been deleted, or it belongs to another project.', h('a', { class: 'btn btn-secondary', href: `#/inbox/${this.project.id}` }, 'Back to inbox')));
        return;
      }
      if (!this.convs.has(c.id)) this.convs.set(c.id, c);
      const pane = new ConversationPane(c, this.members, {
        back: () => this.ctx.go(`#/inbox/${this.project.id}`),
        toggleInfo: () => this.toggleInfo(),
        infoOpen: () => this.infoOpen,
        changed: (nc) => {
          const cur = this.convs.get(nc.id);
          this.convs.set(nc.id, { ...(cur ?? nc), ...nc, visitor: nc.visitor ?? cur?.visitor });
          this.renderList();
          this.renderInfo();
        },
      });
      this.pane = pane;
      this.convBox.replaceChildren(pane.el);
      pane.setTyping(this.typing.has(c.id));
      void pane.load();
      pane.markRead();
      this.renderInfo();
      void this.loadVisitor(c.visitorId);
      if (!matchMedia('(max-width: 760px)').matches || document.activeElement === document.body) pane.focusComposer();
    });
  }

  // The middle column without a conversation.
  private placeholder(): void {
    const any = this.convs.size > 0;
    this.placeholderAny = any;
    this.convBox.replaceChildren(
      empty(
        'chat',
        any ? 'Pick a conversation' : 'Your inbox is ready',
        any ? 'Choose a conversation on the left to read the history and reply.' : 'When a visitor writes from your website, the conversation shows up here instantly.',
        any || this.project.whitelistedDomains.length ? null : h('a', { class: 'btn btn-primary', href: `#/settings/${this.project.id}` }, 'Install the widget'),
        'empty-conv',
      ),
    );
  }

  private async loadVisitor(id: number): Promise<void> {
    try {
      const v = await api<Visitor>('GET', `/projects/${this.project.id}/inbox/visitors/${id}`);
      if (this.destroyed) return;
      this.visitors.set(id, v);
      // The list's copy learns lastSeenAt too.
      for (const [cid, c] of this.convs) if (c.visitorId === id) this.convs.set(cid, { ...c, visitor: { ...(c.visitor ?? v), ...v } });
      this.refreshOpen();
    } catch {
      // the conversation's own copy of the visitor is shown
    }
  }

  private toggleInfo(open = !this.infoOpen): void {
    this.infoOpen = open;
    this.syncLayout();
    this.pane?.renderHead();
    if (open && !matchMedia(WIDE).matches) this.infoBox.querySelector<HTMLElement>('.vp-close')?.focus();
    else if (!open) this.pane?.el.querySelector<HTMLElement>('.info-btn')?.focus();
  }

  private syncLayout(): void {
    this.el.dataset.open = String(this.openId !== null);
    this.el.dataset.info = String(this.infoOpen);
  }

  private renderInfo(): void {
    const c = this.openId !== null ? this.convs.get(this.openId) ?? this.pane?.conv ?? null : null;
    const v = c ? this.visitors.get(c.visitorId) : undefined;
    const merged = c && v ? { ...v, ...c.visitor, lastSeenAt: c.visitor?.lastSeenAt ?? v.lastSeenAt, createdAt: v.createdAt } : v;
    const scroll = this.infoBox.scrollTop;
    const hadFocus = this.infoBox.contains(document.activeElement) ? (document.activeElement as HTMLElement).className : null;
    this.infoBox.replaceChildren(visitorPanel(c, merged as Visitor | undefined, this.members, () => this.toggleInfo(false)));
    this.infoBox.scrollTop = scroll;
    if (hadFocus) this.infoBox.querySelector<HTMLElement>('.vp-close')?.focus();
  }

  // ---- list ----

  private sorted(): Conversation[] {
    return [...this.convs.values()].filter((c) => matches(this.filter, c) || c.id === this.openId).sort((a, b) => activity(b) - activity(a) || b.id - a.id);
  }

  private renderList(): void {
    const now = new Date();
    const rows = this.sorted();
    const focusedId = (document.activeElement as HTMLElement | null)?.closest?.('.conv-item')?.getAttribute('data-id');
    this.listEl.replaceChildren(
      ...rows.map((c) => {
        const v = c.visitor;
        const name = visitorName(v);
        const typing = this.typing.has(c.id);
        const active = c.id === this.openId;
        const unread = active ? 0 : c.unreadCount;
        return h(
          'li',
          null,
          h(
            'a',
            {
              class: `conv-item${unread ? ' unread' : ''}${active ? ' active' : ''}`,
              href: `#/inbox/${this.project.id}/${c.id}`,
              'aria-current': active ? 'true' : null,
              'data-id': String(c.id),
              'aria-label': [
                name,
                v?.isOnline ? 'online' : 'offline',
                unread ? `${unread} unread` : '',
                typing ? 'typing' : c.lastMessageSnippet ? `“${c.lastMessageSnippet}”` : '',
                c.status === 'solved' ? 'resolved' : c.status === 'pending' ? 'pending' : '',
                shortTime(c.lastMessageTimestamp ?? c.createdAt, now),
              ].filter(Boolean).join(', '),
            },
            avatar(name, v?.uid ?? String(c.visitorId), { online: !!v?.isOnline }),
            h(
              'span',
              'ci-main',
              h('span', 'ci-top', h('span', 'ci-name', name), h('time', { class: 'ci-time', datetime: c.lastMessageTimestamp ?? '' }, shortTime(c.lastMessageTimestamp ?? c.createdAt, now))),
              h(
                'span',
                'ci-bottom',
                typing
                  ? h('span', 'ci-snippet typing-text', h('span', 'dots', h('i'), h('i'), h('i')), 'typing…')
                  : h('span', 'ci-snippet', c.lastMessageSnippet ?? ''),
                c.status === 'solved' && this.filter !== 'solved' ? h('span', 'pill pill-solved pill-xs', 'Resolved') : null,
                c.status === 'pending' ? h('span', 'pill pill-pending pill-xs', 'Pending') : null,
                unread ? h('span', { class: 'ci-badge' }, String(unread)) : null,
              ),
            ),
          ),
        );
      }),
    );
    if (this.openId === null && this.shown && this.placeholderAny !== this.convs.size > 0) this.placeholder();
    if (focusedId) this.listEl.querySelector<HTMLElement>(`.conv-item[data-id="${focusedId}"]`)?.focus();
    this.ctx.setUnread([...this.convs.values()].filter((c) => c.unreadCount > 0 && c.id !== this.openId && c.status !== 'spam').length);
    this.renderFooter(rows.length);
  }

  private renderFooter(count = this.sorted().length): void {
    const more = this.loadedPages > 0 && this.total > this.loadedPages * LIMIT;
    if (this.listError) {
      this.footer.replaceChildren(h('div', 'list-error', h('p', null, this.listError), button('Try again', { kind: 'secondary', size: 'sm', onclick: () => void this.loadList(this.loadedPages === 0) })));
    } else if (this.loading && count === 0) {
      this.footer.replaceChildren(h('div', 'list-skeleton', [0, 1, 2, 3].map(() => h('div', 'sk-row', h('i', 'sk-av'), h('span', null, h('i', 'sk-l1'), h('i', 'sk-l2'))))));
    } else if (count === 0 && this.loadedPages > 0) {
      const msg: Record<Filter, [string, string]> = {
        open: ['All caught up', 'No open conversations. New chats from your website appear here the moment they start.'],
        solved: ['Nothing resolved yet', 'Conversations you resolve are kept here.'],
        all: ['No conversations yet', 'When a visitor writes from your website, the conversation shows up here instantly.'],
      };
      const [t, d] = msg[this.filter];
      this.footer.replaceChildren(
        empty(this.filter === 'open' ? 'check' : 'inbox', t, d, this.project.whitelistedDomains.length ? null : h('a', { class: 'btn btn-secondary btn-sm', href: `#/settings/${this.project.id}` }, 'Install the widget'), 'empty-list'),
      );
    } else if (more) {
      this.footer.replaceChildren(button(this.loading ? 'Loading…' : 'Load more', { kind: 'ghost', size: 'sm', onclick: () => void this.loadList(false), attrs: { class: 'btn btn-ghost btn-sm load-more', disabled: this.loading } }));
    } else this.footer.replaceChildren();
  }

  // Up / Down move between conversations; Home / End jump.
  private listKeys(e: KeyboardEvent): void {
    const items = [...this.listEl.querySelectorAll<HTMLElement>('.conv-item')];
    const i = items.indexOf(document.activeElement as HTMLElement);
    if (i < 0) return;
    let j = -1;
    if (e.key === 'ArrowDown') j = Math.min(items.length - 1, i + 1);
    else if (e.key === 'ArrowUp') j = Math.max(0, i - 1);
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = items.length - 1;
    if (j >= 0) {
      e.preventDefault();
      items[j].focus();
    }
  }
}
