// The signed-in frame: the navigation rail (a bottom bar on a phone) with Inbox, Projects and
// Settings, the account menu (sound on/off, log out), the "reconnecting" banner, and the main
// area where the view of the current route lives. Routes are hash routes (the server serves
// /app/ only): #/inbox/:pid[/:cid], #/settings/:pid, #/projects.
import { h, icon, logo, type IconName } from './dom';
import type { Live } from './live';
import { setSound, setTitle, soundOn } from './notify';
import type { Project, User } from './types';
import { avatar } from './ui';

export type Route =
  | { name: 'login' }
  | { name: 'signup' }
  | { name: 'projects' }
  | { name: 'inbox'; pid: number; cid: number | null }
  | { name: 'settings'; pid: number }
  | { name: 'home' };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const id = (s: string | undefined): number | null => (s && /^[1-9]\d{0,15}$/.test(s) ? Number(s) : null);
  switch (parts[0]) {
    case 'login':
      return { name: 'login' };
    case 'signup':
      return { name: 'signup' };
    case 'projects':
      return { name: 'projects' };
    case 'inbox': {
      const pid = id(parts[1]);
      return pid ? { name: 'inbox', pid, cid: id(parts[2]) } : { name: 'home' };
    }
    case 'settings': {
      const pid = id(parts[1]);
      return pid ? { name: 'settings', pid } : { name: 'home' };
    }
    default:
      return { name: 'home' };
  }
}

export interface View {
  el: HTMLElement;
  title: string;
  destroy(): void;
  // A new route for the same view (e.g. another conversation of the same inbox): true when the
  // view took it without being rebuilt.
  update?(r: Route): boolean;
}

export interface Ctx {
  user: User;
  projects: Project[];
  live: Live;
  go(hash: string): void;
  reloadProjects(): Promise<void>;
  project(id: number): Project | undefined;
  // Total unread conversations of the inbox on screen (the rail's badge).
  setUnread(n: number): void;
  logout(): void;
}

interface NavItem {
  key: 'inbox' | 'projects' | 'settings';
  label: string;
  icon: IconName;
  href: () => string;
}

export class Shell {
  el: HTMLElement;
  main: HTMLElement;
  private links = new Map<string, HTMLAnchorElement>();
  private badge: HTMLSpanElement;
  private banner: HTMLDivElement;
  private menu: HTMLDivElement;
  private menuBtn: HTMLButtonElement;
  private soundSwitch: HTMLButtonElement;
  private bannerTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private ctx: Ctx,
    private currentPid: () => number | null,
  ) {
    const items: NavItem[] = [
      { key: 'inbox', label: 'Inbox', icon: 'inbox', href: () => (this.currentPid() ? `#/inbox/${this.currentPid()}` : '#/projects') },
      { key: 'projects', label: 'Projects', icon: 'grid', href: () => '#/projects' },
      { key: 'settings', label: 'Settings', icon: 'sliders', href: () => (this.currentPid() ? `#/settings/${this.currentPid()}` : '#/projects') },
    ];
    this.badge = h('span', { class: 'rail-badge', hidden: true, 'aria-hidden': 'true' });
    const nav = h(
      'nav',
      { class: 'rail', 'aria-label': 'Main' },
      h('a', { class: 'rail-logo', href: '#/', 'aria-label': 'Parley home' }, logo(34)),
      h(
        'ul',
        'rail-links',
        items.map((it) => {
          const a = h('a', { class: 'rail-link', href: it.href() }, icon(it.icon), h('span', 'rail-label', it.label), it.key === 'inbox' ? this.badge : null);
          this.links.set(it.key, a);
          a.addEventListener('focus', () => a.setAttribute('href', it.href()));
          a.addEventListener('mouseenter', () => a.setAttribute('href', it.href()));
          a.addEventListener('click', () => a.setAttribute('href', it.href()));
          return h('li', null, a);
        }),
      ),
    );

    // account menu
    this.soundSwitch = h('button', { class: 'menu-item switch-row', type: 'button', role: 'switch', 'aria-checked': String(soundOn()) });
    this.renderSound();
    this.soundSwitch.addEventListener('click', () => {
      setSound(!soundOn());
      this.renderSound();
    });
    const logoutBtn = h('button', { class: 'menu-item danger', type: 'button', onclick: () => this.ctx.logout() }, icon('logout'), h('span', null, 'Log out'));
    this.menu = h(
      'div',
      { class: 'menu', id: 'account-menu', hidden: true, role: 'group', 'aria-label': 'Account' },
      h('div', 'menu-user', h('strong', null, ctx.user.fullName), h('span', 'muted', ctx.user.email)),
      this.soundSwitch,
      logoutBtn,
    );
    this.menuBtn = h(
      'button',
      {
        class: 'rail-user',
        type: 'button',
        'aria-label': `Account: ${ctx.user.fullName}`,
        'aria-expanded': 'false',
        'aria-controls': 'account-menu',
      },
      avatar(ctx.user.fullName, `user:${ctx.user.id}`, { size: 34 }),
    );
    this.menuBtn.addEventListener('click', () => this.toggleMenu());
    this.menu.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        this.toggleMenu(false);
        this.menuBtn.focus();
      }
    });
    document.addEventListener('mousedown', this.outside);
    nav.append(h('div', 'rail-account', this.menuBtn, this.menu));

    this.banner = h('div', { class: 'conn-banner', role: 'status', hidden: true }, h('span', 'conn-spin'), 'Reconnecting to Parley… Messages will catch up when the connection is back.');
    this.main = h('main', { class: 'main', id: 'main', tabindex: '-1' });
    this.el = h(
      'div',
      'shell',
      h('a', { class: 'skip', href: '#main', onclick: (e: MouseEvent) => (e.preventDefault(), this.main.focus()) }, 'Skip to content'),
      nav,
      h('div', 'shell-body', this.banner, this.main),
    );
    ctx.live.onState((s) => {
      clearTimeout(this.bannerTimer);
      if (s === 'online') this.banner.hidden = true;
      // A blip shorter than a second and a half is not worth a banner.
      else this.bannerTimer = setTimeout(() => (this.banner.hidden = ctx.live.state === 'online'), 1500);
    });
  }

  // A click outside the account menu closes it.
  private outside = (e: MouseEvent): void => {
    if (!this.menu.hidden && !this.menu.contains(e.target as Node) && !this.menuBtn.contains(e.target as Node)) this.toggleMenu(false);
  };

  destroy(): void {
    document.removeEventListener('mousedown', this.outside);
  }

  private renderSound(): void {
    const on = soundOn();
    this.soundSwitch.setAttribute('aria-checked', String(on));
    this.soundSwitch.replaceChildren(icon(on ? 'sound' : 'mute'), h('span', null, 'Sound for new messages'), h('span', { class: 'switch', 'aria-hidden': 'true' }, h('i')));
  }

  private toggleMenu(open = this.menu.hidden): void {
    this.menu.hidden = !open;
    this.menuBtn.setAttribute('aria-expanded', String(open));
    if (open) this.soundSwitch.focus();
  }

  setActive(key: 'inbox' | 'projects' | 'settings' | null, title: string): void {
    for (const [k, a] of this.links) {
      if (k === key) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    setTitle(title);
  }

  setUnread(n: number): void {
    this.badge.hidden = n <= 0;
    this.badge.textContent = n > 99 ? '99+' : String(n);
    const inbox = this.links.get('inbox');
    inbox?.setAttribute('aria-label', n > 0 ? `Inbox, ${n} unread` : 'Inbox');
  }
}
