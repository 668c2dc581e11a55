// The projects page: a card per project the agent belongs to (role, allowed domains, links to
// its inbox and settings), an empty state for a new account, and the "New project" dialog
// (name and optional domains; Enter creates, Escape cancels).
import { api, ApiError } from './api';
import { h, icon } from './dom';
import { dateOnly, plural } from './format';
import type { Ctx, View } from './shell';
import type { Project } from './types';
import { button, dialog, empty, field, toast } from './ui';

// "https://Shop.Example.com:8443/cart" → "shop.example.com"; anything else trimmed, lower-cased.
export function normaliseDomain(s: string): string {
  let d = s.trim().toLowerCase();
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/.exec(d);
  if (m) d = m[1];
  d = d.replace(/[/?#].*$/, '').replace(/^.*@/, '');
  if (!d.startsWith('[')) d = d.replace(/:\d+$/, '');
  return d.replace(/\.$/, '');
}

// "shop.example.com, *.example.com\nlocalhost" → list (blank entries dropped).
export function splitDomains(s: string): string[] {
  return s
    .split(/[\s,;]+/)
    .map((d) => d.trim())
    .filter(Boolean);
}

export function newProjectDialog(ctx: Ctx): void {
  dialog(
    'New project',
    (close) => {
      const name = field('Project name', h('input', { type: 'text', maxlength: '100', placeholder: 'e.g. Northwind store', required: true }));
      const domains = field(
        'Website domains',
        h('input', { type: 'text', placeholder: 'shop.example.com, *.example.com', spellcheck: 'false' }),
        'Only pages on these domains can show the chat widget. You can change them later.',
      );
      const alert = h('div', { class: 'form-alert', role: 'alert', hidden: true });
      const create = button('Create project', { kind: 'primary', type: 'submit' });
      const form = h(
        'form',
        { class: 'dialog-form', novalidate: true },
        alert,
        name.wrap,
        domains.wrap,
        h('div', 'dialog-actions', button('Cancel', { kind: 'ghost', onclick: close }), create),
      );
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        name.setError(null);
        domains.setError(null);
        alert.hidden = true;
        const n = name.input.value.trim();
        if (!n) {
          name.setError('Give the project a name.');
          name.input.focus();
          return;
        }
        create.disabled = true;
        const list = [...new Set(splitDomains(domains.input.value).map(normaliseDomain).filter(Boolean))];
        api<Project>('POST', '/projects', { name: n, whitelistedDomains: list })
          .then(async (p) => {
            close();
            await ctx.reloadProjects();
            toast(`Project “${p.name}” created`, 'success');
            ctx.go(`#/settings/${p.id}`);
          })
          .catch((e: ApiError) => {
            if (e.field === 'name') name.setError(e.detail);
            else if (e.field === 'whitelistedDomains') domains.setError(e.detail);
            else {
              alert.textContent = e.message;
              alert.hidden = false;
            }
          })
          .finally(() => {
            create.disabled = false;
          });
      });
      return form;
    },
    { description: 'A project is one website (or a group of sites) with its own inbox and chat widget.' },
  );
}

function card(p: Project): HTMLElement {
  const domains = p.whitelistedDomains;
  return h(
    'li',
    'project-card',
    h(
      'div',
      'project-card-head',
      h('span', { class: 'project-mark', 'aria-hidden': 'true', style: { '--pc': p.widgetSettings.primaryColor } }, Array.from(p.name)[0]?.toUpperCase() ?? 'P'),
      h('div', 'project-card-title', h('h2', null, h('a', { href: `#/inbox/${p.id}` }, p.name)), h('span', 'muted', `Created ${dateOnly(p.createdAt)}`)),
      h('span', `pill ${p.role === 'manager' ? 'pill-brand' : ''}`, p.role === 'manager' ? 'Manager' : 'Agent'),
    ),
    h(
      'div',
      'project-domains',
      icon('globe'),
      domains.length
        ? h('span', null, domains.slice(0, 3).join(', '), domains.length > 3 ? ` and ${domains.length - 3} more` : '')
        : h('span', 'warn-text', 'No domains yet: the widget will not load anywhere'),
    ),
    h(
      'div',
      'project-card-actions',
      h('a', { class: 'btn btn-primary btn-sm', href: `#/inbox/${p.id}` }, icon('inbox'), h('span', null, 'Open inbox')),
      h('a', { class: 'btn btn-secondary btn-sm', href: `#/settings/${p.id}` }, icon('sliders'), h('span', null, 'Settings')),
    ),
  );
}

export function projectsView(ctx: Ctx): View {
  const newBtn = button('New project', { kind: 'primary', icon: 'plus', onclick: () => newProjectDialog(ctx) });
  const list = ctx.projects;
  const el = h(
    'div',
    'page',
    h(
      'header',
      'page-head',
      h('div', null, h('h1', null, 'Projects'), h('p', 'muted', list.length ? `${plural(list.length, 'project')} you can answer chats for.` : 'Set up your first website.')),
      list.length ? newBtn : null,
    ),
    list.length
      ? h('ul', { class: 'project-grid', 'aria-label': 'Your projects' }, list.map(card))
      : empty(
          'folder',
          'Create your first project',
          'A project connects a website to this inbox. Add its domain, paste one script tag, and visitors can start chatting.',
          newBtn,
          'empty-page',
        ),
  );
  return { el, title: 'Projects', destroy() {} };
}
