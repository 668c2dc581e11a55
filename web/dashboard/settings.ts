// Project settings: the embed snippet with a copy button, the allowed domains (chips; a pasted
// address is reduced to its host name), the widget's settings beside a live preview, and the
// project name. Each card saves on its own (PATCH only what changed) and shows "Unsaved
// changes" until then. Agents who are not managers see everything read-only.
import { api, ApiError } from './api';
import { h, icon, type IconName } from './dom';
import { widgetPreview } from './preview';
import { normaliseDomain, splitDomains } from './projects';
import type { Ctx, View } from './shell';
import type { Project, WidgetSettings } from './types';
import { button, field, toast, type Field } from './ui';

const DOMAIN_RE = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SWATCHES = ['#4f46e5', '#2563eb', '#0f766e', '#16a34a', '#ea580c', '#db2777', '#7c3aed', '#111827'];

export const snippet = (pid: number): string =>
  `<script src="${location.origin}/widget.js" data-project-id="${pid}" async></script>`;

async function copyText(text: string, fallbackFrom: HTMLElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // no clipboard API (plain http) or refused: select the text and ask the browser to copy
    const sel = window.getSelection();
    const range = document.createRange();
    range.selectNodeContents(fallbackFrom);
    sel?.removeAllRanges();
    sel?.addRange(range);
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

function card(id: string, ic: IconName, title: string, desc: string, ...body: (Node | null)[]): HTMLElement {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': id },
    h('header', 'card-head', h('span', 'card-icon', icon(ic)), h('div', null, h('h2', { id }, title), h('p', 'muted', desc))),
    ...body,
  );
}

// A save bar: hidden until something changed.
function saveBar(onSave: () => void, onDiscard: () => void): { el: HTMLElement; dirty(d: boolean): void; busy(b: boolean): void } {
  const save = button('Save changes', { kind: 'primary', type: 'submit' });
  const discard = button('Discard', { kind: 'ghost', onclick: onDiscard });
  const note = h('span', 'save-note', h('i', 'dot'), 'Unsaved changes');
  const el = h('div', 'save-bar', note, h('span', 'grow'), discard, save);
  save.addEventListener('click', (e) => {
    e.preventDefault();
    onSave();
  });
  const api_ = {
    el,
    dirty(d: boolean) {
      el.classList.toggle('dirty', d);
      save.disabled = !d;
      discard.disabled = !d;
    },
    busy(b: boolean) {
      save.disabled = b;
      save.classList.toggle('busy', b);
    },
  };
  api_.dirty(false);
  return api_;
}

