import { currentUser, hasRole } from './signin-store.js';

const NEXT_KEY = 'ws.next';

export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

export const reload = () => navigate(location.hash);

export function homeHash() {
  const user = currentUser();
  if (!user) return '#/signin';
  return hasRole(user, 'worker') ? '#/sessions' : '#/supervisor';
}

export function rememberNext(hash) {
  if (hash && !hash.startsWith('#/signin')) sessionStorage.setItem(NEXT_KEY, hash);
}

export function takeNext() {
  const next = sessionStorage.getItem(NEXT_KEY);
  sessionStorage.removeItem(NEXT_KEY);
  return next;
}

export const workerHref = (id) => `#/sessions/${encodeURIComponent(id)}`;
export const supervisorHref = (id) => `#/supervisor/sessions/${encodeURIComponent(id)}`;
