const BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title);
    this.status = status;
    this.problem = problem;
  }

  // No response, or a server failure: the request may or may not have been applied.
  get retryable() {
    return this.status === 0 || this.status >= 500;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

// One sign-in for every tab of this browser: localStorage, with `storage` events telling the others.
// {accessToken, refreshToken?, idToken?, rolesClaim?} or {expired: true} after a refused token.
const SIGNIN_KEY = 'ws.signin';

export function getSignIn() {
  try {
    const signIn = JSON.parse(localStorage.getItem(SIGNIN_KEY));
    return signIn && typeof signIn === 'object' ? signIn : null;
  } catch {
    return null;
  }
}

export const getToken = () => getSignIn()?.accessToken ?? null;
export const setSignIn = (signIn) => localStorage.setItem(SIGNIN_KEY, JSON.stringify(signIn));
export const setToken = (token) => setSignIn({ accessToken: token });

export function forgetSubmissions() {
  pendingKeys.clear();
  recentSessions.clear();
}

// `expired`: the token was refused, not given up; other tabs keep what their worker was typing.
export function clearToken({ expired = false } = {}) {
  if (expired) setSignIn({ expired: true });
  else localStorage.removeItem(SIGNIN_KEY);
  forgetSubmissions();
}

// handler(signIn, {expired}) runs when another tab signs in, renews, signs out or meets expiry.
export function onSignInChange(handler) {
  window.addEventListener('storage', (e) => {
    if (e.storageArea !== localStorage || (e.key !== SIGNIN_KEY && e.key !== null)) return;
    const signIn = getSignIn();
    handler(signIn?.accessToken ? signIn : null, { expired: Boolean(signIn?.expired) });
  });
}

export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === 'object' ? payload : null;
  } catch {
    return null;
  }
}

// A dotted path such as `realm_access.roles`, as AUTH_ROLES_CLAIM names it.
export const claimAt = (object, path) =>
  path.split('.').reduce((value, name) => (value && typeof value === 'object' ? value[name] : undefined), object);

// A token that is not a readable JWT still works against the API; its roles are unknown.
export function currentUser() {
  const signIn = getSignIn();
  if (!signIn?.accessToken) return null;
  const c = claims(signIn.accessToken) ?? {};
  const profile = (signIn.idToken && claims(signIn.idToken)) || {};
  const name = [c.name, profile.name, c.preferred_username].find((n) => typeof n === 'string');
  const roles = claimAt(c, signIn.rolesClaim ?? 'roles');
  return {
    id: typeof c.sub === 'string' ? c.sub : null,
    name: name ?? null,
    roles: Array.isArray(roles) ? roles : null,
    exp: typeof c.exp === 'number' ? c.exp : null,
  };
}

// Set by the OpenID Connect sign-in: resolves true once a fresh access token is stored.
let renewToken = async () => false;
export function setTokenRenewer(renewer) {
  renewToken = renewer;
}

const RENEW_BEFORE_MS = 30_000;

async function freshToken() {
  const user = currentUser();
  if (user?.exp && user.exp * 1000 - Date.now() < RENEW_BEFORE_MS && getSignIn()?.refreshToken) await renewToken();
  return getToken();
}

export const hasRole = (user, role) => !user.roles || user.roles.includes(role);

async function readProblem(res) {
  const fallback = { title: `${res.status} ${res.statusText}`.trim(), detail: '' };
  if (!(res.headers.get('Content-Type') || '').includes('json')) return fallback;
  try {
    const body = await res.json();
    if (!body || typeof body !== 'object') return fallback;
    // FastAPI's own errors carry a list of validation errors in `detail`.
    if (Array.isArray(body.detail)) return { ...fallback, errors: body.detail };
    return { ...fallback, ...body };
  } catch {
    return fallback;
  }
}

