// The visitor panel beside a conversation: who the visitor is (presence, first and last seen),
// the page they are on now (live: `visitorContextUpdated`), and the session metadata the widget
// sent with the first message (landing page, referrer, pages visited, language, time zone with
// their local time, browser). Keys we do not know are listed as they are, as text. Addresses
// become links only when they are http(s).
import { h, icon, safeHref, type IconName } from './dom';
import { ago, browserSummary, dateTime, shortUrl, timeIn, visitorName } from './format';
import type { Conversation, Member, Visitor } from './types';
import { avatar, iconButton } from './ui';

const KNOWN = new Set(['referrer', 'landingPage', 'currentUrl', 'urlHistory', 'language', 'timeZone', 'userAgent']);

function link(u: unknown): HTMLElement {
  const s = typeof u === 'string' ? u : '';
  const href = safeHref(s);
  if (!href) return h('span', 'mono-wrap', s || '—');
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow', class: 'url', title: s }, shortUrl(s), icon('external', 'ic ic-xs'));
}

function row(label: string, value: HTMLElement | string, ic?: IconName): HTMLElement {
  return h('div', 'kv', h('dt', null, ic ? icon(ic, 'ic ic-sm') : null, label), h('dd', null, value));
}

function section(title: string, ...kids: (HTMLElement | null)[]): HTMLElement {
  return h('section', 'vp-section', h('h3', null, title), ...kids);
}

function text(v: unknown): string {
  if (v == null) return '—';
  if (typeof v === 'string') return v || '—';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return '—';
  }
}

export function visitorPanel(
  conv: Conversation | null,
  visitor: Visitor | undefined,
  members: Map<number, Member>,
  close: () => void,
): HTMLElement {
  const head = h('div', 'vp-head', h('h2', null, 'Visitor'), iconButton('x', 'Close visitor details', close, { class: 'icon-btn vp-close' }));
  if (!conv) return h('div', 'vp', head, h('p', 'muted vp-empty', 'Open a conversation to see who you are talking to.'));
  const v = visitor ?? conv.visitor;
  const name = visitorName(v);
  const md = conv.metadata && typeof conv.metadata === 'object' ? conv.metadata : {};
  const online = !!v?.isOnline;
  const zone = typeof md.timeZone === 'string' ? md.timeZone : '';
  const local = zone ? timeIn(zone) : '';
  const history = Array.isArray(md.urlHistory) ? (md.urlHistory as unknown[]).filter((u) => typeof u === 'string').slice(-12) : [];
  const assignee = conv.assigneeId ? members.get(conv.assigneeId) : undefined;
  const extra = Object.entries(md).filter(([k]) => !KNOWN.has(k)).slice(0, 20);

  return h(
    'div',
    'vp',
    head,
    h(
      'div',
      'vp-id',
      avatar(name, v?.uid ?? String(conv.visitorId), { online, size: 56 }),
      h('div', null, h('strong', 'vp-name', name), h('span', `vp-status${online ? ' on' : ''}`, online ? 'Online now' : v?.lastSeenAt ? `Last seen ${ago(v.lastSeenAt)}` : 'Offline')),
    ),
    v?.email && v.email !== name ? h('p', 'vp-email', v.email) : null,
    section(
      'Current page',
      h('div', { class: 'vp-current', 'data-testid': 'current-url' }, v?.currentUrl ? link(v.currentUrl) : h('span', 'muted', 'Not known yet'), online && v?.currentUrl ? h('span', 'live-tag', 'Live') : null),
    ),
    section(
      'Session',
      h(
        'dl',
        'kvs',
        local ? row('Local time', `${local} (${zone})`, 'clock') : zone ? row('Time zone', zone, 'clock') : null,
        md.language ? row('Language', text(md.language), 'globe') : null,
        typeof md.userAgent === 'string' ? row('Browser', h('span', { title: md.userAgent }, browserSummary(md.userAgent)), 'monitor') : null,
        row('Referrer', md.referrer ? link(md.referrer) : 'Direct visit', 'arrowRight'),
        md.landingPage ? row('Landing page', link(md.landingPage), 'page') : null,
        v?.createdAt ? row('First seen', dateTime(v.createdAt), 'user') : null,
      ),
    ),
    history.length
      ? section(
          'Pages visited',
          h('ol', 'vp-pages', history.map((u) => h('li', null, link(u)))),
        )
      : null,
    extra.length ? section('More details', h('dl', 'kvs', extra.map(([k, val]) => row(k, text(val))))) : null,
    section(
      'Conversation',
      h(
        'dl',
        'kvs',
        row('Status', conv.status === 'solved' ? 'Resolved' : conv.status[0].toUpperCase() + conv.status.slice(1)),
        row('Assignee', conv.assigneeId ? assignee?.fullName ?? `Agent #${conv.assigneeId}` : 'Unassigned'),
        row('Started', dateTime(conv.createdAt)),
        row('Reference', `#${conv.id}`),
        v ? row('Visitor ID', h('code', 'vp-uid', v.uid)) : null,
      ),
    ),
  );
}
