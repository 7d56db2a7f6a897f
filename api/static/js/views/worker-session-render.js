import { confirmControls, measurementControls } from '../check-controls.js';
import { ApiError } from '../http.js';
import { workerHref } from '../nav.js';
import {
  failuresNote,
  historySection,
  isEnded,
  latestRecords,
  pauseReason,
  sessionFacts,
  sessionHeader,
  stepSection,
  stepState,
  stepsList,
} from '../session-parts.js';
import { stepList, stepPager } from '../step-nav.js';
import { button, errorSlot, h, problemContent, time } from '../ui.js';
import { statusLabel } from '../vocabulary.js';

// The worker's session page drawn from what it holds: each function builds elements from its
// arguments and calls back through `on` (the page's actions), keeping no state of its own.

export const checksOf = (sop) => sop.steps.flatMap((step) => step.checks);

/** Required checks whose latest record has not passed: what stands between the worker and completing. */
function missingChecks(sop, session) {
  const latest = latestRecords(session);
  return checksOf(sop).filter((c) => c.required && !latest.get(c.id)?.passed);
}

function slotFor(errors, key) {
  const slot = errorSlot();
  const stored = errors.get(key);
  if (stored) slot.show(stored.err, stored.action);
  return slot.element;
}

function outboxPanel(entries, on) {
  if (!entries.length) return null;
  return h(
    'section',
    { class: 'outbox', 'aria-label': 'Changes not yet recorded', testid: 'outbox' },
    entries.map((entry) =>
      entry.state === 'refused'
        ? h(
            'div',
            { class: 'outbox-entry outbox-refused', testid: 'refused-entry' },
            h('p', {}, h('strong', {}, 'Not recorded: '), entry.label),
            problemContent(new ApiError(entry.status, entry.problem ?? {}), entry.action),
            button('Dismiss', { class: 'secondary', onclick: () => on.dismiss(entry.key) }),
          )
        : h(
            'p',
            { class: 'outbox-entry outbox-waiting', testid: 'waiting-to-send' },
            h('strong', {}, 'Waiting to send: '),
            entry.label,
          ),
    ),
  );
}

function statusBanner(session, on) {
  if (session.status === 'PAUSED') {
    const reason = pauseReason(session);
    return h(
      'div',
      { class: 'banner banner-paused', id: 'paused-note' },
      h(
        'p',
        {},
        h('strong', {}, 'Paused. '),
        reason ? `Reason: ${reason}. ` : '',
        'Checks cannot be recorded while the session is paused.',
      ),
      button('Resume', { testid: 'resume-button', onclick: on.resume }),
    );
  }
  if (isEnded(session)) {
    return h(
      'p',
      { class: session.status === 'COMPLETED' ? 'banner banner-done' : 'banner banner-ended' },
      `This session was ${statusLabel(session.status).toLowerCase()} `,
      time(session.ended_at),
      '. It is read-only.',
    );
  }
  return null;
}

function offlineBanner(online) {
  if (online) return null;
  return h(
    'p',
    { class: 'banner banner-offline', testid: 'offline-banner' },
    h('strong', {}, 'No network. '),
    'Checks, pauses and resumes you make now are kept on this device and sent when the network returns.',
  );
}

function completeBlock(page, on) {
  const missing = missingChecks(page.sop, page.session);
  if (missing.length) {
    return h(
      'details',
      { class: 'complete' },
      h(
        'summary',
        { testid: 'complete-blocked' },
        `To complete: ${missing.length} required ${missing.length === 1 ? 'check has' : 'checks have'} not passed`,
      ),
      h(
        'ul',
        { class: 'missing' },
        missing.map((check) =>
          h('li', {}, button(`Go to: ${check.prompt}`, { class: 'link', onclick: () => on.goToCheck(check) })),
        ),
      ),
    );
  }
  return h(
    'div',
    { class: 'complete' },
    button('Complete session…', { testid: 'complete-button', onclick: on.complete }),
    slotFor(page.errors, 'complete'),
  );
}

function actions(page, on) {
  const { session } = page;
  if (isEnded(session)) return null;
  return h(
    'section',
    { class: 'session-actions', 'aria-label': 'Session actions' },
    session.status === 'IN_PROGRESS' ? completeBlock(page, on) : null,
    h(
      'div',
      { class: 'button-row actions' },
      session.status === 'IN_PROGRESS'
        ? button('Pause…', { class: 'secondary', testid: 'pause-button', onclick: on.pause })
        : null,
      button('Abort…', { class: 'danger-outline', testid: 'abort-button', onclick: on.abort }),
    ),
    slotFor(page.errors, 'actions'),
  );
}

function switcher(others) {
  if (!others.length) return null;
  return h(
    'details',
    { class: 'switcher' },
    h('summary', {}, `Switch session (${others.length} other active)`),
    h(
      'ul',
      {},
      others.map((s) => h('li', {}, h('a', { href: workerHref(s.id) }, s.sop_title), ` (${statusLabel(s.status)})`)),
    ),
  );
}

const waitingFor = (entries, check) =>
  entries
    .filter((e) => e.body?.check_id === check.id && e.state === 'waiting')
    .map(() => h('p', { class: 'tag tag-waiting' }, 'Waiting to send'));

function currentStep(page, on) {
  const { sop, session, selected, entries } = page;
  const controlsContext = { sessionId: session.id, submit: on.recordCheck };
  const section = stepSection(sop, session, selected, {
    controls: (check, ids) =>
      h(
        'div',
        {},
        check.kind === 'measurement'
          ? measurementControls(check, ids, controlsContext)
          : confirmControls(check, ids, controlsContext),
        slotFor(page.errors, `check:${check.id}`),
      ),
    extraFor: (check) => waitingFor(entries, check),
  });
  section.querySelector('h2').setAttribute('tabindex', '-1');
  return [
    h(
      'fieldset',
      {
        class: 'steps',
        disabled: session.status !== 'IN_PROGRESS',
        'aria-describedby': session.status === 'PAUSED' ? 'paused-note' : null,
      },
      h('legend', { class: 'visually-hidden' }, 'Record checks'),
      section,
    ),
    stepPager(sop, selected, on.select, stepState(sop.steps[selected], latestRecords(session)).done),
  ];
}

function about(session, sop) {
  return h(
    'details',
    { class: 'about', testid: 'about-session' },
    h('summary', {}, 'About this session'),
    sessionFacts(session),
    sop.description ? h('p', { class: 'instructions' }, sop.description) : null,
    historySection(session),
  );
}

/**
 * The whole page. `page`: {session, sop, selected, errors, entries (the outbox's), others (the
 * worker's other active sessions), online}; `on`: {select, recordCheck, resume, pause, abort,
 * complete, goToCheck, dismiss}.
 */
export function sessionPage(page, on) {
  const { session, sop, selected } = page;
  return [
    sessionHeader(session, { facts: false }),
    failuresNote(session),
    statusBanner(session, on),
    offlineBanner(page.online),
    outboxPanel(page.entries, on),
    isEnded(session)
      ? [
          sessionFacts(session),
          h('h2', {}, 'Steps and checks'),
          stepsList(sop, session, { recordsOpen: true }),
          historySection(session),
        ]
      : h(
          'div',
          { class: 'step-layout' },
          stepList(sop, session, selected, on.select),
          h(
            'div',
            { class: 'step-main' },
            currentStep(page, on),
            actions(page, on),
            switcher(page.others),
            about(session, sop),
          ),
        ),
  ];
}
