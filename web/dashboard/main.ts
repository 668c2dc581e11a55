// The agent dashboard (served at /app/). Start-up: GET /auth/refresh turns the refresh cookie
// into an access token; without a session the sign-in screen is shown, and the page the agent
// asked for (#/inbox/1/42) is opened after signing in. Signed in, the shell holds one view per
// route and the live connection follows the project on screen. A session that ends (logout,
// revoked tokens) returns to the sign-in screen; a server that cannot be reached at start-up
// gets a retrying "cannot reach" screen instead of a sign-in form.
import { api, ApiError, logout, me, onSessionLost, refresh } from './api';
import { authView } from './auth';
import { h, logo } from './dom';
import { InboxView } from './inbox';
import { Live } from './live';
import { initNotify, setTitle } from './notify';
import { projectsView } from './projects';
import { settingsView } from './settings';
import { parseRoute, Shell, type Ctx, type Route, type View } from './shell';
import type { Project, User } from './types';
import { button, spinner, toast } from './ui';

const root = document.getElementById('app') as HTMLElement;
const LAST_PROJECT = 'parley.project';

let ctx: Ctx | null = null;
let shell: Shell | null = null;
let view: View | null = null;
let viewKey = '';
let currentPid: number | null = null;
let afterLogin: string | null = null;
let booting = false;
let firstMount = true;

function show(el: HTMLElement): void {
  root.replaceChildren(el);
}

function splash(): void {
  show(h('div', 'splash', logo(44), spinner('Loading Parley')));
  setTitle('');
}

function unreachable(retry: () => void): void {
  let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(retry, 3000);
  show(
    h(
      'div',
      'splash',
      logo(44),
      h('h1', null, 'Cannot reach the Parley server'),
      h('p', 'muted', 'Retrying every few seconds. Your session is kept.'),
      button('Try now', {
        kind: 'secondary',
        onclick: () => {
          clearTimeout(timer);
          timer = undefined;
          retry();
        },
      }),
    ),
  );
}

