import { getConfig } from '../api.js';
import { postJson } from '../http.js';
import { claims, setToken } from '../signin-store.js';
import { homeHash, navigate, takeNext } from '../nav.js';
import { beginSignIn, canSignIn } from '../oidc.js';
import { busyGuard, button, clearError, field, formatTime, h, mount, pageHeading, showError } from '../ui.js';

function finish(token) {
  setToken(token);
  navigate(takeNext() ?? homeHash());
}

const ROLE_OPTIONS = [
  ['worker', 'Worker', ['worker']],
  ['supervisor', 'Supervisor', ['supervisor']],
  ['both', 'Worker and supervisor', ['worker', 'supervisor']],
];

function devSignin() {
  const user = h('input', {
    type: 'text',
    testid: 'signin-user',
    required: true,
    autocomplete: 'username',
    autocapitalize: 'none',
    spellcheck: 'false',
  });
  const name = h('input', { type: 'text', testid: 'signin-name', autocomplete: 'name' });
  const role = h(
    'select',
    { testid: 'signin-role' },
    ROLE_OPTIONS.map(([value, label]) => h('option', { value }, label)),
  );
  const form = h(
    'form',
    { class: 'panel' },
    h('h2', {}, 'Development sign-in'),
    h('p', { class: 'muted' }, 'This server runs in embedded mode: pick any user id and role to get a test token.'),
    field('User id', user),
    field('Display name (optional)', name),
    field('Role', role),
    h('button', { type: 'submit', testid: 'signin-submit' }, 'Sign in'),
  );
  form.addEventListener(
    'submit',
    busyGuard(form, async (e) => {
      e.preventDefault();
      clearError();
      const roles = ROLE_OPTIONS.find(([value]) => value === role.value)[2];
      const body = { sub: user.value.trim(), roles, ...(name.value.trim() ? { name: name.value.trim() } : {}) };
      try {
        const { access_token: token } = await postJson('/dev/token', body, { auth: false });
        finish(token);
      } catch (err) {
        showError(err);
      }
    }),
  );
  return form;
}

function tokenSignin() {
  const input = h('textarea', {
    rows: 4,
    required: true,
    testid: 'token-input',
    autocomplete: 'off',
    autocapitalize: 'none',
    spellcheck: 'false',
  });
  return h(
    'form',
    {
      class: 'panel',
      onsubmit: (e) => {
        e.preventDefault();
        clearError();
        const token = input.value.trim().replace(/^Bearer\s+/i, '');
        const exp = claims(token)?.exp;
        if (typeof exp === 'number' && exp * 1000 <= Date.now()) {
          showError({
            title: 'This token has expired.',
            detail: `It expired ${formatTime(new Date(exp * 1000).toISOString())}.`,
          });
          input.focus();
          return;
        }
        finish(token);
      },
    },
    h('h2', {}, 'Use a bearer token'),
    field('Bearer token', input, 'Paste the access token issued for you.'),
    h('button', { type: 'submit', testid: 'token-submit' }, 'Use token'),
  );
}

function providerSignin(oidc) {
  if (!canSignIn()) {
    return h(
      'section',
      { class: 'panel', testid: 'oidc-unavailable' },
      h('h2', {}, 'Sign in with your organisation account'),
      h(
        'p',
        {},
        'Signing in needs a secure connection. Open this page through its https:// address, or ask your administrator for it.',
      ),
    );
  }
  const start = button('Sign in', { testid: 'oidc-signin' });
  start.addEventListener(
    'click',
    busyGuard(start, async () => {
      clearError();
      // What the worker was typing stays in this tab's drafts; the provider sends the browser back here.
      await beginSignIn(oidc, takeNext());
    }),
  );
  return h(
    'section',
    { class: 'panel' },
    h('h2', {}, 'Sign in with your organisation account'),
    h('p', { class: 'muted' }, 'You will be taken to your organisation’s sign-in page and brought back here.'),
    start,
  );
}

export async function signinView(root) {
  let config = null;
  try {
    config = await getConfig();
  } catch (err) {
    showError(err);
  }
  const tokenForm = tokenSignin();
  mount(
    root,
    pageHeading('Sign in'),
    config?.oidc ? providerSignin(config.oidc) : null,
    config?.dev_sign_in ? devSignin() : null,
    // With an organisation sign-in, pasting a token is for API users only: out of the way.
    config?.oidc ? h('details', {}, h('summary', {}, 'Use a bearer token instead'), tokenForm) : tokenForm,
  );
}
