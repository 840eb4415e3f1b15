// Live voting. #/vote lists the open and closed elections (and lets admins
// create one); #/vote/{id} shows an election: one vote per registered user,
// results whose bars move live from the results stream, and its state (a
// close shows at once: the stream carries it).

import { ApiError, Code, get, liveEvents, post, qs } from '../api.js';
import { copyField, fmtNumber, fmtTime, h, id, liveBadge, liveRegion, newKey, replace, say } from '../dom.js';
import { isAdmin, isGuest, onSession, user } from '../session.js';

const STATE = {
  ELECTION_STATE_DRAFT: ['Draft', 'draft'],
  ELECTION_STATE_OPEN: ['Open', 'open'],
  ELECTION_STATE_CLOSED: ['Closed', 'closed'],
};

const RECENT_KEY = 'platform.recentElections';

function recent() {
  try { return JSON.parse(localStorage.getItem(RECENT_KEY) || '[]').filter((e) => e && e.id); } catch { return []; }
}
function remember(e) {
  const list = [{ id: e.electionId, title: e.title }, ...recent().filter((x) => x.id !== e.electionId)].slice(0, 12);
  try { localStorage.setItem(RECENT_KEY, JSON.stringify(list)); } catch { /* storage full or disabled */ }
}

export function render(root, args) {
  if (args[0]) return renderElection(root, args[0]);
  return renderIndex(root);
}

function electionLink(eid) {
  return `${location.origin}${location.pathname}#/vote/${encodeURIComponent(eid)}`;
}

// Candidate ids: 1-64 letters, digits, '-' and '_', unique; derived from names.
function candidateIds(names) {
  const seen = new Set();
  return names.map((name, i) => {
    let base = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
      .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 56);
    if (!base) base = `c${i + 1}`;
    let cid = base;
    for (let n = 2; seen.has(cid); n++) cid = `${base}-${n}`;
    seen.add(cid);
    return { candidateId: cid, name };
  });
}

