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

// `expired`: the token was refused, not given up; other tabs keep what their worker was typing.
export function clearSignIn({ expired = false } = {}) {
  if (expired) setSignIn({ expired: true });
  else localStorage.removeItem(SIGNIN_KEY);
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
const claimAt = (object, path) =>
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

export const hasRole = (user, role) => !user.roles || user.roles.includes(role);
