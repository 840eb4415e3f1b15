// Who is using the page. Everyone starts as a guest: the gateway keeps the
// tokens in HttpOnly cookies, so this module only knows the user it gets
// back from /api/v1/auth/me, and tells subscribers when that changes.

import { ApiError, Code, get, post, setSignedOutHandler } from './api.js';

let me = null; // {user, favorite?}
const listeners = new Set();

function set(next) {
  me = next;
  for (const fn of listeners) fn(me);
}

/** Calls fn now (when known) and on every change; returns unsubscribe. */
export function onSession(fn) {
  listeners.add(fn);
  if (me) fn(me);
  return () => listeners.delete(fn);
}

export function current() { return me; }
export function user() { return me && me.user; }
export const isAdmin = () => !!(me && me.user && me.user.role === 'ROLE_ADMIN');
export const isGuest = () => !me || !me.user || me.user.guest;

let guestStarting = null;
async function startGuest() {
  if (!guestStarting) {
    guestStarting = post('/api/v1/auth/guest', {}, { noRetry: true })
      .then(() => true, () => false)
      .finally(() => { guestStarting = null; });
  }
  return guestStarting;
}

// When a call finds no working session at all (cookies expired or revoked
// elsewhere), continue as a fresh guest rather than failing the action.
setSignedOutHandler(async () => {
  const ok = await startGuest();
  if (ok) refresh().catch(() => {});
  return ok;
});

// Whether this browser has had a session here: a first visit has none to
// look up, so one call creates the guest (instead of asking for the user,
// failing to refresh, creating the guest, and asking again).
const KNOWN = 'platform.session';
const known = () => { try { return !!localStorage.getItem(KNOWN); } catch { return true; } };
const remember = () => { try { localStorage.setItem(KNOWN, '1'); } catch { /* private mode */ } };

/** Reloads the current user (creating a guest session when there is none). */
export async function refresh() {
  if (!known()) {
    try {
      const g = await post('/api/v1/auth/guest', {}, { noRetry: true });
      remember();
      set({ user: g.user });
      return me;
    } catch { /* ask the usual way */ }
  }
  const res = await lookUp();
  remember();
  return res;
}

async function lookUp() {
  let res;
  try {
    res = await get('/api/v1/auth/me');
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== Code.UNAUTHENTICATED) throw e;
    await startGuest();
    res = await get('/api/v1/auth/me', { noRetry: true });
  }
  set(res);
  return res;
}

/** Updates the cached favorite after a save, without a round trip. */
export function setFavorite(fav) {
  if (me) set({ ...me, favorite: fav });
}

export async function register(username, password) {
  const res = await post('/api/v1/auth/register', { username, password });
  await refresh();
  return res;
}

export async function login(username, password) {
  const res = await post('/api/v1/auth/login', { username, password }, { noRetry: true });
  await refresh();
  return res;
}

/** Changes the password; every other session ends, this one is renewed. */
export async function changePassword(currentPassword, newPassword) {
  const res = await post('/api/v1/auth/password', { currentPassword, newPassword }, { noRetry: true });
  await refresh();
  return res;
}

/** Deletes the account for good, then continues as a fresh guest. */
export async function deleteAccount(password) {
  await post('/api/v1/auth/me:delete', { password }, { noRetry: true });
  await startGuest();
  return refresh();
}

export async function logout() {
  try {
    await post('/api/v1/auth/logout', {}, { noRetry: true });
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== Code.UNAUTHENTICATED) throw e;
  }
  await startGuest();
  return refresh();
}
