// Small shared pieces of the interface: buttons, form fields with their error text, avatars,
// toasts (a polite live region), modal dialogs on the native <dialog> (focus stays inside, Escape
// closes, focus returns to what opened it), spinners and empty states.
import { h, icon, type Child, type IconName } from './dom';
import { colorFor, initials } from './format';

export function button(
  label: Child,
  opts: {
    kind?: 'primary' | 'secondary' | 'ghost' | 'danger' | 'subtle';
    icon?: IconName;
    onclick?: (ev: MouseEvent) => void;
    type?: 'button' | 'submit';
    size?: 'sm' | 'md' | 'lg';
    attrs?: Record<string, unknown>;
  } = {},
): HTMLButtonElement {
  const cls = `btn btn-${opts.kind ?? 'secondary'}${opts.size && opts.size !== 'md' ? ` btn-${opts.size}` : ''}`;
  return h(
    'button',
    { class: cls, type: opts.type ?? 'button', onclick: opts.onclick, ...(opts.attrs ?? {}) },
    opts.icon ? icon(opts.icon) : null,
    label === '' ? null : h('span', null, label),
  );
}

export function iconButton(
  name: IconName,
  label: string,
  onclick?: (ev: MouseEvent) => void,
  attrs: Record<string, unknown> = {},
): HTMLButtonElement {
  return h('button', { class: 'icon-btn', type: 'button', 'aria-label': label, title: label, onclick, ...attrs }, icon(name));
}

let fieldSeq = 0;

export interface Field<T extends HTMLElement> {
  wrap: HTMLDivElement;
  input: T;
  setError(msg: string | null): void;
}

// A labelled input with an optional hint and an error line (aria-describedby, aria-invalid).
export function field<T extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(
  label: string,
  input: T,
  hint?: string,
): Field<T> {
  const id = input.id || `f${++fieldSeq}`;
  input.id = id;
  const hintEl = hint ? h('div', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const err = h('div', { class: 'field-error', id: `${id}-err`, hidden: true });
  input.setAttribute('aria-describedby', [hintEl ? `${id}-hint` : '', `${id}-err`].filter(Boolean).join(' '));
  const wrap = h('div', 'field', h('label', { for: id }, label), input, hintEl, err);
  const f: Field<T> = {
    wrap,
    input,
    setError(msg) {
      err.textContent = msg ?? '';
      err.hidden = !msg;
      if (msg) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
      wrap.classList.toggle('invalid', !!msg);
    },
  };
  // An error is about what was typed: editing the field clears it.
  input.addEventListener('input', () => {
    if (!err.hidden) f.setError(null);
  });
  return f;
}

export function avatar(name: string, key: string, opts: { online?: boolean | null; size?: number } = {}): HTMLSpanElement {
  const size = opts.size ?? 36;
  const a = h(
    'span',
    {
      class: 'avatar',
      'aria-hidden': 'true',
      style: { '--av': colorFor(key), width: `${size}px`, height: `${size}px`, 'font-size': `${Math.round(size * 0.38)}px` },
    },
    initials(name),
  );
  if (opts.online != null) a.appendChild(h('i', { class: `presence ${opts.online ? 'on' : 'off'}` }));
  return a;
}

export const spinner = (label = 'Loading'): HTMLDivElement =>
  h('div', { class: 'spinner', role: 'status' }, h('span', 'sr', label));

export function empty(
  art: IconName,
  title: string,
  text: string,
  action?: HTMLElement | null,
  cls = '',
): HTMLDivElement {
  return h('div', `empty ${cls}`, h('div', 'empty-art', icon(art)), h('h3', null, title), h('p', null, text), action ?? null);
}

// ---- toasts ----

let toastRegion: HTMLDivElement | null = null;

export function toast(text: string, kind: 'info' | 'error' | 'success' = 'info'): void {
  if (!toastRegion) {
    toastRegion = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(toastRegion);
  }
  const t = h(
    'div',
    `toast toast-${kind}`,
    icon(kind === 'error' ? 'info' : kind === 'success' ? 'check' : 'info'),
    h('span', null, text),
  );
  toastRegion.appendChild(t);
  while (toastRegion.childElementCount > 3) toastRegion.firstElementChild?.remove();
  setTimeout(() => t.classList.add('leaving'), 3600);
  setTimeout(() => t.remove(), 4000);
}

// ---- dialogs ----

// A modal dialog. body() builds the content; the returned close() ends it. The native
// <dialog> keeps Tab inside, closes on Escape ("cancel"), and focus goes back to the opener.
export function dialog(
  title: string,
  body: (close: () => void) => Child,
  opts: { description?: string; wide?: boolean } = {},
): { el: HTMLDialogElement; close: () => void } {
  const opener = document.activeElement as HTMLElement | null;
  const tid = `dlg-${++fieldSeq}`;
  const d = h('dialog', {
    class: `dialog${opts.wide ? ' wide' : ''}`,
    'aria-labelledby': tid,
    'aria-modal': 'true',
  });
  // Closing removes the dialog at once (not later, in the "close" event's task), so a dialog
  // opened right after never meets the old one; focus goes back to what opened it.
  let done = false;
  const close = (): void => {
    if (done) return;
    done = true;
    if (d.open) d.close();
    d.remove();
    opener?.focus?.();
  };
  d.addEventListener('cancel', (e) => {
    e.preventDefault();
    close();
  });
  d.addEventListener('close', close);
  // Tab wraps around inside the dialog (the page behind is inert, but without this the focus
  // would leave the document for the browser's own controls).
  d.addEventListener('keydown', (e) => {
    if (e.key !== 'Tab') return;
    const all = [...d.querySelectorAll<HTMLElement>('button, input, textarea, select, a[href], [tabindex]:not([tabindex="-1"])')].filter(
      (x) => !(x as HTMLButtonElement).disabled && x.offsetParent !== null,
    );
    if (!all.length) return;
    const first = all[0];
    const last = all[all.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  });
  // A click on the backdrop (outside the panel) closes.
  d.addEventListener('mousedown', (e) => {
    if (e.target === d) close();
  });
  d.append(
    h(
      'div',
      'dialog-panel',
      h(
        'div',
        'dialog-head',
        h('h2', { id: tid }, title),
        iconButton('x', 'Close dialog', close, { class: 'icon-btn dialog-x' }),
      ),
      opts.description ? h('p', 'dialog-desc', opts.description) : null,
      body(close),
    ),
  );
  document.body.appendChild(d);
  d.showModal();
  const first = d.querySelector<HTMLElement>('input, textarea, select');
  first?.focus();
  return { el: d, close };
}
