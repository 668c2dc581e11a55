// DOM helpers for the dashboard. Everything is built with createElement and text nodes: there is
// no innerHTML anywhere, so text from visitors, agents or the server can never become markup.
// Links to addresses that came from outside go through safeHref(), which lets only http(s)
// through (never javascript: or data:). Icons are our own SVG path data.

export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (ev: never) => void;
export type Props = Record<string, unknown>;

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'readOnly', 'required']);

function add(parent: Node, kids: Child[]): void {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) add(parent, k);
    else if (typeof k === 'string' || typeof k === 'number') parent.appendChild(document.createTextNode(String(k)));
    else parent.appendChild(k);
  }
}

// h('button', {class: 'btn', type: 'button', onclick: fn, 'aria-label': 'Close'}, 'text', node)
// props: `class`, `on<event>` functions, `dataset` {…}, `style` {prop: value}, DOM properties
// (value, checked, disabled, hidden, …), anything else as an attribute (false/null: left out).
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | string | null,
  ...kids: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (typeof props === 'string') e.className = props;
  else if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = String(v);
      else if (k.startsWith('on') && typeof v === 'function') {
        e.addEventListener(k.slice(2), v as EventListener);
      } else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'style') {
        for (const [p, s] of Object.entries(v as Record<string, string>)) e.style.setProperty(p, s);
      } else if (PROPS.has(k)) (e as unknown as Record<string, unknown>)[k] = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  add(e, kids);
  return e;
}

export function append(parent: Node, ...kids: Child[]): void {
  add(parent, kids);
}

export function replace(parent: Element, ...kids: Child[]): void {
  parent.replaceChildren();
  add(parent, kids);
}

export function on<K extends keyof HTMLElementEventMap>(
  target: EventTarget,
  type: K,
  fn: (ev: HTMLElementEventMap[K]) => void,
  opts?: AddEventListenerOptions,
): () => void {
  target.addEventListener(type, fn as EventListener, opts);
  return () => target.removeEventListener(type, fn as EventListener, opts);
}

export type { Handler };

