// The sign-in and sign-up screens: a brand panel beside one form (the panel folds away on a
// phone). Errors from the server are shown at the field they name ("email: …") or above the
// form, in an alert region, and focus moves to the first wrong field.
import { ApiError, login, register } from './api';
import { h, icon, logo } from './dom';
import { button, field } from './ui';
import type { User } from './types';

export type AuthMode = 'login' | 'signup';

function brandPanel(): HTMLElement {
  const bubble = (who: 'v' | 'a', text: string, name: string): HTMLElement =>
    h('div', `demo-msg demo-${who}`, h('span', 'demo-name', name), h('span', 'demo-bubble', text));
  return h(
    'aside',
    { class: 'auth-brand', 'aria-hidden': 'true' },
    h('div', 'auth-brand-top', logo(36), h('span', 'wordmark', 'Parley')),
    h(
      'div',
      'auth-pitch',
      h('h2', null, 'Every visitor, one conversation away.'),
      h('p', null, 'Answer website chats in real time from a calm, fast inbox. Self-hosted, private, yours.'),
    ),
    h(
      'div',
      'demo-chat',
      bubble('v', 'Hi! Does the Ridge tent fit two people with packs?', 'Visitor · pricing page'),
      bubble('a', 'It does: two vestibules, one for each pack. Want the size chart?', 'You'),
      h('div', 'demo-typing', h('i'), h('i'), h('i')),
    ),
    h(
      'ul',
      'auth-points',
      h('li', null, icon('check'), 'Live inbox with typing and presence'),
      h('li', null, icon('check'), 'Drop-in widget, one script tag'),
      h('li', null, icon('check'), 'Runs on your own server'),
    ),
  );
}

export function authView(mode: AuthMode, onDone: (u: User) => void): HTMLElement {
  const isLogin = mode === 'login';
  const name = field('Full name', h('input', { type: 'text', autocomplete: 'name', required: true, maxlength: '100' }));
  const email = field(
    'Work e-mail',
    h('input', { type: 'email', autocomplete: 'email', required: true, maxlength: '254', spellcheck: 'false' }),
  );
  const password = field(
    'Password',
    h('input', {
      type: 'password',
      autocomplete: isLogin ? 'current-password' : 'new-password',
      required: true,
      minlength: isLogin ? null : '8',
      maxlength: '256',
    }),
    isLogin ? undefined : 'At least 8 characters.',
  );
  const fields: Record<string, typeof email> = { email, password, fullName: name };
  const alert = h('div', { class: 'form-alert', role: 'alert', hidden: true });
  const submit = button(isLogin ? 'Sign in' : 'Create account', { kind: 'primary', type: 'submit', size: 'lg' });
  submit.classList.add('btn-block');

  const form = h(
    'form',
    { class: 'auth-form', novalidate: true, 'aria-labelledby': 'auth-title' },
    h('div', 'auth-mobile-brand', logo(30), h('span', 'wordmark', 'Parley')),
    h('h1', { id: 'auth-title' }, isLogin ? 'Welcome back' : 'Create your account'),
    h(
      'p',
      'auth-sub',
      isLogin ? 'Sign in to answer your visitors.' : 'Start chatting with your website visitors in minutes.',
    ),
    alert,
    isLogin ? null : name.wrap,
    email.wrap,
    password.wrap,
    submit,
    h(
      'p',
      'auth-switch',
      isLogin ? 'New to Parley? ' : 'Already have an account? ',
      h('a', { href: isLogin ? '#/signup' : '#/login' }, isLogin ? 'Create an account' : 'Sign in'),
    ),
  );

  const showError = (msg: string | null): void => {
    alert.textContent = msg ?? '';
    alert.hidden = !msg;
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(null);
    for (const f of Object.values(fields)) f.setError(null);
    // Checks the browser can do before asking the server.
    const problems: [typeof email, string][] = [];
    if (!isLogin && !name.input.value.trim()) problems.push([name, 'Enter your name.']);
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email.input.value.trim())) problems.push([email, 'Enter a valid e-mail address.']);
    if (!password.input.value) problems.push([password, 'Enter your password.']);
    else if (!isLogin && password.input.value.length < 8) problems.push([password, 'Use at least 8 characters.']);
    if (problems.length) {
      for (const [f, m] of problems) f.setError(m);
      problems[0][0].input.focus();
      return;
    }
    submit.disabled = true;
    submit.classList.add('busy');
    const done = isLogin
      ? login(email.input.value.trim(), password.input.value)
      : register(name.input.value.trim(), email.input.value.trim(), password.input.value);
    done
      .then(onDone)
      .catch((e: unknown) => {
        const err = e instanceof ApiError ? e : new ApiError(0, String(e));
        const f = err.field ? fields[err.field] : undefined;
        if (f) {
          f.setError(err.detail.charAt(0).toUpperCase() + err.detail.slice(1));
          f.input.focus();
        } else {
          showError(err.status === 409 ? 'An account with this e-mail already exists. Sign in instead?' : err.message);
          (isLogin ? password : email).input.focus();
        }
      })
      .finally(() => {
        submit.disabled = false;
        submit.classList.remove('busy');
      });
  });

  const page = h('div', 'auth', brandPanel(), h('main', { class: 'auth-main', id: 'main' }, h('div', 'auth-card', form)));
  queueMicrotask(() => (isLogin ? email : name).input.focus());
  return page;
}
