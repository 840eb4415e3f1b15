// The REST client: JSON in and out, errors decoded from the gateway's
// google.rpc.Status body, sessions kept alive through the HttpOnly cookies
// the gateway sets (the page never sees a token).

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
  let res = await fetch(path, init);
  if (res.status === 401 && !opts.noRetry) {
    if (await refreshSession() || await onSignedOut()) res = await fetch(path, init);
  }
  if (!res.ok) throw await errorFrom(res);
  if (opts.raw) return res;
  if (res.status === 204) return {};
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

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
 * Reads one server stream (grpc-gateway newline-delimited JSON: one
 * {"result": msg} or {"error": status} a line) and calls onMessage for each
 * result. Resolves when the server ends the stream; rejects on an error
 * line, a failed request or a dropped connection.
 */
export async function readStream(path, onMessage, { signal, onOpen } = {}) {
  const res = await request('GET', path, undefined, { raw: true, signal, headers: { Accept: 'application/x-ndjson, application/json' } });
  if (onOpen) onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let clean = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.error) throw new ApiError(res.status, msg.error, null);
        if (msg.result) onMessage(msg.result);
      }
    }
    clean = true;
  } finally {
    // Stopped early (error line, or the caller gave up): cancel the
    // request rather than leave it downloading.
    if (clean) reader.releaseLock();
    else reader.cancel().catch(() => {});
  }
}

/**
 * Keeps a stream open: reconnects after a drop with exponential backoff and
 * full jitter (so a restarted server is not hit by every client at once),
 * asking path() (which may be async) afresh each time so the caller can
 * resume from what it has. onMessage may throw an error with reconnectNow
 * set to end the current stream and reconnect at once.
 * onState gets 'connecting' | 'live' | {retryIn: ms, error}. Returns stop().
 */
export function liveStream(path, onMessage, { onState = () => {}, minDelay = 500, maxDelay = 15000, fatal = () => false } = {}) {
  const ctl = new AbortController();
  let attempt = 0;
  let wake = null;
  (async () => {
    while (!ctl.signal.aborted) {
      onState('connecting');
      let error = null;
      try {
        await readStream(await path(), (m) => { attempt = 0; onMessage(m); }, {
          signal: ctl.signal, onOpen: () => onState('live'),
        });
      } catch (e) {
        error = e;
      }
      if (ctl.signal.aborted) return;
      if (error && error.reconnectNow) continue; // the caller asked to start over (e.g. resync)
      if (error && fatal(error)) { onState({ fatal: true, error }); return; }
      const cap = Math.min(maxDelay, minDelay * 2 ** attempt);
      attempt = Math.min(attempt + 1, 10);
      let delay = Math.round(cap / 2 + Math.random() * cap / 2);
      // A server shedding load says when to come back (Retry-After).
      if (error && error.retryAfter) delay = Math.max(delay, error.retryAfter * 1000 * (1 + Math.random() / 4));
      onState({ retryIn: delay, error });
      await new Promise((resolve) => { wake = resolve; setTimeout(resolve, delay); });
    }
  })();
  return {
    stop: () => { ctl.abort(); if (wake) wake(); },
  };
}
