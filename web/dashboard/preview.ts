// The live preview of the chat widget in the settings: a static look-alike (no widget.js, no
// connection) drawn inside a small browser frame, redrawn from the settings being edited:
// primary colour and the text colour on it, light or dark theme, bottom-left or bottom-right,
// header text, logo (or the agent name's initial), agent name, welcome message, and the offline
// message when "Away" is chosen.
import { h, icon, safeHref } from './dom';
import { onColor } from './format';
import type { WidgetSettings } from './types';

export interface Preview {
  el: HTMLElement;
  update(s: WidgetSettings): void;
}

export function widgetPreview(initial: WidgetSettings): Preview {
  let mode: 'online' | 'away' = 'online';
  let current = initial;
  const stage = h('div', 'pv-widget');
  const modeBtns = (['online', 'away'] as const).map((m) =>
    h(
      'button',
      {
        type: 'button',
        'aria-pressed': String(m === mode),
        onclick: () => {
          mode = m;
          for (const b of modeBtns) b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
          draw(current);
        },
        dataset: { mode: m },
      },
      m === 'online' ? 'Online' : 'Away',
    ),
  );

  const el = h(
    'figure',
    { class: 'preview', 'aria-label': 'Widget preview' },
    h(
      'div',
      'preview-top',
      h('figcaption', null, h('strong', null, 'Live preview'), h('span', 'muted', 'Updates as you edit')),
      h('div', { class: 'segmented segmented-sm', role: 'group', 'aria-label': 'Preview state' }, modeBtns),
    ),
    h(
      'div',
      'pv-browser',
      h('div', { class: 'pv-bar', 'aria-hidden': 'true' }, h('i'), h('i'), h('i'), h('span', 'pv-url', 'yourwebsite.com')),
      h(
        'div',
        'pv-site',
        h('div', { class: 'pv-skel', 'aria-hidden': 'true' }, h('i', 'w60'), h('i', 'w90'), h('i', 'w75'), h('b'), h('i', 'w80'), h('i', 'w50')),
        stage,
      ),
    ),
  );

  function draw(s: WidgetSettings): void {
    current = s;
    const color = /^#[0-9a-f]{6}$/i.test(s.primaryColor) ? s.primaryColor : '#4f46e5';
    stage.dataset.theme = s.theme;
    stage.dataset.side = s.position === 'bottom-left' ? 'left' : 'right';
    stage.style.setProperty('--p', color);
    stage.style.setProperty('--pt', onColor(color));
    const agent = s.agentDisplayName.trim() || 'Support';
    const initial = h('span', 'pv-av', (Array.from(agent)[0] ?? 'S').toUpperCase());
    const logoUrl = safeHref(s.companyLogoUrl ?? '');
    let av: HTMLElement = initial;
    if (logoUrl) {
      const img = h('img', { class: 'pv-av pv-logo', src: logoUrl, alt: '', referrerpolicy: 'no-referrer' });
      img.addEventListener('error', () => img.replaceWith(initial));
      av = img;
    }
    const away = mode === 'away';
    stage.replaceChildren(
      h(
        'div',
        { class: 'pv-win', 'aria-hidden': 'true' },
        h(
          'div',
          'pv-hd',
          av,
          h('div', 'pv-ht', h('div', 'pv-ti', s.headerText.trim() || 'Chat with us'), h('div', `pv-su${away ? ' away' : ''}`, away ? 'Away' : agent)),
          icon('down', 'ic pv-x'),
        ),
        h(
          'div',
          'pv-ls',
          h('div', 'pv-who', agent),
          s.welcomeMessage.trim() ? h('div', 'pv-b pv-them', s.welcomeMessage) : null,
          away && s.offlineMessage.trim() ? h('div', 'pv-b pv-them pv-off', s.offlineMessage) : null,
          h('div', 'pv-b pv-me', 'Hi! Do you ship to Norway?'),
          h('div', 'pv-mt', 'Sent · 10:24'),
        ),
        h('div', 'pv-cp', h('span', 'pv-in', 'Write a message…'), h('span', 'pv-sd', icon('send', 'ic'))),
      ),
      h('div', { class: 'pv-ln', 'aria-hidden': 'true' }, icon('down', 'ic')),
    );
    el.setAttribute(
      'aria-label',
      `Widget preview: ${s.theme} theme, ${s.position.replace('-', ' ')}, colour ${color}, header “${s.headerText}”`,
    );
  }

  draw(initial);
  return { el, update: draw };
}
