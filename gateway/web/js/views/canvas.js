// Pixel canvas. The board is one W×H <canvas> (a pixel per board pixel),
// scaled and moved with a CSS transform so that zoom and pan cost nothing.
// It is loaded from the bit-packed snapshot (GET /api/v1/canvas, 4 bits a
// pixel, X-Canvas-Seq) and kept live from the delta stream (Server-Sent Events) resumed
// from the last sequence applied; a resync reloads the snapshot.

import { ApiError, Code, get, liveEvents, post } from '../api.js';
import { fmtRelative, fmtTime, h, id, liveBadge, liveRegion, say } from '../dom.js';

const MAX_ZOOM = 48;
// The first view shows one board pixel as at least this many screen pixels,
// so that single placements are visible without zooming.
const MIN_START_ZOOM = 2;
// The first stream starts this many placements back, to centre the first
// view on where people painted last.
const RECENT = 200;
// Hovering asks who placed a pixel only once the pointer rests this long.
const AUTHOR_DELAY_MS = 150;

export function render(root) {
  const ctl = { alive: true, stream: null, cooldownTimer: 0 };
  const st = {
    info: null, W: 0, H: 0, rgb: [], pix: null, seq: 0, needSnapshot: true,
    color: 5, sel: null,
    z: 1, tx: 0, ty: 0, minZ: 1,
    // pixel index -> {prev, color, seq}: drawn optimistically; kept until
    // the board we hold includes its sequence number (seq is unknown while
    // the request is in flight).
    pending: new Map(),
    nextAt: 0, // ms epoch when the user may place again
    // pixel index -> GetPixel answer (or the promise of one); a delta for
    // the pixel drops its entry.
    authors: new Map(),
    infoAt: null, // the pixel whose author is shown or wanted
    infoTimer: 0,
    touched: false, // the person moved the view: the first view stays theirs
    lookBack: 0, // seq the first stream starts after, for the first view
    recent: [], // pixel indexes of the look-back read so far
  };

  const board = h('canvas', { id: 'board', class: 'board', width: 1, height: 1, 'aria-hidden': 'true' });
  const cursor = h('div', { class: 'cursor', hidden: true });
  const pixelInfo = h('p', { class: 'pixel-info', id: 'pixel-info', 'aria-live': 'polite', hidden: true });
  const layer = h('div', { class: 'layer' }, board);
  const viewport = h('div', {
    class: 'viewport', id: 'viewport', tabindex: '0', role: 'application',
    'aria-label': 'Canvas. Arrow keys move the cursor, Enter places a pixel, plus and minus zoom.',
    'aria-describedby': 'canvas-help',
  }, layer, cursor, pixelInfo);
  const coords = h('span', { class: 'coords mono', id: 'coords', 'aria-live': 'off' }, '–');
  const liveState = h('span', { class: 'live', id: 'canvas-live', dataset: { state: 'connecting' } }, 'connecting…');
  const seqEl = h('span', { class: 'muted small mono', id: 'canvas-seq' }, '');
  // Sixteen blank swatches hold the palette's place until the canvas info
  // arrives, so that filling it moves nothing below it.
  const palette = h('div', { class: 'palette', role: 'radiogroup', 'aria-label': 'Colour' },
    ...Array.from({ length: 16 }, () => h('span', { class: 'color blank', 'aria-hidden': 'true' })));
  const xId = id('x'); const yId = id('y');
  const xIn = h('input', { id: xId, name: 'x', class: 'input mono', type: 'number', min: 0, step: 1, inputmode: 'numeric' });
  const yIn = h('input', { id: yId, name: 'y', class: 'input mono', type: 'number', min: 0, step: 1, inputmode: 'numeric' });
  const placeBtn = h('button', { type: 'button', class: 'btn primary', id: 'place', disabled: true }, 'Place pixel');
  const chosen = h('span', { class: 'swatch-sm', 'aria-hidden': 'true' });
  const cooldown = h('div', { class: 'cooldown', id: 'cooldown', dataset: { state: 'ready' } },
    h('span', { class: 'cd-text' }, 'Ready to place'),
    h('span', { class: 'cd-track', 'aria-hidden': 'true' }, h('span', { class: 'cd-fill' })));
  const status = liveRegion({ id: 'canvas-status' });

  root.append(
    h('header', { class: 'view-head' },
      h('h1', null, 'Pixel canvas'),
      h('p', { class: 'lead canvas-lead' }, 'Everyone shares one board. Pick a colour, choose a spot, place your pixel — then wait for the cooldown.')),
    h('div', { class: 'canvas-layout' },
      h('div', { class: 'card board-card' },
        h('div', { class: 'row spread toolbar' },
          h('div', { class: 'row' },
            h('button', { type: 'button', class: 'btn small', 'aria-label': 'Zoom out', onclick: () => { st.touched = true; zoomBy(1 / 1.5); } }, '−'),
            h('button', { type: 'button', class: 'btn small', 'aria-label': 'Zoom in', onclick: () => { st.touched = true; zoomBy(1.5); } }, '+'),
            h('button', { type: 'button', class: 'btn small', onclick: () => { st.touched = true; fit(); } }, 'Fit'),
            coords),
          h('div', { class: 'row' }, seqEl, liveState)),
        viewport,
        h('p', { class: 'hint', id: 'canvas-help' }, 'Drag to pan, scroll or pinch to zoom, click or tap a pixel to select it. Keyboard: arrows move, Enter places, + and − zoom.')),
      h('div', { class: 'card side stack' },
        h('h2', null, 'Colour'),
        palette,
        h('h2', null, 'Pixel'),
        h('div', { class: 'row tight xy' },
          h('div', { class: 'field small' }, h('label', { for: xId }, 'x'), xIn),
          h('div', { class: 'field small' }, h('label', { for: yId }, 'y'), yIn)),
        h('div', { class: 'row place-row' }, placeBtn, chosen),
        cooldown,
        status)));

  // ---- drawing ----

  function hexToRgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  const g = () => board.getContext('2d', { willReadFrequently: true });

  function drawPixel(idx, color) {
    st.pix[idx] = color;
    const c = g();
    c.fillStyle = st.info.palette[color] || '#000000';
    c.fillRect(idx % st.W, Math.floor(idx / st.W), 1, 1);
  }

  // Palette colour i as one RGBA word in the platform's byte order, so the
  // board is filled a pixel (not a byte) at a time.
  function paletteWords() {
    const bytes = new Uint8ClampedArray(16 * 4);
    st.rgb.forEach(([r, gg, b], i) => bytes.set([r, gg, b, 255], i * 4));
    return new Uint32Array(bytes.buffer);
  }

  function drawAll() {
    const img = new ImageData(st.W, st.H);
    const px = new Uint32Array(img.data.buffer);
    const words = st.words;
    const pix = st.pix;
    for (let i = 0; i < pix.length; i++) px[i] = words[pix[i]];
    g().putImageData(img, 0, 0);
    // Optimistic pixels the board does not include yet stay visible.
    prunePending();
    for (const [idx, p] of st.pending) drawPixel(idx, p.color);
  }

  function prunePending() {
    for (const [idx, p] of st.pending) if (p.seq && p.seq <= st.seq) st.pending.delete(idx);
  }

  // ---- view transform ----

  function apply() {
    layer.style.transform = `translate(${st.tx}px, ${st.ty}px) scale(${st.z})`;
    viewport.dataset.zoom = st.z.toFixed(2);
    placeCursor();
  }

  // The selection marker lives in screen space so it stays visible at any
  // zoom: at least 10 px, centred on the selected pixel.
  function placeCursor() {
    if (!st.sel) return;
    const size = Math.max(10, st.z);
    const cx = st.tx + (st.sel.x + 0.5) * st.z;
    const cy = st.ty + (st.sel.y + 0.5) * st.z;
    cursor.style.width = `${size}px`;
    cursor.style.height = `${size}px`;
    cursor.style.transform = `translate(${cx - size / 2}px, ${cy - size / 2}px)`;
  }

  function fit() {
    if (!st.info) return;
    const r = viewport.getBoundingClientRect();
    st.vw = r.width; st.vh = r.height;
    st.minZ = Math.min(r.width / st.W, r.height / st.H);
    st.z = st.minZ;
    st.tx = (r.width - st.W * st.z) / 2;
    st.ty = (r.height - st.H * st.z) / 2;
    apply();
  }

  // The first view: at least MIN_START_ZOOM screen pixels a board pixel,
  // centred on (bx, by) as far as the board allows.
  function startView(bx, by) {
    const r = viewport.getBoundingClientRect();
    st.vw = r.width; st.vh = r.height;
    st.minZ = Math.min(r.width / st.W, r.height / st.H);
    st.z = Math.min(MAX_ZOOM, Math.max(MIN_START_ZOOM, st.minZ));
    const place1 = (view, size, b) => (size * st.z <= view
      ? (view - size * st.z) / 2
      : Math.min(0, Math.max(view - size * st.z, view / 2 - (b + 0.5) * st.z)));
    st.tx = place1(r.width, st.W, bx);
    st.ty = place1(r.height, st.H, by);
    apply();
  }

  // Centres the first view on the median of recent placements (deltas of
  // the look-back the first stream started with), unless the person has
  // moved the view already.
  function centreOnRecent(idxs) {
    if (st.touched || idxs.length === 0) return;
    const med = (a) => { a.sort((p, q) => p - q); return a[a.length >> 1]; };
    startView(med(idxs.map((i) => i % st.W)), med(idxs.map((i) => Math.floor(i / st.W))));
    viewport.dataset.centred = 'recent';
  }

  const clampZoom = (z) => Math.min(MAX_ZOOM, Math.max(st.minZ * 0.5, z));

  function zoomAt(factor, cx, cy) {
    if (!st.info) return;
    const z = clampZoom(st.z * factor);
    st.tx = cx - ((cx - st.tx) * z) / st.z;
    st.ty = cy - ((cy - st.ty) * z) / st.z;
    st.z = z;
    apply();
  }

  function zoomBy(f) {
    const r = viewport.getBoundingClientRect();
    if (st.sel) {
      zoomAt(f, st.tx + (st.sel.x + 0.5) * st.z, st.ty + (st.sel.y + 0.5) * st.z);
    } else {
      zoomAt(f, r.width / 2, r.height / 2);
    }
  }

  function toBoard(clientX, clientY) {
    const r = viewport.getBoundingClientRect();
    const x = Math.floor((clientX - r.left - st.tx) / st.z);
    const y = Math.floor((clientY - r.top - st.ty) / st.z);
    return x >= 0 && y >= 0 && x < st.W && y < st.H ? { x, y } : null;
  }

  // ---- who placed a pixel ----

  function authorText(x, y, res) {
    if (!res.placed) return `${x}, ${y}: never placed`;
    const who = { AUTHOR_KIND_USER: res.author, AUTHOR_KIND_GUEST: 'a guest', AUTHOR_KIND_DELETED: 'a deleted account' }[res.authorKind] || 'someone';
    return `${x}, ${y}: placed by ${who}, ${fmtRelative(res.time)}`;
  }

  function showAuthor(x, y, res) {
    pixelInfo.textContent = authorText(x, y, res);
    pixelInfo.title = res.time ? fmtTime(res.time) : '';
    pixelInfo.dataset.pixel = `${x},${y}`;
    pixelInfo.dataset.author = res.author || '';
    pixelInfo.dataset.kind = res.authorKind || 'AUTHOR_KIND_UNSPECIFIED';
    pixelInfo.hidden = false;
  }

  function author(idx) {
    let got = st.authors.get(idx);
    if (!got) {
      const x = idx % st.W; const y = Math.floor(idx / st.W);
      got = get(`/api/v1/canvas/pixels/${x}/${y}`).then((res) => {
        if (st.authors.get(idx) === got) st.authors.set(idx, res);
        return res;
      }, (err) => {
        if (st.authors.get(idx) === got) st.authors.delete(idx);
        throw err;
      });
      st.authors.set(idx, got);
    }
    return Promise.resolve(got);
  }

  // Shows who placed p (null: the selected pixel, or nothing), asking the
  // server after `delay` ms unless the answer is cached.
  function wantAuthor(p, delay) {
    p = p || st.sel;
    clearTimeout(st.infoTimer);
    if (!p || !st.info) { st.infoAt = null; pixelInfo.hidden = true; return; }
    const idx = p.y * st.W + p.x;
    st.infoAt = idx;
    const cached = st.authors.get(idx);
    if (cached && !(cached instanceof Promise)) { showAuthor(p.x, p.y, cached); return; }
    st.infoTimer = setTimeout(() => {
      author(idx).then((res) => { if (ctl.alive && st.infoAt === idx) showAuthor(p.x, p.y, res); }, () => {
        if (st.infoAt === idx) pixelInfo.hidden = true;
      });
    }, delay);
  }

  // A pixel changed: its cached author is stale.
  function authorChanged(idx) {
    st.authors.delete(idx);
    if (st.infoAt === idx) {
      const p = { x: idx % st.W, y: Math.floor(idx / st.W) };
      wantAuthor(p, AUTHOR_DELAY_MS);
    }
  }

  function select(p, { scroll = false } = {}) {
    st.sel = p;
    if (p) wantAuthor(p, 0);
    cursor.hidden = !p;
    if (p) {
      placeCursor();
      xIn.value = String(p.x);
      yIn.value = String(p.y);
      coords.textContent = `${p.x}, ${p.y}`;
      if (scroll) {
        const r = viewport.getBoundingClientRect();
        const sx = st.tx + (p.x + 0.5) * st.z;
        const sy = st.ty + (p.y + 0.5) * st.z;
        if (sx < 20 || sx > r.width - 20) st.tx += r.width / 2 - sx;
        if (sy < 20 || sy > r.height - 20) st.ty += r.height / 2 - sy;
        apply();
      }
    }
    updatePlaceButton();
  }

  // Pointer Events for mouse, pen and touch alike: one pointer dragged
  // pans; two pinch, zooming around their midpoint (which the fingers also
  // carry along); a press released without moving past the slop selects
  // the pixel under it. A gesture that ever moved or had a second finger
  // selects nothing, so a pan never selects.
  const pointers = new Map(); // pointerId -> {x, y} in viewport coordinates
  let gesture = null;
  const slop = (e) => (e.pointerType === 'mouse' ? 4 : 10);
  const local = (e) => {
    const r = viewport.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  };
  // (Re)starts the gesture from the pointers down now, keeping the board
  // where it is: a finger lifted mid-pinch goes on panning without a jump.
  function regrip(tap) {
    const ps = [...pointers.values()];
    if (ps.length === 0) { gesture = null; return; }
    const [a, b] = ps;
    const mid = b ? { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } : a;
    gesture = {
      tap, pinch: Boolean(b), moved: !tap,
      mid, d: b ? Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)) : 0,
      z: st.z, tx: st.tx, ty: st.ty,
    };
  }
  viewport.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    if (pointers.size >= 2) return; // a third finger changes nothing
    st.touched = true;
    viewport.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, local(e));
    regrip(pointers.size === 1);
  });
  viewport.addEventListener('pointermove', (e) => {
    const p = toBoard(e.clientX, e.clientY);
    coords.textContent = p ? `${p.x}, ${p.y}` : (st.sel ? `${st.sel.x}, ${st.sel.y}` : '–');
    if (e.pointerType === 'mouse' && !gesture) wantAuthor(p, AUTHOR_DELAY_MS);
    if (!gesture || !pointers.has(e.pointerId)) return;
    pointers.set(e.pointerId, local(e));
    const [a, b] = [...pointers.values()];
    if (gesture.pinch && b) {
      const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      const z = clampZoom(gesture.z * (Math.hypot(a.x - b.x, a.y - b.y) / gesture.d));
      // The board point under the first midpoint stays under the fingers.
      st.tx = mid.x - ((gesture.mid.x - gesture.tx) * z) / gesture.z;
      st.ty = mid.y - ((gesture.mid.y - gesture.ty) * z) / gesture.z;
      st.z = z;
    } else {
      const dx = a.x - gesture.mid.x; const dy = a.y - gesture.mid.y;
      if (!gesture.moved && Math.hypot(dx, dy) < slop(e)) return;
      gesture.moved = true;
      viewport.classList.add('dragging');
      st.tx = gesture.tx + dx; st.ty = gesture.ty + dy;
    }
    gesture.tap = false;
    apply(); // browsers send at most one pointermove a frame
  });
  const endPointer = (e) => {
    if (!pointers.has(e.pointerId)) return;
    const tap = gesture && gesture.tap && e.type === 'pointerup';
    pointers.delete(e.pointerId);
    if (tap) {
      const p = toBoard(e.clientX, e.clientY);
      if (p) select(p);
    }
    if (pointers.size === 0) viewport.classList.remove('dragging');
    regrip(false);
  };
  viewport.addEventListener('pointerleave', (e) => { if (e.pointerType === 'mouse') wantAuthor(null, 0); });
  viewport.addEventListener('pointerup', endPointer);
  viewport.addEventListener('pointercancel', endPointer);
  viewport.addEventListener('lostpointercapture', endPointer);
  viewport.addEventListener('wheel', (e) => {
    e.preventDefault();
    st.touched = true;
    const r = viewport.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  viewport.addEventListener('keydown', (e) => {
    if (!st.info) return;
    st.touched = true;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      const [dx, dy] = moves[e.key];
      const step = e.shiftKey ? 10 : 1;
      const cur = st.sel || { x: Math.floor(st.W / 2), y: Math.floor(st.H / 2) };
      select({ x: Math.min(st.W - 1, Math.max(0, cur.x + dx * step)), y: Math.min(st.H - 1, Math.max(0, cur.y + dy * step)) }, { scroll: true });
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      place();
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault(); zoomBy(1.5);
    } else if (e.key === '-' || e.key === '_') {
      e.preventDefault(); zoomBy(1 / 1.5);
    }
  });
  const onCoordInput = () => {
    const x = Number(xIn.value); const y = Number(yIn.value);
    st.touched = true;
    if (Number.isInteger(x) && Number.isInteger(y) && x >= 0 && y >= 0 && x < st.W && y < st.H) select({ x, y }, { scroll: true });
  };
  xIn.addEventListener('change', onCoordInput);
  yIn.addEventListener('change', onCoordInput);
  for (const el of [xIn, yIn]) {
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); onCoordInput(); place(); }
    });
  }
  placeBtn.addEventListener('click', () => place());
  // A resize keeps the board point at the centre where it was (and a
  // fitted board fitted).
  const onResize = () => {
    if (!st.info) return;
    const r = viewport.getBoundingClientRect();
    if (st.z <= st.minZ * 1.01) { fit(); return; }
    const bx = (st.vw / 2 - st.tx) / st.z;
    const by = (st.vh / 2 - st.ty) / st.z;
    st.vw = r.width; st.vh = r.height;
    st.minZ = Math.min(r.width / st.W, r.height / st.H);
    st.tx = r.width / 2 - bx * st.z;
    st.ty = r.height / 2 - by * st.z;
    apply();
  };
  window.addEventListener('resize', onResize);

  // ---- palette ----

  function drawPalette() {
    palette.replaceChildren();
    st.info.palette.forEach((hex, i) => {
      const b = h('button', {
        type: 'button', class: 'color', role: 'radio', 'aria-checked': String(i === st.color),
        'aria-label': `Colour ${i + 1}: ${hex}`, title: hex, dataset: { color: String(i) }, tabindex: i === st.color ? '0' : '-1',
      });
      b.style.background = hex;
      b.addEventListener('click', () => pick(i, true));
      b.addEventListener('keydown', (e) => {
        const d = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
        if (d) { e.preventDefault(); pick((st.color + d + 16) % st.info.palette.length, true); }
      });
      palette.append(b);
    });
    pick(st.color, false);
  }

  function pick(i, focus) {
    st.color = i;
    for (const b of palette.children) {
      const on = Number(b.dataset.color) === i;
      b.setAttribute('aria-checked', String(on));
      b.tabIndex = on ? 0 : -1;
      if (on && focus) b.focus();
    }
    chosen.style.background = st.info.palette[i];
    cursor.style.background = `${st.info.palette[i]}99`;
  }

  // ---- cooldown ----

  function setCooldown(untilMs) {
    st.nextAt = Math.max(st.nextAt, untilMs);
    tick();
  }

  function tick() {
    clearTimeout(ctl.cooldownTimer);
    const left = st.nextAt - Date.now();
    const text = cooldown.querySelector('.cd-text');
    const fill = cooldown.querySelector('.cd-fill');
    if (left <= 0) {
      cooldown.dataset.state = 'ready';
      text.textContent = 'Ready to place';
      fill.style.width = '100%';
    } else {
      cooldown.dataset.state = 'wait';
      const s = Math.ceil(left / 1000);
      text.textContent = `Next pixel in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
      const total = (st.info && st.info.cooldownSeconds ? st.info.cooldownSeconds : 300) * 1000;
      fill.style.width = `${Math.max(0, Math.min(100, 100 * (1 - left / total)))}%`;
      ctl.cooldownTimer = setTimeout(tick, Math.min(1000, left % 1000 || 1000));
    }
    updatePlaceButton();
  }

  function updatePlaceButton() {
    const waiting = st.nextAt > Date.now();
    placeBtn.disabled = !st.info || !st.sel || waiting || st.placing;
    placeBtn.textContent = st.sel ? `Place at ${st.sel.x}, ${st.sel.y}` : 'Select a pixel';
  }

  // ---- placing (optimistic) ----

  async function place() {
    if (!st.info || !st.sel) { say(status, 'Select a pixel first.', 'error'); return; }
    if (st.nextAt > Date.now()) { say(status, 'Still cooling down.', 'error'); return; }
    if (st.placing) return; // one request at a time: the second would only be refused
    st.placing = true;
    const { x, y } = st.sel;
    const color = st.color;
    const idx = y * st.W + x;
    const prev = st.pending.has(idx) ? st.pending.get(idx).prev : st.pix[idx];
    const mine = { prev, color };
    st.pending.set(idx, mine);
    drawPixel(idx, color);
    placeBtn.disabled = true;
    say(status, 'Placing…', 'busy');
    try {
      const res = await post('/api/v1/canvas/pixels', { x, y, color });
      say(status, `Placed at ${x}, ${y}.`, 'ok');
      mine.seq = Number(res.seq || 0);
      authorChanged(idx);
      if (st.pending.get(idx) === mine && mine.seq <= st.seq) st.pending.delete(idx); // the stream was faster
      if (res.nextPlacementTime) setCooldown(Date.parse(res.nextPlacementTime));
      // The stream confirms it; until then it stays pending (so a snapshot
      // reload older than it does not erase it).
    } catch (err) {
      // Refused: undo, unless the stream already told us the truth there.
      if (st.pending.get(idx) === mine) {
        st.pending.delete(idx);
        drawPixel(idx, prev);
      }
      if (err instanceof ApiError && err.code === Code.RESOURCE_EXHAUSTED) {
        setCooldown(Date.now() + Math.max(1, err.retryAfter || 1) * 1000);
        say(status, `Too soon — your pixel was not placed. Wait ${err.retryAfter || 'a few'} s.`, 'error');
      } else if (err instanceof ApiError && err.code === Code.PERMISSION_DENIED) {
        say(status, 'You may not place pixels (banned).', 'error');
      } else {
        say(status, `Not placed: ${err instanceof ApiError ? err.friendly : err.message}`, 'error');
      }
    } finally {
      st.placing = false;
      updatePlaceButton();
    }
  }

  // ---- snapshot and stream ----

  async function loadSnapshot() {
    const res = await fetch('/api/v1/canvas', { credentials: 'same-origin', cache: 'no-cache' });
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch { body = null; }
      throw new ApiError(res.status, body, res.headers);
    }
    const seq = Number(res.headers.get('X-Canvas-Seq') || 0);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const n = st.W * st.H;
    if (bytes.length < Math.ceil(n / 2)) throw new Error(`snapshot has ${bytes.length} bytes, want ${Math.ceil(n / 2)}`);
    const pix = new Uint8Array(n);
    const half = n >> 1;
    for (let j = 0; j < half; j++) {
      const b = bytes[j];
      pix[2 * j] = b >> 4;
      pix[2 * j + 1] = b & 15;
    }
    if (n & 1) pix[n - 1] = bytes[half] >> 4;
    // Decoding and drawing a million pixels are two tasks, not one long
    // one that keeps taps and frames waiting.
    await new Promise((r) => setTimeout(r, 0));
    st.pix = pix;
    st.seq = seq;
    st.needSnapshot = false;
    drawAll();
    board.dataset.seq = String(seq);
    board.dataset.snapshots = String(Number(board.dataset.snapshots || 0) + 1);
    seqEl.textContent = `seq ${seq}`;
  }

  function b64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function applyBatch(batch) {
    const first = Number(batch.firstSeq || 0);
    const last = Number(batch.lastSeq || 0);
    if (st.lookBack < st.seq) {
      // The look-back of the first stream, possibly over several batches:
      // once it reaches the snapshot, centre on it.
      st.recent.push(...lookBackDeltas(batch));
      if (last >= st.seq) {
        st.lookBack = Number.MAX_SAFE_INTEGER; // once: later batches are news
        centreOnRecent(st.recent);
        st.recent = [];
      }
    }
    if (last <= st.seq) return; // already have it
    const bytes = b64(batch.deltas || '');
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const count = Math.floor(bytes.length / 4);
    const n = st.W * st.H;
    for (let i = 0; i < count; i++) {
      if (first + i <= st.seq) continue; // overlap with what the snapshot had
      const v = dv.getUint32(i * 4, true);
      const idx = v >>> 4;
      if (idx >= n) continue;
      st.pending.delete(idx); // the server's word wins over our guess
      drawPixel(idx, v & 15);
      authorChanged(idx);
    }
    st.seq = last;
    prunePending();
    board.dataset.seq = String(last);
    seqEl.textContent = `seq ${last}`;
  }

  // Pixels of a batch the snapshot already had, after the look-back start.
  function lookBackDeltas(batch) {
    const first = Number(batch.firstSeq || 0);
    const bytes = b64(batch.deltas || '');
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = [];
    for (let i = 0; i < Math.floor(bytes.length / 4); i++) {
      const idx = dv.getUint32(i * 4, true) >>> 4;
      if (first + i > st.lookBack && first + i <= st.seq && idx < st.W * st.H) out.push(idx);
    }
    return out;
  }

  const setLive = liveBadge(liveState);

  async function start() {
    try {
      st.info = await get('/api/v1/canvas/info');
    } catch (err) {
      say(status, `The canvas is unavailable: ${err instanceof ApiError ? err.friendly : err.message}`, 'error');
      setLive({ fatal: true });
      return;
    }
    if (!ctl.alive) return;
    st.W = st.info.width; st.H = st.info.height;
    st.rgb = st.info.palette.map(hexToRgb);
    st.words = paletteWords();
    board.width = st.W; board.height = st.H;
    if (st.color >= st.info.palette.length) st.color = 0;
    drawPalette();
    startView(st.W / 2, st.H / 2);
    updatePlaceButton();
    let first = true;
    ctl.stream = liveEvents(async () => {
      if (st.needSnapshot) await loadSnapshot();
      // The first stream starts a little back: its first batch says where
      // people painted last (applyBatch skips what the snapshot has).
      const after = first ? Math.max(0, st.seq - RECENT) : st.seq;
      // Only the first: a later snapshot is no reason to move the view.
      st.lookBack = first ? after : Number.MAX_SAFE_INTEGER;
      first = false;
      return `/api/v1/canvas/stream?afterSeq=${after}`;
    }, {
      batch: (m) => applyBatch(m.batch),
      heartbeat: () => {},
      // The server cannot fill the gap: reload the snapshot, start over.
      resync: () => { st.needSnapshot = true; return 'restart'; },
    }, { onState: setLive, maxDelay: 10000 });
    viewport.dataset.ready = 'true';
  }

  start();
  return () => {
    ctl.alive = false;
    clearTimeout(ctl.cooldownTimer);
    clearTimeout(st.infoTimer);
    window.removeEventListener('resize', onResize);
    if (ctl.stream) ctl.stream.stop();
  };
}