export async function request(path, options = {}) {
  const { method = 'GET', body, idempotencyKey, auth = true, accept, renewed = false } = options;
  const headers = { Accept: accept ?? 'application/json, application/problem+json' };
  const token = auth ? await freshToken() : null;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  let res;
  try {
    res = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, {
      title: 'Cannot reach the server',
      detail: 'Check the network connection and try again.',
    });
  }
  if (res.ok) return res;
  const problem = await readProblem(res);
  // A refused request changed nothing, so it is safe to send again with a renewed token.
  if (res.status === 401 && auth && !renewed && getSignIn()?.refreshToken && (await renewToken())) {
    return request(path, { ...options, renewed: true });
  }
  if (res.status === 401 && auth) onUnauthorized();
  throw new ApiError(res.status, problem);
}

export const getJson = async (path) => (await request(path)).json();
export const postJson = async (path, body, options = {}) =>
  (await request(path, { method: 'POST', body, ...options })).json();

// crypto.randomUUID exists only in secure contexts; plant-floor tablets may reach the API over plain http.
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// scope -> {payload, key}: kept only while the outcome of a submission is unknown.
const pendingKeys = new Map();

export async function postIdempotent(scope, path, body) {
  const payload = JSON.stringify(body);
  let entry = pendingKeys.get(scope);
  if (entry?.payload !== payload) {
    entry = { payload, key: newKey() };
    pendingKeys.set(scope, entry);
  }
  try {
    const result = await postJson(path, body, { idempotencyKey: entry.key });
    pendingKeys.delete(scope);
    return result;
  } catch (err) {
    if (!err.retryable) pendingKeys.delete(scope);
    throw err;
  }
}

let configPromise = null;
export function getConfig() {
  configPromise ??= request('/config', { auth: false })
    .then((res) => res.json())
    .catch((err) => {
      configPromise = null;
      throw err;
    });
  return configPromise;
}

// Published SOP versions are immutable, so they are safe to keep for the page's lifetime.
const sopCache = new Map();
export function getSop(id, version) {
  const key = `${id}@${version}`;
  if (!sopCache.has(key)) {
    const query = new URLSearchParams({ version });
    sopCache.set(
      key,
      getJson(`/sops/${encodeURIComponent(id)}?${query}`).catch((err) => {
        sopCache.delete(key);
        throw err;
      }),
    );
  }
  return sopCache.get(key);
}

// Lists come from Temporal visibility, which trails each change by a moment (longer under load).
// Sessions this page has just started or changed are kept briefly, so that a list fetched right
// after shows them as they are now: a new session is there, an aborted one is gone.
const RECENT_MS = 30_000;
const ACTIVE = ['IN_PROGRESS', 'PAUSED'];
const recentSessions = new Map(); // id -> {session, at}

export function rememberSession(session) {
  recentSessions.set(session.id, { session, at: Date.now() });
}

function withRecentChanges(params, items, firstPage) {
  const now = Date.now();
  for (const [id, entry] of recentSessions) if (now - entry.at > RECENT_MS) recentSessions.delete(id);
  const statuses = params.getAll('status');
  const wanted = statuses.length ? statuses : ACTIVE;
  const workerId = params.get('worker_id');
  const matches = (s) => wanted.includes(s.status) && (!workerId || s.worker_id === workerId);
  const newer = (s) => {
    const known = recentSessions.get(s.id)?.session;
    return known && Date.parse(known.updated_at) > Date.parse(s.updated_at) ? known : s;
  };
  const listed = new Set(items.map((s) => s.id));
  const missing = firstPage
    ? [...recentSessions.values()]
        .map((entry) => entry.session)
        .filter((s) => !listed.has(s.id))
        .sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at))
    : [];
  return [...missing, ...items.map(newer)].filter(matches);
}

// One page of `GET /sessions`; `params` is a URLSearchParams without the page token.
export async function listSessions(params, pageToken = null) {
  const query = new URLSearchParams(params);
  if (pageToken) query.set('page_token', pageToken);
  const page = await getJson(`/sessions?${query}`);
  return { ...page, items: withRecentChanges(params, page.items, !pageToken) };
}
