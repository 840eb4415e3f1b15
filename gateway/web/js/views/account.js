// Account: a guest registers (keeping their data), anyone signs in or out;
// an account changes its password or deletes itself.

import { ApiError, Code } from '../api.js';
import { fmtTime, h, id, liveRegion, replace, say } from '../dom.js';
import { changePassword, deleteAccount, login, logout, onSession, register } from '../session.js';

// After an action that changes who is signed in, the redrawn page moves
// focus to its heading, so that keyboard and screen-reader users land on
// the result rather than on <body>.
let focusResult = false;
const acting = (fn) => async (...args) => { focusResult = true; try { return await fn(...args); } catch (e) { focusResult = false; throw e; } };

// passwordForm is a form of password fields; arm, when set, makes the
// first press only arm the button for a few seconds (no blocking confirm()).
function passwordForm({ title, lead, fields, submitLabel, submitId, onSubmit, arm }) {
  const status = liveRegion();
  const inputs = fields.map((f) => {
    const fid = id(f.name); const err = id(`${f.name}-err`);
    const input = h('input', { id: fid, name: f.name, type: 'password', class: 'input', autocomplete: f.autocomplete, required: true, maxlength: 128, 'aria-describedby': `${fid}-hint ${err}` });
    const box = h('div', { class: 'field' }, h('label', { for: fid }, f.label), h('p', { class: 'hint', id: `${fid}-hint` }, f.hint || ''), input,
      h('p', { class: 'field-error', id: err, 'aria-live': 'polite' }));
    return { ...f, input, err, box };
  });
  const btn = h('button', { type: 'submit', class: arm ? 'btn danger' : 'btn primary', id: submitId }, submitLabel);
  const form = h('form', {
    class: 'stack', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      for (const f of inputs) { f.input.removeAttribute('aria-invalid'); document.getElementById(f.err).textContent = ''; }
      if (arm && btn.dataset.armed !== 'true') {
        btn.dataset.armed = 'true';
        btn.textContent = arm.confirmLabel;
        say(status, arm.message);
        setTimeout(() => { if (btn.isConnected) { btn.dataset.armed = ''; btn.textContent = submitLabel; } }, 6000);
        return;
      }
      btn.disabled = true;
      say(status, 'Working…', 'busy');
      try {
        await onSubmit(...inputs.map((f) => f.input.value));
        say(status, 'Done.', 'ok');
      } catch (err) {
        btn.dataset.armed = ''; btn.textContent = submitLabel;
        if (!(err instanceof ApiError)) { say(status, `Network error: ${err.message}`, 'error'); return; }
        let msg = err.friendly; let bad = null;
        for (const f of inputs) {
          const m = err.field(f.wire);
          if (m) { f.input.setAttribute('aria-invalid', 'true'); document.getElementById(f.err).textContent = m; bad = bad || f.input; }
        }
        if (err.code === Code.UNAUTHENTICATED && inputs.length) {
          msg = 'That password is wrong.'; bad = inputs[0].input;
          bad.setAttribute('aria-invalid', 'true'); document.getElementById(inputs[0].err).textContent = msg;
        } else if (bad) {
          msg = 'Please fix the highlighted fields.';
        }
        say(status, msg, 'error');
        (bad || btn).focus();
      } finally {
        btn.disabled = false;
      }
    },
  },
  h('h2', null, title),
  lead ? h('p', { class: 'hint' }, lead) : null,
  ...inputs.map((f) => f.box),
  h('div', { class: 'row' }, btn, status));
  return form;
}

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
            focusResult = true;
            await logout();
          } catch (err) {
            focusResult = false;
            say(outStatus, `Could not sign out: ${err instanceof ApiError ? err.friendly : err.message}`, 'error');
            btn.disabled = false;
          }
        },
      }, 'Sign out'),
      outStatus);
    const erase = u.guest
      ? passwordForm({
        title: 'Forget this guest', lead: 'Deletes what this guest saved: colour, share links, short links. Votes stay counted without a name; canvas pixels stay without an author.',
        fields: [], submitLabel: 'Delete guest data', submitId: 'delete-account', onSubmit: acting(() => deleteAccount('')),
        arm: { confirmLabel: 'Confirm delete', message: 'Press again to delete this guest for good.' },
      })
      : passwordForm({
        title: 'Delete account', lead: 'Deletes the account for good: colour, share links, short links. Votes stay counted without a name; canvas pixels stay without an author.',
        fields: [{ name: 'password', wire: 'password', label: 'Password', autocomplete: 'current-password' }],
        submitLabel: 'Delete account', submitId: 'delete-account', onSubmit: acting((pw) => deleteAccount(pw)),
        arm: { confirmLabel: 'Confirm delete', message: 'Press again to delete the account for good.' },
      });
    const forms = u.guest
      ? [
        credentialsForm({ title: 'Sign in', submitLabel: 'Sign in', submitId: 'login', autocomplete: 'current-password', onSubmit: acting(login) }),
        credentialsForm({ title: 'Register', submitLabel: 'Create account', submitId: 'register', autocomplete: 'new-password', hint: '8 to 128 characters.', onSubmit: acting(register) }),
        erase,
      ]
      : [
        passwordForm({
          title: 'Change password', lead: 'Signs out every other device.',
          fields: [
            { name: 'current', wire: 'currentPassword', label: 'Current password', autocomplete: 'current-password' },
            { name: 'next', wire: 'newPassword', label: 'New password', autocomplete: 'new-password', hint: '8 to 128 characters.' },
          ],
          submitLabel: 'Change password', submitId: 'change-password', onSubmit: acting(changePassword),
        }),
        erase,
      ];
    replace(body, h('div', { class: 'grid two' }, who, ...forms.map((f) => h('div', { class: 'card' }, f))));
    for (const f of forms) f.setAttribute('aria-label', f.querySelector('h2').textContent);
    if (focusResult) {
      focusResult = false;
      const head = who.querySelector('h2');
      head.setAttribute('tabindex', '-1');
      head.focus();
    }
  };
  return onSession(draw);
}
