// The REST client: JSON in and out, errors decoded from the gateway's
// google.rpc.Status body, sessions kept alive through the HttpOnly cookies
// the gateway sets (the page never sees a token).

import { serverAnswered } from './dom.js';

const TYPE = 'type.googleapis.com/google.rpc.';

// gRPC codes the UI acts on.
export const Code = Object.freeze({
  INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12, UNAVAILABLE: 14, UNAUTHENTICATED: 16,
});

/** An error answer: HTTP status, gRPC code, message and the standard details. */
export class ApiError extends Error {
  constructor(httpStatus, body, headers) {
    super((body && body.message) || `HTTP ${httpStatus}`);
    this.name = 'ApiError';
    this.httpStatus = httpStatus;
    this.code = body && typeof body.code === 'number' ? body.code : codeFromHTTP(httpStatus);
    this.details = (body && Array.isArray(body.details)) ? body.details : [];
    this.violations = [];
    this.reason = '';
    this.metadata = {};
    this.retryAfter = 0; // seconds
    for (const d of this.details) {
      const t = d['@type'] || '';
      if (t === `${TYPE}BadRequest`) this.violations.push(...(d.fieldViolations || []));
      if (t === `${TYPE}ErrorInfo`) { this.reason = d.reason || ''; this.metadata = d.metadata || {}; }
      if (t === `${TYPE}RetryInfo` && d.retryDelay) this.retryAfter = Math.ceil(parseFloat(d.retryDelay));
    }
    const ra = headers && headers.get('Retry-After');
    if (ra) {
      const n = Number(ra);
      this.retryAfter = Number.isFinite(n) ? n : Math.max(0, Math.ceil((Date.parse(ra) - Date.now()) / 1000));
    }
  }

  /** The description of the first violation naming one of fields (snake or camel case). */
  field(...fields) {
    const want = new Set(fields.flatMap((f) => [f, snake(f), camel(f)]));
    const v = this.violations.find((x) => want.has(x.field));
    return v ? v.description : '';
  }

  /** A sentence for people. */
  get friendly() {
    if (this.code === Code.RESOURCE_EXHAUSTED && this.retryAfter) {
      return `Slow down: try again in ${this.retryAfter} s.`;
    }
    if (this.code === Code.UNIMPLEMENTED) return 'This service is not available yet.';
    if (this.code === Code.UNAVAILABLE) return 'The service is busy; try again shortly.';
    if (this.violations.length) return this.violations.map((v) => `${v.field}: ${v.description}`).join('; ');
    return this.message;
  }
}

function snake(s) { return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`); }
function camel(s) { return s.replace(/_([a-z])/g, (_, c) => c.toUpperCase()); }

function codeFromHTTP(s) {
  return ({ 400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 501: 12, 503: 14 })[s] || 2;
}

async function errorFrom(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  return new ApiError(res.status, body, res.headers);
}

// One refresh at a time: parallel 401s share it.
let refreshing = null;

/** Renews the session from the refresh cookie; false when that is gone too. */
export function refreshSession() {
  if (!refreshing) {
    refreshing = fetch('/api/v1/auth/refresh', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}', credentials: 'same-origin',
    }).then((r) => r.ok).catch(() => false).finally(() => { refreshing = null; });
  }
  return refreshing;
}

// Set by session.js: what to do when neither the session nor the refresh
// cookie works (start a new guest session).
let onSignedOut = async () => false;
export function setSignedOutHandler(fn) { onSignedOut = fn; }

/**
 * Sends a request. body is JSON-encoded; opts.headers adds headers;
 * opts.raw returns the Response instead of decoding JSON. A 401 renews the
 * session once and retries, so an expired access token is invisible.
 */
export async function request(method, path, body, opts = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...(opts.headers || {}) },
    signal: opts.signal,
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name !== 'AbortError') probeUntilBack();
    throw err;
  }
  serverAnswered();
  if (res.status === 401 && !opts.noRetry) {
    if (await refreshSession() || await onSignedOut()) res = await fetch(path, init);
  }
  if (!res.ok) throw await errorFrom(res);
  if (opts.raw) return res;
  if (res.status === 204) return {};
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

// After a request that never reached the server, /healthz is asked now and
// then (and at once when the browser says it is online again) until it
// answers: then the "Network error" messages go by themselves.
let probe = 0;
function probeUntilBack(delay = 2000) {
  if (probe) return;
  probe = setTimeout(async () => {
    let ok = false;
    try { ok = (await fetch('/healthz', { cache: 'no-store' })).ok; } catch { /* still down */ }
    probe = 0;
    if (ok) serverAnswered();
    else probeUntilBack(Math.min(delay * 2, 15000));
  }, delay);
}
window.addEventListener('online', () => { clearTimeout(probe); probe = 0; probeUntilBack(0); });

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body = {}, opts) => request('POST', path, body, opts);
export const put = (path, body = {}, opts) => request('PUT', path, body, opts);
export const patch = (path, body = {}, opts) => request('PATCH', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

/**
 * Keeps a server stream open with the browser's own EventSource (Server-Sent
 * Events; every event's id is the stream's resume position, so when the
 * connection drops the browser reconnects by itself with Last-Event-ID and
 * misses nothing). handlers maps event names (e.g. batch, heartbeat,
 * resync) to functions of the parsed message; a handler returning
 * 'restart' closes the stream and opens a new one from path() at once (after
 * a resync). When the browser gives up (the server refused the request,
 * e.g. 503 while it restarts), this reconnects with exponential backoff and
 * full jitter, asking path() (which may be async) afresh so the caller
 * resumes from what it has. onState gets 'connecting' | 'live' |
 * {retryIn: ms, error}. Returns stop().
 */
export function liveEvents(path, handlers, { onState = () => {}, minDelay = 500, maxDelay = 15000 } = {}) {
  let es = null;
  let stopped = false;
  let attempt = 0;
  let timer = 0;
  const open = async () => {
    if (stopped) return;
    onState('connecting');
    let url;
    try {
      url = await path();
    } catch (error) {
      retry(error);
      return;
    }
    if (stopped) return;
    const src = new EventSource(url, { withCredentials: true });
    es = src;
    src.onopen = () => { attempt = 0; serverAnswered(); onState('live'); };
    for (const [name, fn] of Object.entries(handlers)) {
      src.addEventListener(name, (e) => {
        if (es !== src) return;
        if (fn(JSON.parse(e.data)) === 'restart') {
          src.close();
          open();
        }
      });
    }
    src.addEventListener('error', (e) => {
      if (es !== src) return;
      // An `error` event with data is the server's google.rpc.Status (the
      // stream then ends and the browser reconnects); without data it is
      // the connection itself.
      const error = e.data ? new ApiError(200, JSON.parse(e.data), null) : null;
      if (src.readyState === EventSource.CLOSED) {
        retry(error);
      } else {
        onState({ retryIn: 1000, error }); // the browser retries (retry: field)
      }
    });
  };
  const retry = (error) => {
    if (es) es.close();
    es = null;
    const cap = Math.min(maxDelay, minDelay * 2 ** attempt);
    attempt = Math.min(attempt + 1, 10);
    const delay = Math.round(cap / 2 + Math.random() * cap / 2);
    onState({ retryIn: delay, error });
    timer = setTimeout(open, delay);
  };
  open();
  return {
    stop: () => { stopped = true; clearTimeout(timer); if (es) es.close(); es = null; },
  };
}