// An http(s) address (absolute) or null: for href attributes built from data we did not write.
export function safeHref(u: unknown): string | null {
  if (typeof u !== 'string' || u.length > 4096) return null;
  try {
    const url = new URL(u);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

// ---- icons (24x24, stroked) ----

const ICONS = {
  inbox: 'M3 13.5 6 5h12l3 8.5V19H3zM3 13.5h5l1.5 2.5h5l1.5-2.5h5',
  grid: 'M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z',
  sliders: 'M4 7h9M19 7h1M4 17h3M13 17h7M16 4.5a2.5 2.5 0 1 0 0 5 2.5 2.5 0 1 0 0-5zM10 14.5a2.5 2.5 0 1 0 0 5 2.5 2.5 0 1 0 0-5z',
  logout: 'M10 4H5v16h5M14.5 8l4 4-4 4M18.5 12H9',
  send: 'M4.5 11.5 20 4l-5.5 16-3-6.5zM11.5 13.5 20 4',
  check: 'M5 12.5l4.5 4.5L19 7.5',
  back: 'M15 5l-7 7 7 7',
  info: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18zM12 11v5.5M12 7.6v.4',
  plus: 'M12 5v14M5 12h14',
  x: 'M6 6l12 12M18 6 6 18',
  copy: 'M9 9h11v11H9zM5 15H4V4h11v1',
  user: 'M12 12a4 4 0 1 0 0-8 4 4 0 1 0 0 8zM4.5 20c.6-3.6 3.7-5.5 7.5-5.5s6.9 1.9 7.5 5.5',
  external: 'M14 4h6v6M20 4l-9 9M18 14v6H4V6h6',
  globe: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18zM3 12h18M12 3c2.8 3 2.8 15 0 18M12 3c-2.8 3-2.8 15 0 18',
  clock: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18zM12 7v5l3.5 2',
  chat: 'M12 4c-4.7 0-8.5 3.1-8.5 7 0 2.1 1.1 4 2.9 5.3L5.5 20l4.1-2c.8.2 1.6.3 2.4.3 4.7 0 8.5-3.1 8.5-7s-3.8-7-8.5-7z',
  sound: 'M4 9.5h3.5L12 6v12l-4.5-3.5H4zM15.5 9a4 4 0 0 1 0 6M18 6.5a7.5 7.5 0 0 1 0 11',
  mute: 'M4 9.5h3.5L12 6v12l-4.5-3.5H4zM16 9.5l5 5M21 9.5l-5 5',
  down: 'M6 9.5l6 6 6-6',
  reopen: 'M4.5 12a7.5 7.5 0 0 1 13.1-5M19 3.5V8h-4.5M19.5 12a7.5 7.5 0 0 1-13.1 5M5 20.5V16h4.5',
  monitor: 'M3 4.5h18v11.5H3zM8 20h8M12 16v4',
  code: 'M8.5 7 3.5 12l5 5M15.5 7l5 5-5 5',
  shield: 'M12 3.5 19 6v5.5c0 4.3-3 7.7-7 9-4-1.3-7-4.7-7-9V6z',
  palette: 'M12 3.5a8.5 8.5 0 0 0 0 17c1.3 0 1.8-.9 1.5-1.9-.4-1.3.4-2.6 1.8-2.6h1.9c1.8 0 3.3-1.5 3.3-3.5 0-5-3.8-9-8.5-9zM7.5 12a1 1 0 1 0 0 .1M10 8a1 1 0 1 0 0 .1M14.5 8a1 1 0 1 0 0 .1',
  folder: 'M3 6.5V18a1.5 1.5 0 0 0 1.5 1.5h15A1.5 1.5 0 0 0 21 18V9a1.5 1.5 0 0 0-1.5-1.5H12L10 5H4.5A1.5 1.5 0 0 0 3 6.5z',
  arrowRight: 'M5 12h14M13 6l6 6-6 6',
  key: 'M15 3.5a5.5 5.5 0 1 0 0 11 5.5 5.5 0 1 0 0-11zM11 13l-7.5 7.5M6 18l2.5 2.5M8.5 15.5 11 18',
  page: 'M6 3h8l4 4v14H6zM14 3v4h4',
  hash: 'M9 4 7 20M17 4l-2 16M4.5 9h16M3.5 15h16',
} as const;

export type IconName = keyof typeof ICONS;

const SVGNS = 'http://www.w3.org/2000/svg';

export function icon(name: IconName, cls = 'ic'): SVGSVGElement {
  const svg = document.createElementNS(SVGNS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const p = document.createElementNS(SVGNS, 'path');
  p.setAttribute('d', ICONS[name]);
  svg.appendChild(p);
  return svg;
}

// The Parley mark: two overlapping speech bubbles on a rounded square.
export function logo(size = 32): SVGSVGElement {
  const svg = document.createElementNS(SVGNS, 'svg');
  svg.setAttribute('viewBox', '0 0 32 32');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'logo');
  const mk = (tag: string, a: Record<string, string>): SVGElement => {
    const e = document.createElementNS(SVGNS, tag) as SVGElement;
    for (const [k, v] of Object.entries(a)) e.setAttribute(k, v);
    svg.appendChild(e);
    return e;
  };
  // Through the CSSOM, not a style attribute, so a strict Content-Security-Policy allows it.
  mk('rect', { width: '32', height: '32', rx: '9' }).style.setProperty('fill', 'var(--brand)');
  mk('path', {
    d: 'M8 10.5c0-1.4 1.1-2.5 2.5-2.5h8c1.4 0 2.5 1.1 2.5 2.5v5c0 1.4-1.1 2.5-2.5 2.5H13l-3.5 3v-3.1A2.5 2.5 0 0 1 8 15.5z',
    fill: '#fff',
  });
  mk('path', {
    d: 'M22.5 12.5h.5c1.1 0 2 .9 2 2v4.2c0 1.1-.9 2-2 2h-.3v2.6l-3-2.6h-3.9c-1.1 0-2-.9-2-2v-.2',
    fill: 'none',
    stroke: '#fff',
    'stroke-width': '1.8',
    'stroke-linejoin': 'round',
    opacity: '.75',
  });
  return svg;
}

// A visually hidden text for screen readers.
export const sr = (text: string): HTMLSpanElement => h('span', 'sr', text);
