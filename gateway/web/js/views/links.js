// URL shortener: shorten (alias, expiry, password, redirect kind, a
// maximum of visits, targets by device), the
// caller's links with click counts (searchable, paged, each editable and
// copyable in place), and per-link stats (#/links/{code}): clicks per day,
// week or month as a chart, by country, referrer, browser, OS and device,
// and the QR code the API renders.

import { ApiError, Code, del, get, patch, post, qs } from '../api.js';
import { dayChart } from '../chart.js';
import { copyField, copyText, fmtNumber, fmtRelative, fmtTime, h, id, liveRegion, replace, s, safeHref, say } from '../dom.js';

// PAGE_SIZE links per page; "Show more" fetches the next.
const PAGE_SIZE = 20;

const EXPIRIES = [['0', 'Never'], ['3600', '1 hour'], ['86400', '1 day'], ['604800', '1 week'], ['2592000', '30 days']];

// DEVICES are the device classes a link can have its own target for.
const DEVICES = [['android', 'Android target', 'Android'], ['ios', 'iOS target', 'iOS'], ['desktop', 'Desktop target', 'desktop']];

// apiField names the request field an input's errors come back under.
const apiField = (k) => (DEVICES.some(([d]) => d === k) ? `deviceLongUrls.${k}` : k);

// deviceInputs are the optional per-device target inputs (prefix keeps
// ids apart between the create and edit forms).
function deviceInputs(prefix, current = {}) {
  return Object.fromEntries(DEVICES.map(([d]) => [d, h('input', {
    id: id(`${prefix}-${d}`), name: `device-${d}`, type: 'url', class: 'input', maxlength: 2048, autocomplete: 'off',
    placeholder: 'optional', value: current[d] || '',
  })]));
}

const qrURL = (code, size = 256) => `/api/v1/urls/${encodeURIComponent(code)}/qr.png?size=${size}`;

export function render(root, args) {
  if (args[0]) return renderStats(root, args[0]);
  return renderList(root);
}

