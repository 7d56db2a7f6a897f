// OpenID Connect sign-in: authorization code flow with PKCE (S256) as a public client, so the
// page holds no secret. The API tells the page the provider's endpoints (GET /api/v1/config).
import { getConfig } from './api.js';
import { ApiError } from './http.js';
import { claims, getSignIn, setSignIn } from './signin-store.js';

// This tab's half of a sign-in in progress: survives the trip to the provider and back.
const PENDING_KEY = 'ws.oidc.pending';

const base64url = (bytes) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const randomText = (size) => base64url(crypto.getRandomValues(new Uint8Array(size)));

async function s256(text) {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))));
}

// The page itself: the address to register with the provider as redirect and post-logout URI.
export const pageAddress = () => `${location.origin}/`;

// Browsers offer SHA-256 (crypto.subtle) only to pages served over HTTPS or from localhost.
export const canSignIn = () => Boolean(window.isSecureContext && crypto.subtle);

function signInFailed(detail) {
  return new ApiError(400, { title: 'Sign-in did not complete.', detail });
}

export async function beginSignIn(oidc, next) {
  const pending = { state: randomText(16), nonce: randomText(16), verifier: randomText(32), next: next ?? '' };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(oidc.authorization_endpoint);
  const params = {
    response_type: 'code',
    client_id: oidc.client_id,
    redirect_uri: pageAddress(),
    scope: oidc.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(pending.verifier),
    code_challenge_method: 'S256',
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  location.assign(url);
}

async function tokenRequest(oidc, fields) {
  let res;
  try {
    res = await fetch(oidc.token_endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({ client_id: oidc.client_id, ...fields }),
    });
  } catch {
    throw new ApiError(0, {
      title: 'Cannot reach the sign-in service',
      detail: 'Check the network connection and try again.',
    });
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok || typeof body.access_token !== 'string') {
    throw signInFailed(body.error_description || body.error || `The sign-in service answered ${res.status}.`);
  }
  return body;
}

function keep(oidc, tokens, previous = {}) {
  setSignIn({
    accessToken: tokens.access_token,
    // A provider that does not rotate refresh tokens leaves them out of a renewal's answer.
    refreshToken: tokens.refresh_token ?? previous.refreshToken ?? null,
    idToken: tokens.id_token ?? previous.idToken ?? null,
    rolesClaim: oidc.roles_claim,
    oidc: true,
  });
}

// After the provider sends the browser back: signs in and puts back the hash the worker was at.
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has('state') || !(params.has('code') || params.has('error'))) return;
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING_KEY));
  } catch {
    // An unreadable record is as good as none: the state check below refuses the answer.
  }
  sessionStorage.removeItem(PENDING_KEY);
  // The code is single-use and must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, '', `${location.pathname}${pending?.next ?? ''}`);
  if (pending?.state !== params.get('state')) {
    throw signInFailed(
      'The answer from the sign-in service does not belong to a sign-in started here. Please sign in again.',
    );
  }
  if (params.has('error')) throw signInFailed(params.get('error_description') || params.get('error'));
  const { oidc } = await getConfig();
  if (!oidc) throw signInFailed('This server no longer offers this sign-in.');
  const tokens = await tokenRequest(oidc, {
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: pageAddress(),
    code_verifier: pending.verifier,
  });
  const nonce = tokens.id_token ? claims(tokens.id_token)?.nonce : undefined;
  if (nonce !== undefined && nonce !== pending.nonce)
    throw signInFailed('The sign-in answer was meant for another sign-in.');
  keep(oidc, tokens);
}

// Silent renewal with the refresh token; one tab at a time, since providers that rotate refresh
// tokens refuse (and may revoke) one used twice. Resolves true once a fresh token is stored.
export async function renewSignIn() {
  const seen = getSignIn();
  if (!seen?.oidc || !seen.refreshToken) return false;
  const renew = async () => {
    const latest = getSignIn();
    if (!latest?.refreshToken) return false;
    if (latest.accessToken !== seen.accessToken) return true;
    try {
      const { oidc } = await getConfig();
      if (!oidc) return false;
      keep(oidc, await tokenRequest(oidc, { grant_type: 'refresh_token', refresh_token: latest.refreshToken }), latest);
      return true;
    } catch {
      return false;
    }
  };
  return navigator.locks ? navigator.locks.request('ws.renew-sign-in', renew) : renew();
}

// Where to send the browser so the provider ends its session too: on a shared tablet, the next
// person must not be signed in as the last one by the provider's cookie. Null if it cannot.
export async function providerSignOutUrl(signIn) {
  if (!signIn?.oidc) return null;
  const { oidc } = await getConfig();
  if (!oidc?.end_session_endpoint) return null;
  const url = new URL(oidc.end_session_endpoint);
  url.searchParams.set('client_id', oidc.client_id);
  url.searchParams.set('post_logout_redirect_uri', pageAddress());
  if (signIn.idToken) url.searchParams.set('id_token_hint', signIn.idToken);
  return url.href;
}