function renderIndex(root) {
  const status = liveRegion({ id: 'election-status' });
  const goId = id('go');
  const go = h('input', { id: goId, class: 'input mono', placeholder: 'Election id or link', autocomplete: 'off' });
  const open = h('form', {
    class: 'row', onsubmit: (e) => {
      e.preventDefault();
      const v = go.value.trim();
      const m = v.match(/#\/vote\/([^/?#\s]+)/);
      const eid = m ? decodeURIComponent(m[1]) : v;
      if (eid) location.hash = `#/vote/${encodeURIComponent(eid)}`;
    },
  }, h('label', { for: goId, class: 'offscreen' }, 'Election id or link'), go, h('button', { class: 'btn', type: 'submit' }, 'Go'));

  const adminBox = h('div');
  const titleId = id('title');
  const candId = id('cands');
  const errTitle = id('err-title');
  const errCands = id('err-cands');
  const title = h('input', { id: titleId, name: 'title', class: 'input', maxlength: 200, required: true, 'aria-describedby': errTitle, placeholder: 'Best pizza topping' });
  const cands = h('textarea', { id: candId, name: 'candidates', class: 'input', rows: 4, required: true, 'aria-describedby': `${candId}-hint ${errCands}`, placeholder: 'Margherita\nPepperoni\nFunghi' });
  const openNow = h('input', { type: 'checkbox', id: id('opennow'), checked: true });
  const create = h('button', { type: 'submit', class: 'btn primary', id: 'create-election' }, 'Create election');

  const createForm = h('form', {
    class: 'stack', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      for (const [el, eid] of [[title, errTitle], [cands, errCands]]) { el.removeAttribute('aria-invalid'); document.getElementById(eid).textContent = ''; }
      const names = cands.value.split('\n').map((x) => x.trim()).filter(Boolean);
      create.disabled = true;
      say(status, 'Creating…', 'busy');
      try {
        let el = await post('/api/v1/elections', { title: title.value.trim(), candidates: candidateIds(names) });
        if (openNow.checked) el = await post(`/api/v1/elections/${encodeURIComponent(el.electionId)}:open`, {});
        remember(el);
        say(status, 'Election created.', 'ok');
        location.hash = `#/vote/${encodeURIComponent(el.electionId)}`;
      } catch (err) {
        if (!(err instanceof ApiError)) { say(status, err.message, 'error'); return; }
        const t = err.field('title');
        const c = err.field('candidates') || err.violations.filter((v) => v.field.startsWith('candidates')).map((v) => `${v.field}: ${v.description}`).join('; ');
        if (t) { title.setAttribute('aria-invalid', 'true'); document.getElementById(errTitle).textContent = t; }
        if (c) { cands.setAttribute('aria-invalid', 'true'); document.getElementById(errCands).textContent = c; }
        say(status, t || c ? 'Please fix the highlighted fields.' : err.friendly, 'error');
      } finally {
        create.disabled = false;
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: titleId }, 'Title'), title, h('p', { class: 'field-error', id: errTitle, 'aria-live': 'polite' })),
  h('div', { class: 'field' }, h('label', { for: candId }, 'Candidates'), h('p', { class: 'hint', id: `${candId}-hint` }, 'One per line, 2 to 100.'), cands,
    h('p', { class: 'field-error', id: errCands, 'aria-live': 'polite' })),
  h('div', { class: 'check' }, openNow, h('label', { for: openNow.id }, 'Open for voting right away')),
  h('div', { class: 'row' }, create, status));

  const off = onSession(() => {
    replace(adminBox, isAdmin()
      ? h('div', { class: 'card' }, h('h2', null, 'New election'), createForm)
      : null);
  });

  const list = recent();
  const all = electionList();
  root.append(
    h('header', { class: 'view-head' },
      h('h1', null, 'Live voting'),
      h('p', { class: 'lead' }, 'One vote per person, results live as they come in.')),
    h('div', { class: 'grid two' },
      h('div', { class: 'stack' },
        all.card,
        h('div', { class: 'card' }, h('h2', null, 'Open an election'), open),
        h('div', { class: 'card' }, h('h2', null, 'Recent'),
          list.length
            ? h('ul', { class: 'rows' }, list.map((e) => h('li', { class: 'row-item' }, h('a', { href: `#/vote/${encodeURIComponent(e.id)}` }, e.title || e.id))))
            : h('p', { class: 'empty' }, 'Elections you open appear here.'))),
      adminBox));
  return off;
}

// electionList is the public list: newest first, filtered by state, more
// on demand (the API pages it).
function electionList() {
  const filterId = id('state-filter');
  const filter = h('select', { id: filterId, class: 'input' },
    h('option', { value: '' }, 'Open and closed'),
    h('option', { value: 'ELECTION_STATE_OPEN' }, 'Open'),
    h('option', { value: 'ELECTION_STATE_CLOSED' }, 'Closed'));
  const items = h('ul', { class: 'rows', id: 'election-list' });
  const more = h('button', { type: 'button', class: 'btn ghost', id: 'more-elections', hidden: true }, 'More elections');
  const status = liveRegion({ id: 'election-list-status' });
  let token = '';
  async function page(reset) {
    if (reset) { token = ''; replace(items); }
    more.disabled = true;
    try {
      const res = await get(`/api/v1/elections${qs({ pageSize: 20, pageToken: token, state: filter.value })}`);
      for (const e of res.elections || []) {
        const [label, cls] = STATE[e.state] || ['Unknown', 'draft'];
        items.append(h('li', { class: 'row-item', dataset: { election: e.electionId } },
          h('a', { href: `#/vote/${encodeURIComponent(e.electionId)}` }, e.title),
          h('span', { class: `badge state ${cls}` }, label),
          h('span', { class: 'muted' }, fmtTime(e.createTime))));
      }
      token = res.nextPageToken || '';
      more.hidden = !token;
      if (!items.children.length) items.append(h('li', { class: 'empty' }, 'No elections yet.'));
      say(status, '');
    } catch (err) {
      say(status, err instanceof ApiError ? err.friendly : `Network error: ${err.message}`, 'error');
    } finally {
      more.disabled = false;
    }
  }
  filter.addEventListener('change', () => page(true));
  more.addEventListener('click', () => page(false));
  page(true);
  return {
    card: h('div', { class: 'card' },
      h('div', { class: 'row spread' }, h('h2', null, 'Elections'),
        h('span', null, h('label', { for: filterId, class: 'offscreen' }, 'Show'), filter)),
      items, h('div', { class: 'row' }, more, status)),
  };
}

