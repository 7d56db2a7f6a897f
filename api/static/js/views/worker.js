import { getJson, postIdempotent } from '../http.js';
import { rememberSession } from '../session-lists.js';
import { currentUser } from '../signin-store.js';
import { navigate, reload, workerHref } from '../nav.js';
import { ownSessionParams, sessionList } from '../session-parts.js';
import { button, busyGuard, clearError, h, mount, pageHeading, say, showError } from '../ui.js';
import { endedStatuses } from '../vocabulary.js';

export { workerSessionView } from './worker-session.js';

const refreshButton = () => button('Refresh', { class: 'secondary', onclick: reload });

export async function mySessionsView(root) {
  const own = ownSessionParams(currentUser());
  const [active, ended] = await Promise.all([
    sessionList(own, {
      hrefFor: (s) => workerHref(s.id),
      empty: 'You have no sessions in progress or paused.',
    }),
    sessionList([...own, ...endedStatuses().map((s) => ['status', s])], {
      hrefFor: (s) => workerHref(s.id),
      empty: 'No completed or aborted sessions yet.',
      testid: 'history-list',
    }),
  ]);
  mount(
    root,
    h('div', { class: 'page-head' }, pageHeading('My sessions'), refreshButton()),
    h(
      'p',
      {},
      'Sessions in progress and paused. Open one to work on it, or ',
      h('a', { href: '#/start' }, 'start a new session'),
      '.',
    ),
    active,
    h('h2', { id: 'history' }, 'Completed and aborted'),
    h('p', { class: 'muted' }, 'Your finished sessions, read-only.'),
    ended,
  );
}

export async function startView(root) {
  const { items } = await getJson('/sops');
  mount(
    root,
    pageHeading('Start a session'),
    h('p', {}, 'Pick the procedure to carry out. Your other sessions stay as they are.'),
    h('ul', { class: 'sop-list', testid: 'sop-list' }, items.map(sopCard)),
    items.length ? null : h('p', { class: 'empty' }, 'No SOPs are published yet.'),
  );
}

function sopCard(sop) {
  const start = button(['Start', h('span', { class: 'visually-hidden' }, `: ${sop.title}`)], {
    testid: `start-sop-${sop.id}`,
  });
  start.addEventListener(
    'click',
    busyGuard(start, async () => {
      clearError();
      try {
        const session = await postIdempotent(`start:${sop.id}`, '/sessions', { sop_id: sop.id });
        rememberSession(session);
        say(`Session started: ${session.sop_title}.`);
        navigate(workerHref(session.id));
      } catch (err) {
        showError(err);
      }
    }),
  );
  return h(
    'li',
    { class: 'card' },
    h('h2', { class: 'card-title' }, sop.title),
    h(
      'p',
      { class: 'muted' },
      `${sop.id} · version ${sop.version} · ${sop.step_count} steps · ${sop.check_count} checks`,
    ),
    start,
  );
}
