import { ApiError, newKey, postJson } from './http.js';
import { currentUser } from './signin-store.js';

// Checks, pauses and resumes wait here, with the Idempotency-Key they are sent with, until the
// server has answered: a tap made offline is sent when the network returns, and never dropped.
const STORE_KEY = 'ws.outbox';
// Waits between attempts while entries cannot be sent: soon at first, then every half minute.
const RETRY_MS = [1000, 2000, 5000, 10_000, 30_000];

const read = () => {
  try {
    const entries = JSON.parse(localStorage.getItem(STORE_KEY) ?? '[]');
    return Array.isArray(entries) ? entries : [];
  } catch {
    return [];
  }
};

const listeners = new Set();

function write(entries) {
  localStorage.setItem(STORE_KEY, JSON.stringify(entries));
  for (const listener of listeners) listener();
}

const update = (key, change) => write(read().map((e) => (e.key === key ? { ...e, ...change } : e)));
const remove = (key) => write(read().filter((e) => e.key !== key));

/** Calls `listener` whenever the queue changes; returns a function that stops it. */
export function watchOutbox(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const mine = (entry) => entry.userId === (currentUser()?.id ?? null);

export const outboxFor = (sessionId) => read().filter((e) => mine(e) && e.sessionId === sessionId);

export const dismiss = (key) => remove(key);

// Offline, an expired token, a server in trouble: the entry stays and goes out later.
const worthRetrying = (err) => err.retryable || err.status === 401 || err.status === 429;

const sessionListeners = new Set();
export function onSent(listener) {
  sessionListeners.add(listener);
  return () => sessionListeners.delete(listener);
}

async function send(entry) {
  const session = await postJson(entry.path, entry.body, { idempotencyKey: entry.key });
  remove(entry.key);
  for (const listener of sessionListeners) listener(session);
  return session;
}

/**
 * Sends a change now, or keeps it to send later. Resolves with the session once the server took it,
 * or with null when it waits; rejects with the server's refusal (then nothing is kept).
 */
export async function submit({ sessionId, path, body, label, action }) {
  const entry = {
    key: newKey(),
    userId: currentUser()?.id ?? null,
    sessionId,
    path,
    body,
    label,
    action,
    state: 'sending',
    queuedAt: new Date().toISOString(),
  };
  write([...read(), entry]);
  if (!navigator.onLine) {
    update(entry.key, { state: 'waiting' });
    return null;
  }
  try {
    return await send(entry);
  } catch (err) {
    if (err instanceof ApiError && worthRetrying(err)) {
      update(entry.key, { state: 'waiting' });
      if (err.status !== 401) retryLater();
      return null;
    }
    remove(entry.key);
    throw err;
  }
}

let flushing = null;
let retryTimer = null;
let failedAttempts = 0;

function retryLater() {
  clearTimeout(retryTimer);
  const delay = RETRY_MS[Math.min(failedAttempts, RETRY_MS.length - 1)];
  failedAttempts += 1;
  retryTimer = setTimeout(() => flushOutbox().catch(() => {}), delay);
}

async function sendWaiting() {
  for (const entry of read().filter((e) => mine(e) && e.state === 'waiting')) {
    try {
      await send(entry);
      failedAttempts = 0;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 401) return; // sent again once signed in
      // A network just back can drop the first request: try again soon rather than at the next tap.
      if (worthRetrying(err)) return retryLater();
      update(entry.key, { state: 'refused', problem: err.problem, status: err.status });
    }
  }
}

/** Sends every waiting entry of the signed-in user, oldest first; refusals stay, with the reason. */
export function flushOutbox() {
  flushing ??= sendWaiting().finally(() => {
    flushing = null;
  });
  return flushing;
}

export function startOutbox() {
  // A send cut short by closing the page is not in flight any more.
  write(read().map((e) => (e.state === 'sending' ? { ...e, state: 'waiting' } : e)));
  const flush = () => flushOutbox().catch(() => {});
  window.addEventListener('online', flush);
  window.addEventListener('focus', flush);
  flush();
}