export function settingsView(ctx: Ctx, initial: Project): View {
  let project = initial;
  const canEdit = project.role === 'manager';
  const ro = !canEdit;

  // ---- installation ----
  const code = h('code', { id: 'embed-code' }, snippet(project.id));
  const copyLabel = h('span', null, 'Copy');
  const copyBtn = h('button', { class: 'btn btn-secondary btn-sm copy-btn', type: 'button', 'aria-label': 'Copy embed code' }, icon('copy'), copyLabel);
  let copyTimer: ReturnType<typeof setTimeout> | undefined;
  copyBtn.addEventListener('click', () => {
    void copyText(snippet(project.id), code).then((ok) => {
      clearTimeout(copyTimer);
      copyBtn.classList.toggle('copied', ok);
      copyBtn.replaceChildren(icon(ok ? 'check' : 'info'), h('span', null, ok ? 'Copied' : 'Press Ctrl+C'));
      toast(ok ? 'Embed code copied to the clipboard' : 'Select the code and copy it with Ctrl+C', ok ? 'success' : 'info');
      copyTimer = setTimeout(() => {
        copyBtn.classList.remove('copied');
        copyBtn.replaceChildren(icon('copy'), copyLabel);
      }, 2500);
    });
  });
  const install = card(
    'set-install',
    'code',
    'Install the widget',
    'Paste this line before </body> on every page where visitors should be able to chat.',
    h('div', 'snippet', h('pre', null, code), copyBtn),
    project.whitelistedDomains.length
      ? null
      : h('p', 'notice warn', icon('info'), 'Add your website’s domain below first: the widget only loads on allowed domains.'),
  );

  // ---- domains ----
  let domains = [...project.whitelistedDomains];
  const chips = h('ul', { class: 'chips', 'aria-label': 'Allowed domains' });
  const domainInput = h('input', { type: 'text', placeholder: 'shop.example.com or *.example.com', spellcheck: 'false', disabled: ro, autocomplete: 'off' });
  const domainField = field('Add a domain', domainInput, 'A host name, an IP address, or *.example.com for every subdomain. Ports and paths are ignored.');
  const addBtn = button('Add', { kind: 'secondary', icon: 'plus', attrs: { disabled: ro } });
  const domainsBar = saveBar(() => void saveDomains(), () => {
    domains = [...project.whitelistedDomains];
    drawChips();
  });
  const drawChips = (): void => {
    chips.replaceChildren(
      ...(domains.length
        ? domains.map((d) =>
            h(
              'li',
              'chip',
              icon('globe', 'ic ic-sm'),
              h('span', null, d),
              ro
                ? null
                : h(
                    'button',
                    {
                      type: 'button',
                      class: 'chip-x',
                      'aria-label': `Remove ${d}`,
                      onclick: () => {
                        domains = domains.filter((x) => x !== d);
                        drawChips();
                        domainInput.focus();
                      },
                    },
                    icon('x'),
                  ),
            ),
          )
        : [h('li', 'chips-empty', 'No domains yet. The widget will not load on any site.')]),
    );
    const same = domains.length === project.whitelistedDomains.length && domains.every((d, i) => d === project.whitelistedDomains[i]);
    domainsBar.dirty(!same);
  };
  const addDomains = (): void => {
    domainField.setError(null);
    const entries = splitDomains(domainInput.value).map(normaliseDomain).filter(Boolean);
    if (!entries.length) return;
    const bad = entries.find((d) => !DOMAIN_RE.test(d));
    if (bad) {
      domainField.setError(`“${bad}” is not a host name, an IP address or *.example.com`);
      return;
    }
    for (const d of entries) if (!domains.includes(d)) domains.push(d);
    domainInput.value = '';
    drawChips();
  };
  domainInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      addDomains();
    }
  });
  addBtn.addEventListener('click', addDomains);
  async function saveDomains(): Promise<void> {
    if (domainInput.value.trim()) addDomains();
    domainsBar.busy(true);
    try {
      project = await api<Project>('PATCH', `/projects/${project.id}`, { whitelistedDomains: domains });
      domains = [...project.whitelistedDomains];
      await ctx.reloadProjects();
      toast('Domains saved', 'success');
    } catch (e) {
      domainField.setError((e as ApiError).detail ?? String(e));
    } finally {
      domainsBar.busy(false);
      drawChips();
    }
  }
  drawChips();
  const domainsCard = card(
    'set-domains',
    'shield',
    'Allowed domains',
    'The widget connects only from pages on these domains.',
    chips,
    ro ? null : h('div', 'add-row', domainField.wrap, addBtn),
    ro ? null : domainsBar.el,
  );

  // ---- widget ----
  let saved: WidgetSettings = { ...project.widgetSettings };
  const preview = widgetPreview(saved);
  const f: Record<string, Field<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>> = {};
  const text = (key: keyof WidgetSettings, label: string, max: number, hint?: string, area = false): HTMLElement => {
    const input = area
      ? h('textarea', { rows: '3', maxlength: String(max), disabled: ro, name: key })
      : h('input', { type: 'text', maxlength: String(max), disabled: ro, name: key });
    f[key] = field(label, input, hint);
    return f[key].wrap;
  };
  const color = h('input', { type: 'color', 'aria-label': 'Pick a colour', disabled: ro, class: 'color-input' });
  const hex = h('input', { type: 'text', maxlength: '7', spellcheck: 'false', disabled: ro, name: 'primaryColor', class: 'hex-input' });
  f.primaryColor = field('Brand colour', hex);
  const swatches = h(
    'div',
    { class: 'swatches', role: 'group', 'aria-label': 'Suggested colours' },
    SWATCHES.map((c) =>
      h('button', {
        type: 'button',
        class: 'swatch',
        style: { '--sw': c },
        'aria-label': `Use ${c}`,
        disabled: ro,
        onclick: () => {
          hex.value = c;
          color.value = c;
          changed();
        },
      }),
    ),
  );
  const colorWrap = f.primaryColor.wrap;
  const colorRow = h('div', 'color-row');
  colorWrap.insertBefore(colorRow, hex);
  colorRow.append(color, hex, swatches);

  const radios = (key: 'theme' | 'position', legend: string, options: [string, string][]): HTMLElement =>
    h(
      'fieldset',
      'field choice',
      h('legend', null, legend),
      h(
        'div',
        'choice-row',
        options.map(([value, label]) =>
          h(
            'label',
            'choice-opt',
            h('input', { type: 'radio', name: `ws-${key}`, value, disabled: ro, onchange: () => changed() }),
            h('span', `choice-art choice-${key}-${value}`, h('i')),
            h('span', 'choice-label', label),
          ),
        ),
      ),
    );
  const themeSet = radios('theme', 'Theme', [
    ['light', 'Light'],
    ['dark', 'Dark'],
  ]);
  const posSet = radios('position', 'Position', [
    ['bottom-left', 'Bottom left'],
    ['bottom-right', 'Bottom right'],
  ]);
  const logoInput = h('input', { type: 'url', maxlength: '2048', placeholder: 'https://example.com/logo.png', disabled: ro, name: 'companyLogoUrl' });
  f.companyLogoUrl = field('Logo URL', logoInput, 'Square image, shown in the header. Leave empty to show the agent name’s initial.');
  const delay = h('input', { type: 'number', min: '0', max: '600', step: '1', disabled: ro, name: 'autoOpenDelay', class: 'num-input' });
  f.autoOpenDelay = field('Open automatically after (seconds)', delay, '0 keeps the chat closed until the visitor opens it.');
  const history = h(
    'select',
    { disabled: ro, name: 'historyVisibility' },
    h('option', { value: 'limit_to_active' }, 'Only the open conversation'),
    h('option', { value: 'forever' }, 'All past conversations'),
  );
  f.historyVisibility = field('History shown to returning visitors', history);

  const widgetBar = saveBar(() => void saveWidget(), () => {
    fill(saved);
    changed();
  });
  const form = h(
    'form',
    { class: 'widget-form', novalidate: true },
    h('div', 'form-grid', text('headerText', 'Header text', 60), text('agentDisplayName', 'Agent name', 60, 'Shown to visitors instead of your own name.')),
    text('welcomeMessage', 'Welcome message', 500, undefined, true),
    text('offlineMessage', 'Away message', 500, 'Shown when no agent is online.', true),
    colorWrap,
    h('div', 'form-grid', themeSet, posSet),
    f.companyLogoUrl.wrap,
    h('div', 'form-grid', f.autoOpenDelay.wrap, f.historyVisibility.wrap),
    ro ? null : widgetBar.el,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void saveWidget();
  });
  form.addEventListener('input', (e) => {
    if (e.target === color) hex.value = color.value;
    if (e.target === hex && /^#[0-9a-f]{6}$/i.test(hex.value)) color.value = hex.value.toLowerCase();
    changed();
  });

  function radioValue(key: string): string {
    return form.querySelector<HTMLInputElement>(`input[name="ws-${key}"]:checked`)?.value ?? '';
  }

  function fill(s: WidgetSettings): void {
    for (const k of ['headerText', 'agentDisplayName', 'welcomeMessage', 'offlineMessage'] as const) f[k].input.value = s[k];
    hex.value = s.primaryColor;
    color.value = /^#[0-9a-f]{6}$/i.test(s.primaryColor) ? s.primaryColor : '#4f46e5';
    logoInput.value = s.companyLogoUrl ?? '';
    delay.value = String(s.autoOpenDelay);
    history.value = s.historyVisibility;
    for (const k of ['theme', 'position'] as const) {
      for (const r of form.querySelectorAll<HTMLInputElement>(`input[name="ws-${k}"]`)) r.checked = r.value === s[k];
    }
    for (const x of Object.values(f)) x.setError(null);
  }

  function read(): WidgetSettings {
    const n = Number(delay.value);
    return {
      headerText: f.headerText.input.value,
      agentDisplayName: f.agentDisplayName.input.value,
      welcomeMessage: f.welcomeMessage.input.value,
      offlineMessage: f.offlineMessage.input.value,
      primaryColor: hex.value.trim().toLowerCase(),
      theme: radioValue('theme') as WidgetSettings['theme'],
      position: radioValue('position') as WidgetSettings['position'],
      companyLogoUrl: logoInput.value.trim() || null,
      autoOpenDelay: Number.isFinite(n) ? n : 0,
      historyVisibility: history.value as WidgetSettings['historyVisibility'],
    };
  }

  function diff(): Partial<WidgetSettings> {
    const now = read();
    const out: Partial<WidgetSettings> = {};
    for (const k of Object.keys(now) as (keyof WidgetSettings)[]) {
      if (now[k] !== saved[k]) (out as Record<string, unknown>)[k] = now[k];
    }
    return out;
  }

  function changed(): void {
    preview.update(read());
    widgetBar.dirty(Object.keys(diff()).length > 0);
  }

  async function saveWidget(): Promise<void> {
    const body = diff();
    if (!Object.keys(body).length) return;
    for (const x of Object.values(f)) x.setError(null);
    if (body.primaryColor !== undefined && !/^#[0-9a-f]{6}$/.test(body.primaryColor)) {
      f.primaryColor.setError('Use a colour like #4f46e5');
      hex.focus();
      return;
    }
    widgetBar.busy(true);
    try {
      project = await api<Project>('PATCH', `/projects/${project.id}/widget-settings`, body);
      saved = { ...project.widgetSettings };
      await ctx.reloadProjects();
      toast('Widget settings saved. Visitors see them on their next page load.', 'success');
    } catch (e) {
      const err = e as ApiError;
      const target = err.field ? f[err.field] : undefined;
      if (target) {
        target.setError(err.detail.charAt(0).toUpperCase() + err.detail.slice(1));
        target.input.focus();
      } else toast(err.message, 'error');
    } finally {
      widgetBar.busy(false);
      changed();
    }
  }

  fill(saved);
  const widgetCard = card('set-widget', 'palette', 'Chat widget', 'How the chat looks and greets visitors on your website.', h('div', 'widget-layout', form, h('div', 'preview-col', preview.el)));

  // ---- project ----
  const nameInput = h('input', { type: 'text', maxlength: '100', disabled: ro, value: project.name });
  const nameField = field('Project name', nameInput);
  const nameBar = saveBar(() => void saveName(), () => {
    nameInput.value = project.name;
    nameBar.dirty(false);
  });
  nameInput.addEventListener('input', () => nameBar.dirty(nameInput.value.trim() !== project.name && nameInput.value.trim() !== ''));
  nameInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      void saveName();
    }
  });
  async function saveName(): Promise<void> {
    const name = nameInput.value.trim();
    if (!name || name === project.name) return;
    nameField.setError(null);
    nameBar.busy(true);
    try {
      project = await api<Project>('PATCH', `/projects/${project.id}`, { name });
      await ctx.reloadProjects();
      heading.textContent = project.name;
      toast('Project renamed', 'success');
      nameBar.dirty(false);
    } catch (e) {
      nameField.setError((e as ApiError).detail);
    } finally {
      nameBar.busy(false);
    }
  }
  const projectCard = card('set-project', 'folder', 'Project', 'The name your team sees in Parley.', nameField.wrap, ro ? null : nameBar.el);

  const heading = h('span', null, project.name);
  const el = h(
    'div',
    'page page-settings',
    h(
      'header',
      'page-head',
      h('div', null, h('p', 'eyebrow', 'Settings'), h('h1', null, heading), h('p', 'muted', canEdit ? 'Install the widget, choose where it may load and how it looks.' : 'Only managers can change these settings.')),
      h('a', { class: 'btn btn-secondary', href: `#/inbox/${project.id}` }, icon('inbox'), h('span', null, 'Open inbox')),
    ),
    ro ? h('p', 'notice', icon('info'), 'You are an agent in this project: settings are read-only.') : null,
    install,
    domainsCard,
    widgetCard,
    projectCard,
  );
  return { el, title: `Settings · ${project.name}`, destroy() {} };
}
