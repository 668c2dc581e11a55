// Small helpers shared by the widget's modules: storage that never throws (private modes and
// sandboxed frames refuse localStorage; the widget then keeps its state in memory), random ids,
// the console warning, and DOM element builders that only ever set text, never HTML.

type Store = 'localStorage' | 'sessionStorage';

const memory: Record<string, string> = {};

function raw(kind: Store): Storage | null {
  try {
    return window[kind];
  } catch {
    return null;
  }
}

// JSON value stored under key, or undefined.
export function load<T>(key: string, kind: Store = 'localStorage'): T | undefined {
  let s: string | null | undefined;
  try {
    s = raw(kind)?.getItem(key);
  } catch {
    s = undefined;
  }
  if (s == null) s = memory[kind + key];
  if (s == null) return undefined;
  try {
    return JSON.parse(s) as T;
  } catch {
    return undefined;
  }
}

// Stores value as JSON (undefined removes the key).
export function save(key: string, value: unknown, kind: Store = 'localStorage'): void {
  const s = value === undefined ? undefined : JSON.stringify(value);
  if (s === undefined) delete memory[kind + key];
  else memory[kind + key] = s;
  try {
    const st = raw(kind);
    if (s === undefined) st?.removeItem(key);
    else st?.setItem(key, s);
  } catch {
    // quota or access refused: the in-memory copy above still serves this page
  }
}

// A random id: crypto.randomUUID(), which exists only in secure contexts (https, localhost);
// plain-http sites get 128 random bits as 32 hex digits from crypto.getRandomValues().
export function uuid(): string {
  const c = window.crypto;
  return c.randomUUID
    ? c.randomUUID()
    : Array.from(c.getRandomValues(new Uint8Array(16)), (x) => (x + 256).toString(16).slice(1)).join('');
}

export const warn = (msg: string): void => console.warn(`[Parley] ${msg}`);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// <tag class="cls">text</tag>, appended to parent when given.
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls?: string,
  parent?: Node | null,
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// Sets attributes (null removes one).
export function attrs(e: Element, a: Record<string, string | null>): void {
  for (const k in a) {
    const v = a[k];
    if (v == null) e.removeAttribute(k);
    else e.setAttribute(k, v);
  }
}

// A 24x24 line icon from one SVG path (decorative: hidden from assistive technology).
export function icon(d: string, parent?: Node): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const s = document.createElementNS(ns, 'svg');
  attrs(s, { viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false' });
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', d);
  s.appendChild(p);
  if (parent) parent.appendChild(s);
  return s;
}

// Number of Unicode code points (what the server counts).
export const chars = (s: string): number => Array.from(s).length;