function renderElection(root, eid) {
  const ctl = { alive: true, stream: null, tally: null, version: 0, election: null, voted: false };
  const head = h('header', { class: 'view-head' }, h('p', null, h('a', { href: '#/vote', class: 'back' }, '← Elections')), h('h1', null, 'Election'));
  const ballot = h('div', { class: 'card', id: 'ballot' });
  const results = h('div', { class: 'card', id: 'results' });
  const adminBox = h('div', { id: 'election-admin' });
  const voteStatus = h('p', { class: 'status', id: 'vote-status', role: 'status', 'aria-live': 'polite' });
  const live = h('span', { class: 'live', id: 'live-state', dataset: { state: 'connecting' } }, 'connecting…');
  const bars = new Map(); // candidateId -> {fill, num, pct}
  const totalEl = h('strong', { id: 'total-votes' }, '0');
  const totalWord = h('span', null, ' votes in total');

  root.append(head, h('div', { class: 'grid two' }, ballot, h('div', { class: 'stack' }, results, adminBox)));

  function candidateName(cid) {
    const c = ctl.election && ctl.election.candidates.find((x) => x.candidateId === cid);
    return c ? c.name : cid;
  }

  function drawResults() {
    const el = ctl.election;
    replace(results,
      h('div', { class: 'row spread' }, h('h2', null, 'Results'), live),
      h('ul', { class: 'bars big', id: 'result-bars' }, el.candidates.map((c) => {
        const fill = h('span', { class: 'fill' });
        const num = h('span', { class: 'num' }, '0');
        const li = h('li', { dataset: { candidate: c.candidateId } },
          h('span', { class: 'label' }, c.name),
          h('span', { class: 'track', 'aria-hidden': 'true' }, fill),
          num);
        bars.set(c.candidateId, { fill, num, li });
        return li;
      })),
      h('p', { class: 'muted' }, totalEl, totalWord));
    if (ctl.tally) applyTally(ctl.tally);
  }

  function applyTally(t) {
    const v = Number(t.version || 0);
    if (ctl.tally && v < ctl.version) return; // keep the highest version seen
    ctl.tally = t;
    ctl.version = v;
    const total = Number(t.totalVotes || 0);
    const max = Math.max(1, ...(t.counts || []).map((c) => Number(c.votes || 0)));
    for (const c of t.counts || []) {
      const b = bars.get(c.candidateId);
      if (!b) continue;
      const n = Number(c.votes || 0);
      b.fill.style.width = `${(100 * n) / max}%`;
      const pct = total ? Math.round((100 * n) / total) : 0;
      b.num.textContent = `${fmtNumber(n)} · ${pct}%`;
      b.li.dataset.votes = String(n);
      b.li.setAttribute('aria-label', `${candidateName(c.candidateId)}: ${n} votes, ${pct}%`);
    }
    totalEl.textContent = fmtNumber(total);
    totalWord.textContent = total === 1 ? ' vote in total' : ' votes in total';
  }

  const setLive = liveBadge(live, 'not live');

  function markVoted(text, chosen) {
    ctl.voted = true;
    for (const b of ballot.querySelectorAll('button.vote')) {
      b.disabled = true;
      b.setAttribute('aria-disabled', 'true');
      if (chosen && b.dataset.candidate === chosen) {
        b.classList.add('chosen');
        b.querySelector('.action').textContent = '✓ Voted';
      }
    }
    ballot.classList.add('voted');
    say(voteStatus, text, 'ok');
  }

  async function cast(cid, btn) {
    if (ctl.voted) { say(voteStatus, 'You already voted in this election.', 'error'); return; }
    for (const b of ballot.querySelectorAll('button.vote')) b.disabled = true;
    btn.querySelector('.action').textContent = 'Voting…';
    say(voteStatus, 'Sending your vote…', 'busy');
    const key = newKey();
    // Retry on network failure with the same key: the server counts it once.
    for (let attempt = 0; ; attempt++) {
      try {
        await post('/api/v1/votes', { electionId: eid, candidateId: cid }, { headers: { 'Idempotency-Key': key } });
        markVoted(`Your vote for ${candidateName(cid)} is counted.`, cid);
        return;
      } catch (err) {
        if (!(err instanceof ApiError) && attempt < 2) { await new Promise((r) => setTimeout(r, 500 * (attempt + 1))); continue; }
        btn.querySelector('.action').textContent = 'Vote';
        if (err instanceof ApiError && err.code === Code.ALREADY_EXISTS) {
          markVoted('You already voted in this election: one vote per person.', err.metadata.candidate_id || err.metadata.candidateId);
          voteStatus.dataset.kind = 'error';
          return;
        }
        for (const b of ballot.querySelectorAll('button.vote')) b.disabled = ctl.voted || !canVote();
        let msg = err instanceof ApiError ? err.friendly : `Network error: ${err.message}`;
        if (err instanceof ApiError && err.code === Code.FAILED_PRECONDITION) msg = 'Voting is not open right now.';
        if (err instanceof ApiError && (err.code === Code.PERMISSION_DENIED || err.code === Code.UNAUTHENTICATED)) msg = 'Only registered users can vote. Sign in or register first.';
        say(voteStatus, msg, 'error');
        return;
      }
    }
  }

  // The window may end without a close: the page redraws at its end.
  const ended = (el) => el.endTime && Date.parse(el.endTime) <= Date.now();
  const canVote = () => ctl.election && ctl.election.state === 'ELECTION_STATE_OPEN' && !ended(ctl.election) && !isGuest();
  let endTimer = 0;
  function watchEnd() {
    clearTimeout(endTimer);
    const el = ctl.election;
    if (!el.endTime || ended(el) || el.state !== 'ELECTION_STATE_OPEN') return;
    endTimer = setTimeout(() => { if (ctl.alive) { drawBallot(); drawAdmin(); } }, Math.min(2 ** 31 - 1, Date.parse(el.endTime) - Date.now() + 50));
  }

  // A state the stream pushed (open, close): redraw at once.
  function applyElection(el) {
    const was = ctl.election && ctl.election.state;
    ctl.election = el;
    drawBallot();
    drawAdmin();
    watchEnd();
    if (was && was !== el.state) say(voteStatus, el.state === 'ELECTION_STATE_CLOSED' ? 'Voting has closed.' : 'Voting is open.', 'ok');
  }

  function drawBallot() {
    const el = ctl.election;
    const [label, cls] = STATE[el.state] || ['Unknown', 'draft'];
    replace(head,
      h('p', null, h('a', { href: '#/vote', class: 'back' }, '← Elections')),
      h('h1', null, el.title),
      h('p', { class: 'row' }, h('span', { class: `badge state ${cls}`, id: 'election-state' }, label),
        el.endTime ? h('span', { class: 'muted' }, `until ${fmtTime(el.endTime)}`) : null));
    let note = null;
    if (el.state === 'ELECTION_STATE_OPEN' && ended(el)) note = h('p', { class: 'notice' }, 'Voting has ended.');
    else if (el.state !== 'ELECTION_STATE_OPEN') note = h('p', { class: 'notice' }, el.state === 'ELECTION_STATE_CLOSED' ? 'This election is closed.' : 'This election has not opened yet.');
    else if (isGuest()) note = h('p', { class: 'notice', id: 'guest-note' }, 'Only registered users can vote. ', h('a', { href: '#/account' }, 'Register or sign in'), ' — it takes a few seconds.');
    replace(ballot,
      h('h2', null, 'Your vote'),
      note,
      h('div', { class: 'choices', role: 'group', 'aria-label': 'Candidates' }, el.candidates.map((c) => {
        const b = h('button', { type: 'button', class: 'vote', dataset: { candidate: c.candidateId }, disabled: !canVote() },
          h('span', { class: 'name' }, c.name), h('span', { class: 'action' }, 'Vote'));
        b.addEventListener('click', () => cast(c.candidateId, b));
        return b;
      })),
      voteStatus);
    if (ctl.voted) markVoted(voteStatus.textContent || 'You voted in this election.');
  }

  function drawAdmin() {
    if (!isAdmin()) { replace(adminBox); return; }
    const el = ctl.election;
    const status = liveRegion();
    const act = (verb) => async (ev) => {
      const btn = ev.currentTarget;
      // Closing is final: the first press arms the button for a few
      // seconds, like Delete on the links page (no blocking confirm()).
      if (verb === 'close' && btn.dataset.armed !== 'true') {
        btn.dataset.armed = 'true';
        btn.textContent = 'Confirm close';
        say(status, 'Press again to close voting: it cannot be reopened.');
        setTimeout(() => { if (btn.isConnected) { btn.dataset.armed = ''; btn.textContent = 'Close voting'; } }, 4000);
        return;
      }
      try {
        ctl.election = await post(`/api/v1/elections/${encodeURIComponent(eid)}:${verb}`, {});
        drawBallot();
        drawAdmin();
      } catch (err) {
        say(status, err instanceof ApiError ? err.friendly : err.message, 'error');
      }
    };
    replace(adminBox, h('div', { class: 'card' },
      h('h2', null, 'Manage'),
      copyField('Link for voters', electionLink(eid)),
      h('div', { class: 'row' },
        el.state !== 'ELECTION_STATE_OPEN' ? h('button', { type: 'button', class: 'btn primary', id: 'open-election', onclick: act('open') }, 'Open voting') : null,
        el.state === 'ELECTION_STATE_OPEN' ? h('button', { type: 'button', class: 'btn danger', id: 'close-election', onclick: act('close') }, 'Close voting') : null,
        status)));
  }

  async function checkVoted() {
    const u = user();
    if (!u || u.guest) return;
    try {
      const st = await get(`/api/v1/votes/status/${encodeURIComponent(u.id)}${qs({ electionId: eid })}`);
      if (ctl.alive && st.voted) markVoted(`You voted${st.acceptedAt ? ` on ${fmtTime(st.acceptedAt)}` : ''}.`);
    } catch { /* the ballot stays usable; the server refuses a second vote anyway */ }
  }

  async function load() {
    try {
      ctl.election = await get(`/api/v1/elections/${encodeURIComponent(eid)}`);
    } catch (err) {
      replace(ballot, h('p', { class: 'error', role: 'alert' }, err instanceof ApiError && err.code === Code.NOT_FOUND ? 'No such election.' : (err.friendly || err.message)));
      return;
    }
    if (!ctl.alive) return;
    remember(ctl.election);
    drawBallot();
    drawResults();
    drawAdmin();
    watchEnd();
    get(`/api/v1/results/live/${encodeURIComponent(eid)}`).then((t) => { if (ctl.alive) applyTally(t); }).catch(() => {});
    // The election rides on the stream's first message and on one of its
    // own after every open or close.
    const election = (m) => { if (m.election && ctl.alive) applyElection(m.election); };
    ctl.stream = liveEvents(
      () => `/api/v1/results/stream/${encodeURIComponent(eid)}${qs({ afterVersion: ctl.tally ? ctl.version : '' })}`,
      {
        tally: (m) => { election(m); applyTally(m.tally); },
        heartbeat: election,
        election,
        // Our version is unknown there: take the current count afresh.
        resync: () => { ctl.tally = null; ctl.version = 0; return 'restart'; },
      },
      { onState: setLive },
    );
    await checkVoted();
  }

  const off = onSession(() => {
    if (!ctl.election) return;
    ctl.voted = false;
    drawBallot();
    drawAdmin();
    checkVoted();
  });
  load();
  return () => { ctl.alive = false; clearTimeout(endTimer); off(); if (ctl.stream) ctl.stream.stop(); };
}
