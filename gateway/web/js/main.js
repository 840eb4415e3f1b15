// Entry point: session bootstrap, the header, and a fragment router
// (#/links/abc) so that the gateway serves one page and deep links work
// without server-side routes.

import { h, replace } from './dom.js';
import { onSession, refresh } from './session.js';

const routes = {
  color: () => import('./views/color.js'),
  share: () => import('./views/share.js'),
  links: () => import('./views/links.js'),
  vote: () => import('./views/vote.js'),
  canvas: () => import('./views/canvas.js'),
  account: () => import('./views/account.js'),
};

const view = document.getElementById('view');
let cleanup = null;
let generation = 0;

function parse() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const name = routes[parts[0]] ? parts[0] : 'color';
  return { name, args: parts.slice(1) };
}

async function navigate() {
  const { name, args } = parse();
  const gen = ++generation;
  if (cleanup) {
    try { cleanup(); } catch { /* a view's teardown must not stop navigation */ }
    cleanup = null;
  }
  for (const a of document.querySelectorAll('[data-route]')) {
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.body.dataset.view = name;
  let mod;
  try {
    mod = await routes[name]();
  } catch (e) {
    replace(view, h('div', { class: 'card error' }, 'Could not load this view: ', String(e)));
    return;
  }
  if (gen !== generation) return; // the user moved on meanwhile
  const root = h('section', { class: `view view-${name}` });
  replace(view, root);
  cleanup = mod.render(root, args) || null;
  const heading = root.querySelector('h1');
  if (heading && focusNextView) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: false });
  }
  focusNextView = true;
  document.title = heading ? `${heading.textContent} · Platform` : 'Platform';
}

// The first view keeps focus at the top of the page; later navigations move
// it to the new view's heading so keyboard and screen-reader users land there.
let focusNextView = false;

function renderAccountChip(me) {
  const chip = document.getElementById('account-chip');
  const u = me && me.user;
  const fav = me && me.favorite;
  const dot = h('span', { class: 'dot', 'aria-hidden': 'true' });
  if (fav && fav.hex) dot.style.background = fav.hex;
  const who = !u ? 'Account' : u.guest ? 'Guest' : u.username;
  const role = u && u.role === 'ROLE_ADMIN' ? h('span', { class: 'badge' }, 'admin') : null;
  replace(chip, dot, h('span', { class: 'who' }, who), role);
  chip.setAttribute('aria-label', u ? `Account: ${u.guest ? 'guest' : `signed in as ${u.username}`}` : 'Account');
}

async function boot() {
  onSession(renderAccountChip);
  try {
    await refresh();
  } catch (e) {
    replace(view, h('div', { class: 'card error', role: 'alert' }, 'Cannot reach the server: ', e.message));
    return;
  }
  window.addEventListener('hashchange', navigate);
  await navigate();
  document.body.dataset.ready = 'true';
}

boot();
