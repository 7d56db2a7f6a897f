import { currentUser, getSignIn, getToken } from './signin-store.js';

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

export const forgetPendingKeys = () => pendingKeys.clear();

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
