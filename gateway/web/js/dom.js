// Small DOM helpers. Everything is built with createElement and textContent,
// never innerHTML, so nothing a server or user sends can become markup; and
// styles are set through the CSSOM, which the page's CSP allows (inline
// style attributes it does not).

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, props, children) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'style') Object.assign(el.style, v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** h('button', {class: 'btn', onclick}, 'Save') */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** SVG element. */
export function s(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A document-unique id with a readable prefix (for label/aria wiring). */
export function id(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A visually hidden live region; say() updates it for screen readers. */
export function liveRegion(props = {}) {
  return h('p', { class: 'status', role: 'status', 'aria-live': 'polite', ...props });
}

// Messages saying the server could not be reached: they go by themselves
// once it answers again (see serverAnswered), instead of staying on the
// page as if the failure were still true.
const networkErrors = new Set();

/** Shows a status message of a kind: '', 'ok', 'error', 'busy'. */
export function say(el, text, kind = '') {
  el.textContent = text || '';
  el.dataset.kind = kind;
  if (kind === 'error' && el.textContent.startsWith('Network error')) networkErrors.add(el);
  else networkErrors.delete(el);
}

/** The server answered: clears every "Network error" message still shown. */
export function serverAnswered() {
  for (const el of networkErrors) {
    if (el.isConnected && el.dataset.kind === 'error' && el.textContent.startsWith('Network error')) {
      el.textContent = '';
      el.dataset.kind = '';
    }
  }
  networkErrors.clear();
}

export function fmtTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtRelative(ts) {
  if (!ts) return '';
  const secs = Math.round((new Date(ts).getTime() - Date.now()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  const abs = Math.abs(secs);
  if (abs < 60) return rtf.format(secs, 'second');
  if (abs < 3600) return rtf.format(Math.round(secs / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(secs / 3600), 'hour');
  return rtf.format(Math.round(secs / 86400), 'day');
}

export function fmtNumber(n) {
  return Number(n || 0).toLocaleString();
}

/** Copies text, with fallbacks for insecure origins and old browsers. */
export async function copyText(text, fallbackInput) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Permission refused: try the legacy path below.
  }
  const ta = fallbackInput || h('textarea', { class: 'offscreen', readonly: true, value: text });
  if (!fallbackInput) document.body.append(ta);
  ta.focus();
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  if (!fallbackInput) ta.remove();
  return ok;
}

/** A copy-to-clipboard field: read-only input plus a button. */
export function copyField(label, value) {
  const inputId = id('copy');
  const msg = liveRegion({ class: 'status inline' });
  const input = h('input', { id: inputId, class: 'input mono', readonly: true, value, onfocus: (e) => e.target.select() });
  const btn = h('button', {
    type: 'button', class: 'btn', onclick: async () => {
      const ok = await copyText(input.value, input);
      say(msg, ok ? 'Copied' : 'Press Ctrl+C to copy', ok ? 'ok' : '');
      btn.focus();
    },
  }, 'Copy');
  return h('div', { class: 'field' },
    h('label', { for: inputId }, label),
    h('div', { class: 'row' }, input, btn),
    msg);
}

/** href for a URL from data: only http(s) links, never javascript: and the like. */
export function safeHref(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '#';
  } catch {
    return '#';
  }
}

/** Fresh key for an Idempotency-Key header. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * A stream status badge ("live", "reconnecting in 3 s" counting down,
 * "offline"); returns the onState callback for liveEvents.
 */
export function liveBadge(el, offline = 'offline') {
  let timer = 0;
  return (state) => {
    clearInterval(timer);
    if (state === 'live' || state === 'connecting') {
      el.dataset.state = state;
      el.textContent = state === 'live' ? 'live' : 'connecting…';
      return;
    }
    if (state.fatal) {
      el.dataset.state = 'off';
      el.textContent = offline;
      return;
    }
    el.dataset.state = 'retry';
    const until = Date.now() + state.retryIn;
    const show = () => {
      const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      el.textContent = s > 0 ? `reconnecting in ${s} s` : 'reconnecting…';
      if (s === 0 || !el.isConnected) clearInterval(timer);
    };
    show();
    timer = setInterval(show, 250);
  };
}