function field(label, input, { hint, errId } = {}) {
  const hintId = hint ? id('hint') : null;
  input.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
  return h('div', { class: 'field' },
    h('label', { for: input.id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    input,
    h('p', { class: 'field-error', id: errId, 'aria-live': 'polite' }));
}

function renderList(root) {
  const ctl = { alive: true };
  const status = liveRegion({ id: 'link-status' });
  const result = h('div', { id: 'link-result' });
  const list = h('div', { id: 'link-list' });
  const inputs = {
    longUrl: h('input', { id: id('long'), name: 'longUrl', type: 'url', class: 'input', required: true, placeholder: 'https://example.com/a/very/long/path', autocomplete: 'url', maxlength: 2048 }),
    alias: h('input', { id: id('alias'), name: 'alias', class: 'input mono', placeholder: 'optional', autocomplete: 'off', spellcheck: 'false', maxlength: 32 }),
    expiresInSec: h('select', { id: id('exp'), name: 'expiresInSec', class: 'input' }, EXPIRIES.map(([v, l]) => h('option', { value: v }, l))),
    password: h('input', { id: id('pw'), name: 'password', type: 'password', class: 'input', autocomplete: 'new-password', placeholder: 'optional', maxlength: 128 }),
    redirectKind: h('select', { id: id('kind'), name: 'redirectKind', class: 'input' },
      h('option', { value: 'REDIRECT_KIND_FOUND' }, '302 Temporary'),
      h('option', { value: 'REDIRECT_KIND_MOVED_PERMANENTLY' }, '301 Permanent')),
    maxVisits: h('input', { id: id('maxv'), name: 'maxVisits', type: 'number', min: 0, step: 1, class: 'input', placeholder: 'unlimited', inputmode: 'numeric' }),
    ...deviceInputs('dev'),
  };
  const errIds = Object.fromEntries(Object.keys(inputs).map((k) => [k, id(`err-${k}`)]));
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'shorten' }, 'Shorten');

  function clearErrors() {
    for (const [k, el] of Object.entries(inputs)) {
      el.removeAttribute('aria-invalid');
      document.getElementById(errIds[k]).textContent = '';
    }
  }
  function fieldError(k, msg) {
    inputs[k].setAttribute('aria-invalid', 'true');
    document.getElementById(errIds[k]).textContent = msg;
  }

  const form = h('form', {
    class: 'stack', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors();
      const body = {
        longUrl: inputs.longUrl.value.trim(),
        alias: inputs.alias.value.trim(),
        expiresInSec: inputs.expiresInSec.value,
        password: inputs.password.value,
        redirectKind: inputs.redirectKind.value,
      };
      if (inputs.maxVisits.value.trim()) body.maxVisits = inputs.maxVisits.value.trim();
      const devices = Object.fromEntries(DEVICES.map(([d]) => [d, inputs[d].value.trim()]).filter(([, v]) => v));
      if (Object.keys(devices).length) body.deviceLongUrls = devices;
      if (!body.longUrl) { fieldError('longUrl', 'Enter the address to shorten.'); inputs.longUrl.focus(); return; }
      submit.disabled = true;
      say(status, 'Shortening…', 'busy');
      try {
        const su = await post('/api/v1/shorten', body);
        say(status, `Created ${su.shortUrl}`, 'ok');
        inputs.longUrl.value = ''; inputs.alias.value = ''; inputs.password.value = ''; inputs.maxVisits.value = '';
        for (const [d] of DEVICES) inputs[d].value = '';
        showResult(su);
        load();
      } catch (err) {
        if (!(err instanceof ApiError)) { say(status, `Network error: ${err.message}`, 'error'); return; }
        let first = null;
        for (const k of Object.keys(inputs)) {
          const msg = err.field(apiField(k));
          if (msg) { fieldError(k, msg); first = first || k; }
        }
        if (err.code === Code.ALREADY_EXISTS) { fieldError('alias', 'This alias is taken. Try another.'); first = 'alias'; }
        if (first) { inputs[first].focus(); say(status, 'Please fix the highlighted field.', 'error'); } else say(status, err.friendly, 'error');
      } finally {
        submit.disabled = false;
      }
    },
  },
  field('Long URL', inputs.longUrl, { errId: errIds.longUrl }),
  h('details', { class: 'more' },
    h('summary', null, 'Options: alias, expiry, password, redirect, visits, devices'),
    h('div', { class: 'grid two tight' },
      field('Custom alias', inputs.alias, { hint: '3–32 letters, digits, - or _', errId: errIds.alias }),
      field('Expires', inputs.expiresInSec, { errId: errIds.expiresInSec }),
      field('Password', inputs.password, { hint: 'Asked before redirecting', errId: errIds.password }),
      field('Redirect', inputs.redirectKind, { hint: '301 may be cached: repeat clicks go uncounted', errId: errIds.redirectKind }),
      field('Max visits', inputs.maxVisits, { hint: 'Then it answers as expired; bots do not count', errId: errIds.maxVisits }),
      ...DEVICES.map(([d, label]) => field(label, inputs[d], { hint: 'Else the long URL', errId: errIds[d] })))),
  h('div', { class: 'row' }, submit, status));

  function showResult(su) {
    replace(result, h('div', { class: 'card accent created' },
      h('div', { class: 'qr-wrap' }, h('img', { class: 'qr', src: qrURL(su.code), alt: `QR code for ${su.shortUrl}`, width: 160, height: 160 })),
      h('div', { class: 'grow stack' },
        h('h2', null, 'Short link ready'),
        copyField('Short URL', su.shortUrl),
        h('p', { class: 'row' },
          h('a', { class: 'btn ghost', href: `#/links/${encodeURIComponent(su.code)}` }, 'View stats'),
          h('a', { class: 'btn ghost', href: safeHref(su.shortUrl), target: '_blank', rel: 'noopener', id: 'open-short' }, 'Open ↗')))));
  }

  // Deleting asks twice, inline: the first press arms the button for a
  // few seconds (no blocking confirm() dialog).
  async function remove(su, btn) {
    if (btn.dataset.armed !== 'true') {
      btn.dataset.armed = 'true';
      btn.textContent = 'Confirm delete';
      say(status, `Press again to delete ${su.code}: it will stop redirecting.`);
      setTimeout(() => { if (btn.isConnected) { btn.dataset.armed = ''; btn.textContent = 'Delete'; } }, 4000);
      return;
    }
    btn.disabled = true;
    try {
      await del(`/api/v1/urls/${encodeURIComponent(su.code)}`);
      say(status, `Deleted ${su.code}.`, 'ok');
      load();
    } catch (err) {
      btn.disabled = false;
      say(status, err instanceof ApiError ? err.friendly : err.message, 'error');
    }
  }

  // The list: a search over code and target, pages appended by "Show
  // more". A newer load (new search, a create or delete) makes the answers
  // of older ones stale: ctl.gen tells them apart.
  ctl.gen = 0;
  ctl.query = '';
  const more = h('button', { type: 'button', class: 'btn ghost', id: 'links-more', hidden: true }, 'Show more');
  const searchId = id('search');
  const search = h('input', { id: searchId, type: 'search', class: 'input', name: 'q', placeholder: 'Search code or target', autocomplete: 'off', maxlength: 200 });
  let searchTimer = 0;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { ctl.query = search.value.trim(); load(); }, 250);
  });
  const rows = h('ul', { class: 'rows' });

  async function load(token = '') {
    const gen = token ? ctl.gen : ++ctl.gen;
    let res;
    more.disabled = true;
    try {
      res = await get(`/api/v1/urls${qs({ pageSize: PAGE_SIZE, pageToken: token, query: ctl.query })}`);
    } catch (err) {
      more.disabled = false;
      if (!token) replace(list, h('p', { class: 'muted' }, err instanceof ApiError ? err.friendly : err.message));
      else say(status, err instanceof ApiError ? err.friendly : err.message, 'error');
      return;
    }
    if (!ctl.alive || gen !== ctl.gen) return;
    more.disabled = false;
    const urls = res.shortUrls || [];
    if (!token) {
      replace(rows);
      if (!urls.length) {
        replace(list, h('p', { class: 'empty' }, ctl.query ? `No links match “${ctl.query}”.` : 'No short links yet.'));
        more.hidden = true;
        return;
      }
      replace(list, rows);
    }
    rows.append(...urls.map(rowOf));
    more.hidden = !res.nextPageToken;
    more.onclick = () => load(res.nextPageToken);
  }

  // counts says what the list knows about a link's clicks without
  // contradicting itself: people and bots apart, and the last click of a
  // person (a bot's visit is named as such).
  // A link with a visit limit shows "n / max visits" instead.
  function counts(su) {
    const bots = Number(su.botClickCount || 0);
    const n = Number(su.clickCount || 0);
    const maxV = Number(su.maxVisits || 0);
    const main = maxV
      ? [h('strong', null, fmtNumber(Math.min(n, maxV))), ` / ${fmtNumber(maxV)} visits`]
      : [h('strong', null, fmtNumber(n)), n === 1 ? ' click' : ' clicks'];
    return h('span', { class: 'stat clicks' }, ...main,
      bots ? h('span', { class: 'bots' }, ` · ${fmtNumber(bots)} ${bots === 1 ? 'bot' : 'bots'}`) : null);
  }
  function lastSeen(su) {
    if (su.lastHumanAccessTime) return ` · last click ${fmtRelative(su.lastHumanAccessTime)}`;
    if (su.lastAccessTime) return ` · last bot visit ${fmtRelative(su.lastAccessTime)}`;
    return '';
  }

  function rowOf(su) {
    const li = h('li', { class: 'row-item link-row', dataset: { code: su.code } });
    const delBtn = h('button', { type: 'button', class: 'btn small danger delete', 'aria-label': `Delete ${su.code}` }, 'Delete');
    delBtn.addEventListener('click', () => remove(su, delBtn));
    const copyMsg = liveRegion({ class: 'status inline' });
    const copyBtn = h('button', {
      type: 'button', class: 'btn small copy', 'aria-label': `Copy ${su.shortUrl}`, onclick: async () => {
        const ok = await copyText(su.shortUrl);
        say(copyMsg, ok ? 'Copied' : 'Copy failed', ok ? 'ok' : 'error');
        copyBtn.focus();
      },
    }, 'Copy');
    const qrBtn = h('button', { type: 'button', class: 'btn small qr-toggle', 'aria-label': `QR code for ${su.code}`, 'aria-expanded': 'false' }, 'QR');
    qrBtn.addEventListener('click', () => {
      const shown = li.querySelector('.row-qr');
      qrBtn.setAttribute('aria-expanded', String(!shown));
      if (shown) { shown.remove(); return; }
      li.append(h('div', { class: 'row-qr' },
        h('div', { class: 'qr-wrap' }, h('img', { class: 'qr', src: qrURL(su.code), alt: `QR code for ${su.shortUrl}`, width: 160, height: 160 })),
        h('a', { class: 'btn small ghost', href: qrURL(su.code, 1024), download: `${su.code}.png` }, 'Download PNG')));
    });
    const editBtn = h('button', { type: 'button', class: 'btn small edit', 'aria-label': `Edit ${su.code}`, 'aria-expanded': 'false' }, 'Edit');
    editBtn.addEventListener('click', () => edit(su, li, editBtn));
    const used = su.maxVisits && Number(su.clickCount || 0) >= Number(su.maxVisits);
    const expired = used || (su.expireTime && Date.parse(su.expireTime) <= Date.now());
    const devices = Object.keys(su.deviceLongUrls || {});
    li.append(
      h('div', { class: 'grow' },
        h('a', { class: 'mono strong', href: safeHref(su.shortUrl), target: '_blank', rel: 'noopener' }, su.shortUrl.replace(/^https?:\/\//, '')),
        su.passwordProtected ? h('span', { class: 'badge lock', title: 'Password protected' }, lockIcon(), h('span', { class: 'offscreen' }, 'Password protected')) : null,
        su.redirectKind === 'REDIRECT_KIND_MOVED_PERMANENTLY' ? h('span', { class: 'badge kind' }, '301') : null,
        expired ? h('span', { class: 'badge expired' }, 'expired') : null,
        h('p', { class: 'muted small ellipsis target', title: su.longUrl }, '→ ', su.longUrl),
        devices.length ? h('p', { class: 'muted small ellipsis devices' }, `own target for ${DEVICES.filter(([d]) => devices.includes(d)).map(([, , name]) => name).join(', ')}`) : null,
        h('p', { class: 'muted small' }, `created ${fmtTime(su.createTime)}`, lastSeen(su),
          su.expireTime && !expired ? ` · expires ${fmtRelative(su.expireTime)}` : '')),
      counts(su),
      h('div', { class: 'row actions' },
        copyBtn,
        qrBtn,
        editBtn,
        h('a', { class: 'btn small', href: `#/links/${encodeURIComponent(su.code)}`, 'aria-label': `Stats for ${su.code}` }, 'Stats'),
        delBtn, copyMsg));
    return li;
  }

  // edit opens a form under the row: target, expiry (kept unless chosen)
  // and redirect kind, saved with one PATCH; errors show at the field.
  function edit(su, li, btn) {
    const open = li.nextElementSibling && li.nextElementSibling.classList.contains('edit-row');
    if (open) { li.nextElementSibling.remove(); btn.setAttribute('aria-expanded', 'false'); return; }
    btn.setAttribute('aria-expanded', 'true');
    const ins = {
      longUrl: h('input', { id: id('e-long'), name: 'longUrl', type: 'url', class: 'input', value: su.longUrl, maxlength: 2048, required: true }),
      expiresInSec: h('select', { id: id('e-exp'), name: 'expiresInSec', class: 'input' },
        h('option', { value: '' }, su.expireTime ? `Keep (${fmtRelative(su.expireTime)})` : 'Keep (never)'),
        EXPIRIES.map(([v, l]) => h('option', { value: v }, v === '0' ? 'Never' : `${l} from now`))),
      redirectKind: h('select', { id: id('e-kind'), name: 'redirectKind', class: 'input' },
        h('option', { value: 'REDIRECT_KIND_FOUND', selected: su.redirectKind !== 'REDIRECT_KIND_MOVED_PERMANENTLY' }, '302 Temporary'),
        h('option', { value: 'REDIRECT_KIND_MOVED_PERMANENTLY', selected: su.redirectKind === 'REDIRECT_KIND_MOVED_PERMANENTLY' }, '301 Permanent')),
      password: h('input', { id: id('e-pw'), name: 'password', type: 'password', class: 'input', autocomplete: 'new-password', maxlength: 128, placeholder: su.passwordProtected ? 'unchanged' : 'none' }),
      maxVisits: h('input', { id: id('e-maxv'), name: 'maxVisits', type: 'number', min: 0, step: 1, class: 'input', inputmode: 'numeric', placeholder: 'unlimited', value: su.maxVisits ? String(su.maxVisits) : '' }),
      ...deviceInputs('e-dev', su.deviceLongUrls),
    };
    const noPwId = id('e-nopw');
    const noPw = su.passwordProtected ? h('input', { type: 'checkbox', id: noPwId, name: 'removePassword' }) : null;
    const errs = Object.fromEntries(Object.keys(ins).map((k) => [k, id(`e-err-${k}`)]));
    const msg = liveRegion();
    const save = h('button', { type: 'submit', class: 'btn primary small save' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn small ghost', onclick: () => { row.remove(); btn.setAttribute('aria-expanded', 'false'); btn.focus(); } }, 'Cancel');
    const form = h('form', {
      class: 'stack', novalidate: true, onsubmit: async (e) => {
        e.preventDefault();
        for (const [k, el] of Object.entries(ins)) { el.removeAttribute('aria-invalid'); document.getElementById(errs[k]).textContent = ''; }
        const body = { longUrl: ins.longUrl.value.trim(), redirectKind: ins.redirectKind.value };
        if (ins.expiresInSec.value !== '') body.expiresInSec = ins.expiresInSec.value;
        // An emptied field clears: no limit, or that device's own target.
        body.maxVisits = ins.maxVisits.value.trim() || '0';
        const had = su.deviceLongUrls || {};
        const devices = {};
        for (const [d] of DEVICES) {
          const v = ins[d].value.trim();
          if (v !== (had[d] || '')) devices[d] = v;
        }
        if (Object.keys(devices).length) body.deviceLongUrls = devices;
        // An empty password field keeps the password; the box removes it.
        if (ins.password.value) body.password = ins.password.value;
        else if (noPw && noPw.checked) body.password = '';
        save.disabled = true;
        say(msg, 'Saving…', 'busy');
        try {
          const updated = await patch(`/api/v1/urls/${encodeURIComponent(su.code)}`, body);
          row.remove();
          const fresh = rowOf(updated);
          li.replaceWith(fresh);
          say(status, `Saved ${updated.code}.`, 'ok');
          fresh.querySelector('button.edit').focus();
        } catch (err) {
          save.disabled = false;
          if (!(err instanceof ApiError)) { say(msg, `Network error: ${err.message}`, 'error'); return; }
          let first = null;
          for (const k of Object.keys(ins)) {
            const m = err.field(apiField(k));
            if (m) { ins[k].setAttribute('aria-invalid', 'true'); document.getElementById(errs[k]).textContent = m; first = first || k; }
          }
          if (first) { ins[first].focus(); say(msg, 'Please fix the highlighted field.', 'error'); } else say(msg, err.friendly, 'error');
        }
      },
    },
    h('div', { class: 'grid two tight' },
      field('Target', ins.longUrl, { errId: errs.longUrl }),
      field('Expires', ins.expiresInSec, { errId: errs.expiresInSec }),
      field('Redirect', ins.redirectKind, { errId: errs.redirectKind }),
      h('div', null,
        field('New password', ins.password, { hint: 'Leave empty to keep', errId: errs.password }),
        noPw ? h('p', { class: 'row' }, noPw, h('label', { for: noPwId }, 'Remove the password')) : null),
      field('Max visits', ins.maxVisits, { hint: 'Empty: unlimited; visits so far count', errId: errs.maxVisits }),
      ...DEVICES.map(([d, label]) => field(label, ins[d], { hint: 'Empty: the target above', errId: errs[d] }))),
    h('div', { class: 'row' }, save, cancel, msg));
    const row = h('li', { class: 'edit-row', dataset: { code: su.code } }, form);
    li.after(row);
    ins.longUrl.focus();
  }

  root.append(
    h('header', { class: 'view-head' },
      h('h1', null, 'Short links'),
      h('p', { class: 'lead' }, 'Shorten a link, share it anywhere, and see who clicks.')),
    h('div', { class: 'grid two' }, h('div', { class: 'card' }, form), result),
    h('div', { class: 'card' },
      h('div', { class: 'row spread' }, h('h2', null, 'Your links'),
        h('div', { class: 'field search' }, h('label', { for: searchId, class: 'offscreen' }, 'Search links'), search)),
      list, h('p', null, more)));
  load();
  return () => { ctl.alive = false; clearTimeout(searchTimer); };
}

function isoDay(d) { return d.toISOString().slice(0, 10); }

const regionNames = (() => {
  try { return new Intl.DisplayNames(undefined, { type: 'region' }); } catch { return null; }
})();
function countryName(cc) {
  if (!cc || cc === 'ZZ') return 'Unknown';
  try { return (regionNames && regionNames.of(cc)) || cc; } catch { return cc; }
}

function renderStats(root, code) {
  const ctl = { alive: true, timer: 0, built: false };
  const details = h('div', { class: 'card', id: 'link-details' }, h('p', { class: 'muted' }, 'Loading…'));
  const chartBox = h('div', { class: 'chart-box', id: 'stats-chart' });
  const totals = h('div', { class: 'totals', id: 'stats-totals', 'aria-live': 'polite' });
  const countries = h('div', { id: 'stats-countries' });
  const dims = {
    referrers: h('div', { id: 'stats-referrers' }),
    browsers: h('div', { id: 'stats-browsers' }),
    operatingSystems: h('div', { id: 'stats-os' }),
    devices: h('div', { id: 'stats-devices' }),
  };
  const status = liveRegion();
  const granId = id('gran');
  const gran = h('select', { id: granId, class: 'input', name: 'granularity' },
    h('option', { value: 'STATS_GRANULARITY_DAY' }, 'Per day'), h('option', { value: 'STATS_GRANULARITY_WEEK' }, 'Per week'),
    h('option', { value: 'STATS_GRANULARITY_MONTH' }, 'Per month'));
  const rangeId = id('range');
  const range = h('select', { id: rangeId, class: 'input' },
    h('option', { value: '7' }, 'Last 7 days'), h('option', { value: '30', selected: true }, 'Last 30 days'), h('option', { value: '90' }, 'Last 90 days'),
    h('option', { value: '365' }, 'Last 12 months'));
  const refresh = h('button', { type: 'button', class: 'btn', id: 'refresh-stats' }, 'Refresh');

  async function loadDetails() {
    try {
      const su = await get(`/api/v1/urls/${encodeURIComponent(code)}`);
      if (!ctl.alive) return;
      if (ctl.built) { // refresh the numbers only; keep the QR and any selection
        details.querySelector('#click-count').textContent = fmtNumber(su.clickCount);
        details.querySelector('#bot-count').textContent = fmtNumber(su.botClickCount || 0);
        details.querySelector('#last-click').textContent = su.lastHumanAccessTime ? fmtRelative(su.lastHumanAccessTime) : 'never';
        return;
      }
      ctl.built = true;
      replace(details,
        h('div', { class: 'created' },
          h('div', { class: 'qr-wrap' }, h('img', { class: 'qr', src: qrURL(code, 320), alt: `QR code for ${su.shortUrl}`, width: 160, height: 160, id: 'stats-qr' })),
          h('div', { class: 'grow stack' },
            copyField('Short URL', su.shortUrl),
            h('p', { class: 'muted ellipsis', title: su.longUrl }, '→ ', h('a', { href: safeHref(su.longUrl), target: '_blank', rel: 'noopener noreferrer' }, su.longUrl)),
            h('dl', { class: 'facts' },
              h('div', null, h('dt', null, 'Clicks'), h('dd', { id: 'click-count' }, fmtNumber(su.clickCount))),
              h('div', null, h('dt', null, 'Bot visits'), h('dd', { id: 'bot-count' }, fmtNumber(su.botClickCount || 0))),
              h('div', null, h('dt', null, 'Last click'), h('dd', { id: 'last-click' }, su.lastHumanAccessTime ? fmtRelative(su.lastHumanAccessTime) : 'never')),
              h('div', null, h('dt', null, 'Created'), h('dd', null, fmtTime(su.createTime))),
              h('div', null, h('dt', null, 'Expires'), h('dd', null, su.expireTime ? fmtTime(su.expireTime) : 'never'))))));
    } catch (err) {
      replace(details, h('p', { class: 'error' }, err instanceof ApiError && err.code === Code.NOT_FOUND ? 'No such link (or not yours).' : (err.friendly || err.message)));
    }
  }

  async function loadStats() {
    const days = Number(range.value);
    const to = new Date();
    const from = new Date(to.getTime() - (days - 1) * 86400000);
    try {
      const st = await get(`/api/v1/stats/${encodeURIComponent(code)}${qs({ from: isoDay(from), to: isoDay(to), granularity: gran.value })}`);
      if (!ctl.alive) return;
      const human = Number(st.totalHumanClicks || 0);
      const bot = Number(st.totalBotClicks || 0);
      replace(totals,
        h('div', { class: 'total' }, h('strong', { id: 'total-human' }, fmtNumber(human)), h('span', null, 'clicks by people')),
        h('div', { class: 'total' }, h('strong', { id: 'total-bot' }, fmtNumber(bot)), h('span', null, 'by bots and previews')));
      const per = gran.value === 'STATS_GRANULARITY_DAY' ? 'day' : gran.value === 'STATS_GRANULARITY_WEEK' ? 'week' : 'month';
      const buckets = (st.periods || st.days || []).map((p) => ({ date: p.start || p.date, humanClicks: p.humanClicks, botClicks: p.botClicks }));
      replace(chartBox, dayChart(buckets, { width: chartBox.clientWidth || 640, label: `Clicks per ${per}` }),
        h('p', { class: 'legend' }, h('span', { class: 'key human' }), 'people ', h('span', { class: 'key bot' }), 'bots'));
      const cs = st.countries || [];
      const max = Math.max(1, ...cs.map((c) => Number(c.humanClicks || 0) + Number(c.botClicks || 0)));
      replace(countries, cs.length
        ? h('ul', { class: 'bars' }, cs.map((c) => {
          const n = Number(c.humanClicks || 0) + Number(c.botClicks || 0);
          const fill = h('span', { class: 'fill' });
          fill.style.width = `${(100 * n) / max}%`;
          return h('li', { dataset: { country: c.country } },
            h('span', { class: 'label' }, countryName(c.country)),
            h('span', { class: 'track', 'aria-hidden': 'true' }, fill),
            h('span', { class: 'num' }, fmtNumber(n)));
        }))
        : h('p', { class: 'empty' }, 'No clicks in this range.'));
      for (const [k, box] of Object.entries(dims)) replace(box, dimBars(st[k] || [], k));
      say(status, `Updated ${new Date().toLocaleTimeString()}`);
    } catch (err) {
      say(status, err instanceof ApiError ? err.friendly : err.message, 'error');
    }
  }

  const reload = () => { loadDetails(); loadStats(); };
  range.addEventListener('change', loadStats);
  gran.addEventListener('change', loadStats);
  refresh.addEventListener('click', reload);

  root.append(
    h('header', { class: 'view-head' },
      h('p', null, h('a', { href: '#/links', class: 'back' }, '← All links')),
      h('h1', null, 'Stats for ', h('span', { class: 'mono' }, code)),
      h('p', { class: 'lead' }, 'Clicks are collected in the background and appear within seconds.')),
    details,
    h('div', { class: 'card' },
      h('div', { class: 'row spread' }, h('h2', null, 'Clicks over time'),
        h('div', { class: 'row' }, h('label', { for: rangeId, class: 'offscreen' }, 'Range'), range,
          h('label', { for: granId, class: 'offscreen' }, 'Bucket'), gran, refresh)),
      totals, chartBox, status),
    h('div', { class: 'grid two' },
      h('div', { class: 'card' }, h('h2', null, 'By country'), countries),
      h('div', { class: 'card' }, h('h2', null, 'By referrer'), dims.referrers),
      h('div', { class: 'card' }, h('h2', null, 'By browser'), dims.browsers),
      h('div', { class: 'card' }, h('h2', null, 'By operating system'), dims.operatingSystems),
      h('div', { class: 'card' }, h('h2', null, 'By device'), dims.devices)));
  reload();
  // Analytics arrive asynchronously: keep the numbers fresh while open.
  ctl.timer = setInterval(() => { if (!document.hidden) reload(); }, 5000);
  return () => { ctl.alive = false; clearInterval(ctl.timer); };
}

// dimLabel names a dimension's empty value.
function dimLabel(kind, v) {
  if (v) return v;
  return kind === 'referrers' ? 'Direct / none' : 'Unknown';
}

// numOf is "people" or "people + N bots" (or "N bots" alone).
function numOf(people, bots) {
  const b = `${fmtNumber(bots)} ${bots === 1 ? 'bot' : 'bots'}`;
  if (!bots) return fmtNumber(people);
  if (!people) return h('span', { class: 'muted' }, b);
  return h('span', null, fmtNumber(people), h('span', { class: 'muted' }, ` + ${b}`));
}

// dimBars lists a dimension's values as bars, people and bots apart in the
// number (bots after a slash when there are any).
function dimBars(ds, kind) {
  if (!ds.length) return h('p', { class: 'empty' }, 'No clicks in this range.');
  const total = (d) => Number(d.humanClicks || 0) + Number(d.botClicks || 0);
  const max = Math.max(1, ...ds.map(total));
  return h('ul', { class: 'bars' }, ds.map((d) => {
    const fill = h('span', { class: 'fill' });
    fill.style.width = `${(100 * total(d)) / max}%`;
    const bots = Number(d.botClicks || 0);
    return h('li', { dataset: { value: d.value || '', human: String(Number(d.humanClicks || 0)), bot: String(bots) } },
      h('span', { class: 'label', title: dimLabel(kind, d.value) }, dimLabel(kind, d.value)),
      h('span', { class: 'track', 'aria-hidden': 'true' }, fill),
      h('span', { class: 'num' }, numOf(Number(d.humanClicks || 0), bots)));
  }));
}

// lockIcon is inline SVG: an emoji needs a font that many systems lack
// (it drew an empty box).
function lockIcon() {
  return s('svg', { viewBox: '0 0 16 16', width: 12, height: 12, 'aria-hidden': 'true', focusable: 'false', class: 'icon' },
    s('path', { d: 'M4.5 7V5a3.5 3.5 0 0 1 7 0v2', fill: 'none', stroke: 'currentColor', 'stroke-width': 1.6 }),
    s('rect', { x: 2.5, y: 7, width: 11, height: 8, rx: 1.5, fill: 'currentColor' }));
}
