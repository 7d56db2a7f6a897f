import { clearAllDrafts } from './js/check-drafts.js';
import { forgetPendingKeys, setTokenRenewer, setUnauthorizedHandler } from './js/http.js';
import { homeHash, navigate, rememberNext, takeNext } from './js/nav.js';
import { completeSignIn, providerSignOutUrl, renewSignIn } from './js/oidc.js';
import { flushOutbox, startOutbox } from './js/outbox.js';
import { forgetRecentSessions } from './js/session-lists.js';
import { clearSignIn, currentUser, getSignIn, hasRole, onSignInChange } from './js/signin-store.js';
import { announce, button, clearError, clearNotice, h, mount, pageHeading, showError } from './js/ui.js';
import { signinView } from './js/views/signin.js';
import { loadVocabulary } from './js/vocabulary.js';
import { supervisorListView, supervisorSessionView } from './js/views/supervisor.js';
import { mySessionsView, startView, workerSessionView } from './js/views/worker.js';

const routes = [
  { pattern: /^\/signin$/, view: signinView, public: true },
  { pattern: /^\/sessions$/, view: mySessionsView, nav: 'nav-my-sessions' },
  { pattern: /^\/sessions\/([^/]+)$/, view: workerSessionView, nav: 'nav-my-sessions' },
  { pattern: /^\/start$/, view: startView, nav: 'nav-start' },
  { pattern: /^\/supervisor$/, view: supervisorListView, nav: 'nav-supervisor' },
  { pattern: /^\/supervisor\/sessions\/([^/]+)$/, view: supervisorSessionView, nav: 'nav-supervisor' },
];

// What was sent or seen under one sign-in is no business of the next person at this tablet.
function forgetSubmissions() {
  forgetPendingKeys();
  forgetRecentSessions();
}

function clearToken(options) {
  clearSignIn(options);
  forgetSubmissions();
}

const viewRoot = document.getElementById('view');
let navCount = 0;
let flash = null;
let shownUserId = null;

function updateChrome(user, current) {
  document.getElementById('nav').hidden = !user;
  document.getElementById('account').hidden = !user;
  shownUserId = user?.id ?? null;
  if (!user) return;
  const visible = {
    'nav-my-sessions': hasRole(user, 'worker'),
    'nav-start': hasRole(user, 'worker'),
    'nav-supervisor': hasRole(user, 'supervisor'),
  };
  for (const [testid, show] of Object.entries(visible)) {
    const link = document.querySelector(`[data-testid="${testid}"]`);
    link.hidden = !show;
    if (testid === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const who = user.name && user.id ? `${user.name} (${user.id})` : user.name || user.id || 'token user';
  document.getElementById('account-name').textContent = user.roles ? `${who} · ${user.roles.join(', ')}` : who;
}

async function route() {
  const seq = ++navCount;
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  if (!path || path === '/') return location.replace(homeHash());
  const user = currentUser();
  const match = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (match && !match.r.public && !user) {
    rememberNext(location.hash);
    return location.replace('#/signin');
  }

  clearError();
  clearNotice();
  if (flash) showError(flash);
  flash = null;
  updateChrome(user, match?.r.nav);
  const container = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  mount(viewRoot, container);
  viewRoot.setAttribute('aria-busy', 'true');
  try {
    await loadVocabulary();
    // Changes kept while signed out (an expired token) go out as soon as someone is signed in.
    if (user) flushOutbox().catch(() => {});
    if (!match) {
      mount(container, pageHeading('Page not found'), h('p', {}, h('a', { href: homeHash() }, 'Go to the start page')));
    } else {
      await match.r.view(container, {
        args: match.m.slice(1).map(decodeURIComponent),
        query: new URLSearchParams(query),
      });
    }
  } catch (err) {
    if (seq !== navCount) return;
    showError(err);
    mount(container, pageHeading('This page could not be loaded'), button('Try again', { onclick: route }));
  }
  if (seq !== navCount) return;
  viewRoot.removeAttribute('aria-busy');
  const heading = container.querySelector('h1');
  document.title = heading ? `${heading.textContent} – Work sessions` : 'Work sessions';
  // On the first load the reader starts at the top anyway; afterwards, land on the new page's heading.
  if (seq > 1) heading?.focus();
}

const EXPIRED = {
  title: 'Please sign in again.',
  detail: 'Your sign-in has expired or is no longer valid. Anything you typed and did not record is kept.',
};

setTokenRenewer(renewSignIn);

setUnauthorizedHandler(() => {
  clearToken({ expired: true });
  rememberNext(location.hash);
  flash = EXPIRED;
  navigate('#/signin');
});

document.getElementById('signout').addEventListener('click', async () => {
  const signIn = getSignIn();
  const providerSignOut = await providerSignOutUrl(signIn).catch(() => null);
  clearToken();
  clearAllDrafts();
  if (providerSignOut) {
    location.assign(providerSignOut);
    return;
  }
  announce('Signed out.');
  navigate('#/signin');
});

onSignInChange((signIn, { expired }) => {
  const onSignInPage = location.hash.startsWith('#/signin');
  if (signIn) {
    // Signed in in another tab: a tab waiting at the sign-in page goes on; a renewal changes nothing.
    if (onSignInPage) navigate(takeNext() ?? homeHash());
    else if (currentUser()?.id !== shownUserId) navigate(homeHash());
    return;
  }
  forgetSubmissions();
  if (!expired) clearAllDrafts();
  if (onSignInPage) return;
  rememberNext(location.hash);
  flash = expired ? EXPIRED : { title: 'You signed out in another tab.', detail: 'Sign in to go on.' };
  navigate('#/signin');
});

document.getElementById('alert-dismiss').addEventListener('click', () => {
  clearError();
  document.getElementById('main').focus();
});

// A plain #main link would be taken for a route.
document.querySelector('.skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('main').focus();
});

async function start() {
  try {
    await completeSignIn();
  } catch (err) {
    flash = err;
  }
  const startUser = currentUser();
  if (startUser?.exp && startUser.exp * 1000 <= Date.now() && !(await renewSignIn())) {
    clearToken({ expired: true });
    rememberNext(location.hash);
    flash = EXPIRED;
  }
  window.addEventListener('hashchange', route);
  startOutbox();
  route();
}

start();
