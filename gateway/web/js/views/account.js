// Account: a guest registers (keeping their data), anyone signs in or out.

import { ApiError, Code } from '../api.js';
import { fmtTime, h, id, liveRegion, replace, say } from '../dom.js';
import { login, logout, onSession, register } from '../session.js';

function credentialsForm({ title, submitLabel, submitId, autocomplete, onSubmit, hint }) {
  const uId = id('user'); const pId = id('pass');
  const uErr = id('user-err'); const pErr = id('pass-err');
  const username = h('input', { id: uId, name: 'username', class: 'input', autocomplete: 'username', required: true, maxlength: 32, 'aria-describedby': uErr, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: pId, name: 'password', type: 'password', class: 'input', autocomplete, required: true, maxlength: 128, 'aria-describedby': `${pId}-hint ${pErr}` });
  const status = liveRegion();
  const btn = h('button', { type: 'submit', class: 'btn primary', id: submitId }, submitLabel);
  const form = h('form', {
    class: 'stack', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      for (const [el, eid] of [[username, uErr], [password, pErr]]) { el.removeAttribute('aria-invalid'); document.getElementById(eid).textContent = ''; }
      btn.disabled = true;
      say(status, 'Working…', 'busy');
      try {
        await onSubmit(username.value.trim(), password.value);
        say(status, 'Done.', 'ok');
      } catch (err) {
        if (!(err instanceof ApiError)) { say(status, `Network error: ${err.message}`, 'error'); return; }
        const u = err.field('username'); const p = err.field('password');
        if (u) { username.setAttribute('aria-invalid', 'true'); document.getElementById(uErr).textContent = u; }
        if (p) { password.setAttribute('aria-invalid', 'true'); document.getElementById(pErr).textContent = p; }
        let msg = err.friendly;
        if (err.code === Code.ALREADY_EXISTS) { msg = 'That username is taken.'; username.setAttribute('aria-invalid', 'true'); document.getElementById(uErr).textContent = msg; }
        if (err.code === Code.UNAUTHENTICATED) msg = 'Wrong username or password.';
        if (u || p) msg = 'Please fix the highlighted fields.';
        say(status, msg, 'error');
        (u || err.code === Code.ALREADY_EXISTS ? username : p ? password : username).focus();
      } finally {
        btn.disabled = false;
      }
    },
  },
  h('h2', null, title),
  h('div', { class: 'field' }, h('label', { for: uId }, 'Username'), username, h('p', { class: 'field-error', id: uErr, 'aria-live': 'polite' })),
  h('div', { class: 'field' }, h('label', { for: pId }, 'Password'), h('p', { class: 'hint', id: `${pId}-hint` }, hint || ''), password,
    h('p', { class: 'field-error', id: pErr, 'aria-live': 'polite' })),
  h('div', { class: 'row' }, btn, status));
  return form;
}

export function render(root) {
  const body = h('div');
  root.append(
    h('header', { class: 'view-head' },
      h('h1', null, 'Account'),
      h('p', { class: 'lead' }, 'You start as a guest. Register to keep your colour, links and votes across devices.')),
    body);

  const draw = (me) => {
    const u = me && me.user;
    if (!u) return;
    const outStatus = liveRegion();
    const who = h('div', { class: 'card who-card' },
      h('h2', null, u.guest ? 'You are a guest' : `Signed in as ${u.username}`),
      h('dl', { class: 'facts' },
        h('div', null, h('dt', null, 'User id'), h('dd', { class: 'mono small', id: 'user-id' }, u.id)),
        h('div', null, h('dt', null, 'Role'), h('dd', { id: 'user-role' }, u.role === 'ROLE_ADMIN' ? 'Admin' : u.guest ? 'Guest' : 'User')),
        h('div', null, h('dt', null, 'Since'), h('dd', null, fmtTime(u.createTime)))),
      u.guest ? null : h('button', {
        type: 'button', class: 'btn', id: 'logout', onclick: async (e) => {
          const btn = e.currentTarget;
          btn.disabled = true;
          try {
            await logout();
          } catch (err) {
            say(outStatus, `Could not sign out: ${err instanceof ApiError ? err.friendly : err.message}`, 'error');
            btn.disabled = false;
          }
        },
      }, 'Sign out'),
      outStatus);
    const forms = u.guest
      ? [
        credentialsForm({ title: 'Register', submitLabel: 'Create account', submitId: 'register', autocomplete: 'new-password', hint: '8 to 128 characters.', onSubmit: register }),
        credentialsForm({ title: 'Sign in', submitLabel: 'Sign in', submitId: 'login', autocomplete: 'current-password', onSubmit: login }),
      ]
      : [];
    replace(body, h('div', { class: 'grid two' }, who, ...forms.map((f) => h('div', { class: 'card' }, f))));
    if (forms.length) forms[0].setAttribute('aria-label', 'Register');
  };
  return onSession(draw);
}
