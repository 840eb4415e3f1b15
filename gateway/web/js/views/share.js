// Share links: make a snapshot or live link to the favorite colour, copy
// it, and revoke old ones; and signed links, which expire, may be single
// use, and are revoked the same way.

import { ApiError, Code, del, get, post } from '../api.js';
import { copyField, fmtNumber, fmtRelative, fmtTime, h, id, liveRegion, replace, safeHref, say } from '../dom.js';
import { current } from '../session.js';

const EXPIRIES = [
  ['0', 'Never'], ['3600', '1 hour'], ['86400', '1 day'], ['604800', '1 week'], ['2592000', '30 days'],
];

// Signed links always expire (30 days at most).
const SIGNED_EXPIRIES = [
  ['600', '10 minutes'], ['3600', '1 hour'], ['86400', '1 day'], ['604800', '1 week'], ['2592000', '30 days'],
];

export function render(root) {
  const ctl = { alive: true };
  const status = liveRegion({ id: 'share-status' });
  const result = h('div', { class: 'result', id: 'share-result' });
  const list = h('div', { class: 'list', id: 'share-list', 'aria-live': 'polite' });
  const expId = id('expiry');
  const create = h('button', { type: 'submit', class: 'btn primary', id: 'create-share' }, 'Create link');

  const radio = (value, label, hint, checked) => {
    const rid = id('kind');
    return h('div', { class: 'option' },
      h('input', { type: 'radio', name: 'kind', id: rid, value, checked }),
      h('label', { for: rid }, h('strong', null, label), h('span', { class: 'hint' }, hint)));
  };

  const form = h('form', {
    class: 'stack', onsubmit: async (e) => {
      e.preventDefault();
      const fd = new FormData(form);
      create.disabled = true;
      say(status, 'Creating…', 'busy');
      try {
        const share = await post('/api/v1/shares', {
          snapshot: fd.get('kind') === 'snapshot',
          expiresInSec: String(fd.get('expiry') || '0'),
        });
        say(status, 'Link created.', 'ok');
        showResult(share);
        await load();
      } catch (err) {
        let msg = err instanceof ApiError ? err.friendly : `Network error: ${err.message}`;
        if (err instanceof ApiError && err.code === Code.FAILED_PRECONDITION) msg = 'Save a favorite colour first, then share it.';
        say(status, msg, 'error');
      } finally {
        create.disabled = false;
      }
    },
  },
  h('fieldset', { class: 'options' },
    h('legend', null, 'What the link shows'),
    radio('snapshot', 'Snapshot', 'The colour as it is now, frozen.', true),
    radio('live', 'Live', 'Follows your favorite when you change it.', false)),
  h('div', { class: 'field' },
    h('label', { for: expId }, 'Expires'),
    h('select', { id: expId, name: 'expiry', class: 'input' },
      EXPIRIES.map(([v, label]) => h('option', { value: v }, label)))),
  h('div', { class: 'row' }, create, status));

  function showResult(share) {
    const sw = h('span', { class: 'swatch-sm', 'aria-hidden': 'true' });
    sw.style.background = share.hex;
    replace(result,
      h('div', { class: 'card accent' },
        h('h2', null, sw, 'Your link is ready'),
        copyField('Share link', share.url),
        h('p', { class: 'row' },
          h('a', { class: 'btn ghost', href: safeHref(share.url), target: '_blank', rel: 'noopener', id: 'open-share' }, 'Open link ↗'),
          share.expireTime ? h('span', { class: 'muted' }, `Expires ${fmtRelative(share.expireTime)}`) : null)));
    result.querySelector('input').focus();
  }

  async function revoke(share, btn) {
    btn.disabled = true;
    try {
      await del(`/api/v1/shares/${encodeURIComponent(share.slug)}`);
      say(status, `Link ${share.slug} revoked.`, 'ok');
      await load();
    } catch (err) {
      btn.disabled = false;
      say(status, err instanceof ApiError ? err.friendly : err.message, 'error');
    }
  }

  async function load() {
    let res;
    try {
      res = await get('/api/v1/shares?pageSize=50');
    } catch (err) {
      replace(list, h('p', { class: 'muted' }, `Could not load your links: ${err.message}`));
      return;
    }
    if (!ctl.alive) return;
    const shares = res.shares || [];
    if (!shares.length) {
      replace(list, h('p', { class: 'empty' }, 'No links yet.'));
      return;
    }
    const now = Date.now();
    replace(list, h('ul', { class: 'rows' }, shares.map((sh) => {
      const expired = sh.expireTime && Date.parse(sh.expireTime) <= now;
      const state = sh.revoked ? 'revoked' : expired ? 'expired' : 'active';
      const sw = h('span', { class: 'swatch-sm', 'aria-hidden': 'true' });
      sw.style.background = sh.hex;
      const btn = h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Revoke link ${sh.slug}` }, 'Revoke');
      btn.addEventListener('click', () => revoke(sh, btn));
      return h('li', { class: `row-item ${state}`, dataset: { slug: sh.slug } },
        sw,
        h('div', { class: 'grow' },
          h('a', { href: safeHref(sh.url), target: '_blank', rel: 'noopener', class: 'mono' }, `/s/${sh.slug}`),
          h('p', { class: 'muted small' },
            `${sh.snapshot ? 'Snapshot' : 'Live'} · ${sh.hex} · created ${fmtTime(sh.createTime)}`,
            sh.expireTime ? ` · ${expired ? 'expired' : 'expires'} ${fmtRelative(sh.expireTime)}` : '')),
        h('span', { class: 'stat', title: 'Hits' }, h('strong', null, fmtNumber(sh.hits)), ' hits'),
        state === 'active' ? btn : h('span', { class: `badge ${state}` }, state));
    })));
  }

  const me = current();
  const fav = me && me.favorite;
  const favNote = fav
    ? h('p', { class: 'row muted' }, (() => { const d = h('span', { class: 'swatch-sm', 'aria-hidden': 'true' }); d.style.background = fav.hex; return d; })(), `Sharing ${fav.hex}`)
    : h('p', { class: 'notice' }, 'You have no favorite colour yet. ', h('a', { href: '#/color' }, 'Pick one first.'));

  root.append(
    h('header', { class: 'view-head' },
      h('h1', null, 'Share your colour'),
      h('p', { class: 'lead' }, 'Anyone with the link sees your colour — nothing else about you.')),
    h('div', { class: 'grid two' },
      h('div', { class: 'card' }, favNote, form),
      result),
    h('div', { class: 'card' }, h('h2', null, 'Your links'), list),
    signedCard(ctl));
  load();
  return () => { ctl.alive = false; };
}

// signedCard makes and lists signed links: the colour travels in the link
// itself, signed by the server, so it opens without a lookup.
function signedCard(ctl) {
  const status = liveRegion({ id: 'signed-status' });
  const result = h('div', { id: 'signed-result' });
  const list = h('div', { class: 'list', id: 'signed-list', 'aria-live': 'polite' });
  const expId = id('signed-expiry');
  const onceId = id('signed-once');
  const create = h('button', { type: 'submit', class: 'btn primary', id: 'create-signed' }, 'Create signed link');

  const form = h('form', {
    class: 'stack', onsubmit: async (e) => {
      e.preventDefault();
      const fd = new FormData(form);
      create.disabled = true;
      say(status, 'Creating…', 'busy');
      try {
        const link = await post('/api/v1/signed-shares', {
          expiresInSec: String(fd.get('signed-expiry') || '86400'),
          singleUse: fd.get('single-use') === 'on',
        });
        say(status, 'Signed link created.', 'ok');
        replace(result, h('div', { class: 'stack' },
          copyField('Signed link', link.url),
          h('p', { class: 'muted small' },
            `${link.singleUse ? 'Opens once · ' : ''}expires ${fmtRelative(link.expireTime)}`)));
        await load();
      } catch (err) {
        let msg = err instanceof ApiError ? err.friendly : `Network error: ${err.message}`;
        if (err instanceof ApiError && err.code === Code.FAILED_PRECONDITION) msg = 'Save a favorite colour first, then share it.';
        say(status, msg, 'error');
      } finally {
        create.disabled = false;
      }
    },
  },
  h('div', { class: 'field' },
    h('label', { for: expId }, 'Expires'),
    h('select', { id: expId, name: 'signed-expiry', class: 'input' },
      SIGNED_EXPIRIES.map(([v, label]) => h('option', { value: v, selected: v === '86400' }, label)))),
  h('div', { class: 'option' },
    h('input', { type: 'checkbox', id: onceId, name: 'single-use' }),
    h('label', { for: onceId }, h('strong', null, 'Single use'), h('span', { class: 'hint' }, 'The first person to open it uses it up.'))),
  h('div', { class: 'row' }, create, status));

  async function revoke(link, btn) {
    btn.disabled = true;
    try {
      await del(`/api/v1/signed-shares/${encodeURIComponent(link.id)}`);
      say(status, 'Signed link revoked.', 'ok');
      await load();
    } catch (err) {
      btn.disabled = false;
      say(status, err instanceof ApiError ? err.friendly : err.message, 'error');
    }
  }

  async function load() {
    let res;
    try {
      res = await get('/api/v1/signed-shares?pageSize=50');
    } catch (err) {
      replace(list, h('p', { class: 'muted' }, `Could not load your signed links: ${err.message}`));
      return;
    }
    if (!ctl.alive) return;
    const links = res.signedShares || [];
    if (!links.length) {
      replace(list, h('p', { class: 'empty' }, 'No signed links yet.'));
      return;
    }
    const now = Date.now();
    replace(list, h('ul', { class: 'rows' }, links.map((l) => {
      const expired = Date.parse(l.expireTime) <= now;
      const state = l.revoked ? 'revoked' : l.useTime ? 'used' : expired ? 'expired' : 'active';
      const sw = h('span', { class: 'swatch-sm', 'aria-hidden': 'true' });
      sw.style.background = l.hex;
      const btn = h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Revoke signed link ${l.id}` }, 'Revoke');
      btn.addEventListener('click', () => revoke(l, btn));
      return h('li', { class: `row-item ${state}`, dataset: { id: l.id } },
        sw,
        h('div', { class: 'grow' },
          h('a', { href: safeHref(l.url), target: '_blank', rel: 'noopener', class: 'mono' }, `/s/t/${l.id.slice(0, 8)}…`),
          h('p', { class: 'muted small' },
            `${l.singleUse ? 'Single use · ' : ''}${l.hex} · created ${fmtTime(l.createTime)}`,
            ` · ${expired ? 'expired' : 'expires'} ${fmtRelative(l.expireTime)}`)),
        state === 'active' ? btn : h('span', { class: `badge ${state}` }, state));
    })));
  }

  load();
  return h('div', { class: 'card', id: 'signed-card' },
    h('h2', null, 'Signed links'),
    h('p', { class: 'muted' }, 'A signed link carries your colour as it is now and always expires; revoke it any time.'),
    form, result, list);
}