function lastProject(): number | null {
  const n = Number(localStorage.getItem(LAST_PROJECT));
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

function defaultHash(c: Ctx): string {
  const last = lastProject();
  const p = c.projects.find((x) => x.id === last) ?? c.projects[0];
  return p ? `#/inbox/${p.id}` : '#/projects';
}

function go(hash: string, replace = false): void {
  if (location.hash === hash) route();
  else if (replace) location.replace(hash);
  else location.hash = hash;
}

async function loadProjects(): Promise<Project[]> {
  return api<Project[]>('GET', '/projects');
}

function teardown(): void {
  view?.destroy();
  view = null;
  viewKey = '';
  ctx?.live.stop();
  ctx = null;
  shell?.destroy();
  shell = null;
  currentPid = null;
}

function sessionLost(): void {
  if (!ctx) return;
  const r = parseRoute(location.hash);
  afterLogin = r.name === 'login' || r.name === 'signup' ? null : location.hash;
  teardown();
  toast('Your session has ended. Please sign in again.', 'info');
  go('#/login', true);
}

async function doLogout(): Promise<void> {
  afterLogin = null;
  teardown();
  await logout();
  go('#/login', true);
  toast('You are signed out', 'success');
}

async function enter(user?: User): Promise<void> {
  const [u, projects] = await Promise.all([user ? Promise.resolve(user) : me(), loadProjects()]);
  const live = new Live(sessionLost);
  const c: Ctx = {
    user: u,
    projects,
    live,
    go: (hash) => go(hash),
    async reloadProjects() {
      c.projects = await loadProjects();
    },
    project: (id) => c.projects.find((p) => p.id === id),
    setUnread: (n) => shell?.setUnread(n),
    logout: () => void doLogout(),
  };
  ctx = c;
  firstMount = true;
  shell = new Shell(c, () => currentPid);
  show(shell.el);
  live.start();
  const target = afterLogin;
  afterLogin = null;
  const r = parseRoute(target ?? location.hash);
  if (target && r.name !== 'home') go(target, true);
  else route();
}

async function boot(): Promise<void> {
  if (booting) return;
  booting = true;
  splash();
  let token: string | null;
  try {
    token = await refresh();
  } catch (e) {
    booting = false;
    if (e instanceof ApiError && e.status === 0) unreachable(() => void boot());
    else {
      toast((e as Error).message, 'error');
      route();
    }
    return;
  }
  try {
    if (token) await enter();
  } catch (e) {
    teardown();
    if (e instanceof ApiError && e.status === 0) {
      booting = false;
      unreachable(() => void boot());
      return;
    }
    toast((e as Error).message, 'error');
  }
  booting = false;
  if (!ctx) route();
}

function mount(key: string, make: () => View, active: 'inbox' | 'projects' | 'settings' | null): void {
  if (!shell) return;
  view?.destroy();
  view = make();
  viewKey = key;
  shell.main.replaceChildren(view.el);
  shell.setActive(active, view.title);
  shell.main.scrollTop = 0;
  // Move focus into the new page for keyboard and screen-reader users, unless it is already
  // somewhere meaningful inside it.
  // The first page after signing in keeps the natural start (the skip link comes first).
  if (firstMount) firstMount = false;
  else if (!shell.main.contains(document.activeElement)) shell.main.focus({ preventScroll: true });
}

// A view whose content needs a request first: a spinner until then, an error with a retry.
function loadingView(title: string, load: () => Promise<View>): View {
  const el = h('div', 'view-loading', spinner('Loading'));
  let inner: View | null = null;
  let dead = false;
  const run = (): void => {
    el.replaceChildren(spinner('Loading'));
    load()
      .then((v) => {
        if (dead) return v.destroy();
        inner = v;
        el.replaceChildren(v.el);
      })
      .catch((e: Error) => {
        if (dead) return;
        el.replaceChildren(h('div', 'empty', h('h3', null, 'Could not load this page'), h('p', null, e.message), button('Try again', { kind: 'secondary', onclick: run })));
      });
  };
  run();
  return {
    el,
    title,
    destroy() {
      dead = true;
      inner?.destroy();
    },
  };
}

function route(): void {
  if (booting && !ctx) return;
  const r: Route = parseRoute(location.hash);
  if (!ctx) {
    if (r.name !== 'login' && r.name !== 'signup') {
      if (r.name !== 'home') afterLogin = location.hash;
      location.replace('#/login');
      return;
    }
    show(
      authView(r.name, (user) => {
        splash();
        enter(user).catch((e: Error) => {
          toast(e.message, 'error');
          go('#/login', true);
        });
      }),
    );
    setTitle(r.name === 'login' ? 'Sign in' : 'Create your account');
    return;
  }
  const c = ctx;
  switch (r.name) {
    case 'login':
    case 'signup':
    case 'home':
      go(defaultHash(c), true);
      return;
    case 'projects':
      currentPid = currentPid ?? lastProject();
      mount('projects', () => projectsView(c), 'projects');
      return;
    case 'inbox':
    case 'settings': {
      const p = c.project(r.pid);
      if (!p) {
        toast('That project does not exist or you are not a member of it.', 'error');
        go('#/projects', true);
        return;
      }
      currentPid = p.id;
      localStorage.setItem(LAST_PROJECT, String(p.id));
      c.live.setProject(p.id);
      const key = `${r.name}:${p.id}`;
      if (viewKey === key && view?.update?.(r)) return;
      if (r.name === 'inbox') mount(key, () => new InboxView(c, p, r.cid), 'inbox');
      else mount(key, () => loadingView(`Settings · ${p.name}`, () => api<Project>('GET', `/projects/${p.id}`).then((fresh) => settingsView(c, fresh))), 'settings');
      return;
    }
  }
}

addEventListener('hashchange', route);
onSessionLost(sessionLost);
initNotify();
void boot();
