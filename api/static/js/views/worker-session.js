import { ApiError, currentUser, getJson, getSop, hasRole, listSessions, postJson, rememberSession } from '../api.js';
import { confirmControls, measurementControls } from '../check-controls.js';
import { clearDraft } from '../check-drafts.js';
import { supervisorHref, workerHref } from '../nav.js';
import { dismiss, flushOutbox, onSent, outboxFor, submit, watchOutbox } from '../outbox.js';
import {
  failuresNote,
  historySection,
  isEnded,
  latestRecords,
  ownSessionParams,
  pauseReason,
  sessionFacts,
  sessionHeader,
  stepSection,
  stepState,
  stepsList,
} from '../session-parts.js';
import { stepList, stepPager } from '../step-nav.js';
import { statusLabel } from '../vocabulary.js';
import {
  button,
  confirmDialog,
  errorSlot,
  focusKey,
  h,
  mount,
  problemContent,
  restoreFocus,
  say,
  time,
} from '../ui.js';
import { completionSummary, reasonDialog } from './session-dialogs.js';

function outboxPanel(entries) {
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
            button('Dismiss', { class: 'secondary', onclick: () => dismiss(entry.key) }),
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

export async function workerSessionView(root, { args: [id] }) {
  const user = currentUser();
  const path = `/sessions/${encodeURIComponent(id)}`;
  const [first, mine] = await Promise.all([getJson(path), listSessions(new URLSearchParams(ownSessionParams(user)))]);
  if (user.id && first.worker_id !== user.id && hasRole(user, 'supervisor')) {
    location.replace(supervisorHref(id));
    return;
  }
  const sop = await getSop(first.sop_id, first.sop_version);
  const others = mine.items.filter((s) => s.id !== id);
  const stepStore = `ws.step.${id}`;
  const content = h('div', { class: 'session-page' });
  const errors = new Map(); // where the error shows ('check:<id>', 'actions', 'complete') -> {err, action}
  let session = first;

  const indexOf = (stepId) =>
    Math.max(
      0,
      sop.steps.findIndex((s) => s.id === stepId),
    );
  const stored = Number(sessionStorage.getItem(stepStore));
  let selected =
    Number.isInteger(stored) && sessionStorage.getItem(stepStore) !== null ? stored : indexOf(session.current_step_id);
  selected = Math.min(Math.max(selected, 0), sop.steps.length - 1);

  function select(index, focusStep = true) {
    selected = index;
    sessionStorage.setItem(stepStore, String(index));
    render();
    if (focusStep) content.querySelector('.step h2')?.focus();
  }

  function accept(updated) {
    session = updated;
    rememberSession(updated);
  }

  async function reloadSession() {
    try {
      accept(await getJson(path));
    } catch {
      // The change's own error is already on screen; the next focus refreshes again.
    }
  }

  // `taken` runs once the server or the outbox holds the change, before the page redraws.
  async function send(slot, action, request, doneMessage, taken = () => {}) {
    if (content.getAttribute('aria-busy') === 'true') return false;
    content.setAttribute('aria-busy', 'true');
    errors.delete(slot);
    try {
      const updated = await submit({ sessionId: id, action, ...request });
      if (updated) {
        accept(updated);
        say(doneMessage(updated));
      } else {
        say(`${request.label}: waiting to send.`);
      }
      taken();
      return true;
    } catch (err) {
      errors.set(slot, { err, action });
      if (err.status === 409) await reloadSession();
      return false;
    } finally {
      content.removeAttribute('aria-busy');
      render();
    }
  }

  async function recordCheck(check, answer) {
    const note = (content.querySelector(`[data-check="${CSS.escape(check.id)}"] [name="note"]`)?.value ?? '').trim();
    const body = { check_id: check.id, ...answer, ...(note ? { note } : {}) };
    const what =
      answer.value !== undefined
        ? `${answer.value}${check.unit ? ` ${check.unit}` : ''}`
        : answer.passed
          ? 'Pass'
          : 'Fail';
    // The typed answer and note go once the change is taken: the redraw shows the record instead.
    await send(
      `check:${check.id}`,
      'record this check',
      { path: `${path}/checks`, body, label: `${check.prompt}: ${what}` },
      (updated) => {
        const last = latestRecords(updated).get(check.id);
        return `${check.prompt}: ${last?.passed ? 'PASSED' : 'FAILED'}.`;
      },
      () => clearDraft(id, check.id),
    );
  }

  const controlsContext = { sessionId: id, submit: recordCheck };

  const pauseDialog = reasonDialog({
    title: 'Pause this session?',
    text: 'Every check and all progress are kept. No check can be recorded until you resume.',
    confirmLabel: 'Pause session',
    testPrefix: 'pause',
    onConfirm: (reason, clear) =>
      send('actions', 'pause', { path: `${path}/pause`, body: reason ? { reason } : {}, label: 'Pause' }, () => {
        clear();
        return 'Session paused.';
      }).then(() => focusOn('resume-button')),
  });

  const abortDialog = reasonDialog({
    title: 'Abort this session?',
    text: 'An aborted session can never be resumed. Its checks are kept for audit.',
    confirmLabel: 'Abort session',
    confirmClass: 'danger',
    testPrefix: 'abort',
    onConfirm: (reason) =>
      direct('actions', 'abort', () => postJson(`${path}/abort`, reason ? { reason } : {}), 'Session aborted.'),
  });

  const focusOn = (testid) => content.querySelector(`[data-testid="${testid}"]`)?.focus();

  // Abort and complete end the session: they are sent now or not at all, never queued.
  async function direct(slot, action, post, message) {
    errors.delete(slot);
    try {
      accept(await post());
      say(message);
    } catch (err) {
      errors.set(slot, { err, action });
      if (err.status === 409) await reloadSession();
    }
    render();
  }

  const resume = () =>
    send('actions', 'resume', { path: `${path}/resume`, body: {}, label: 'Resume' }, () => 'Session resumed.').then(
      () => focusOn('pause-button'),
    );

  function slotFor(key) {
    const slot = errorSlot();
    const stored = errors.get(key);
    if (stored) slot.show(stored.err, stored.action);
    return slot.element;
  }

  function statusBanner() {
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
        button('Resume', { testid: 'resume-button', onclick: resume }),
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

  function offlineBanner() {
    if (navigator.onLine) return null;
    return h(
      'p',
      { class: 'banner banner-offline', testid: 'offline-banner' },
      h('strong', {}, 'No network. '),
      'Checks, pauses and resumes you make now are kept on this device and sent when the network returns.',
    );
  }

  function completeButton() {
    const latest = latestRecords(session);
    const checks = sop.steps.flatMap((step) => step.checks);
    const missing = checks.filter((c) => c.required && !latest.get(c.id)?.passed);
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
            h(
              'li',
              {},
              button(`Go to: ${check.prompt}`, {
                class: 'link',
                onclick: () => {
                  select(
                    sop.steps.findIndex((s) => s.checks.includes(check)),
                    false,
                  );
                  const item = content.querySelector(`[data-check="${CSS.escape(check.id)}"]`);
                  item?.querySelector('button, input')?.focus();
                },
              }),
            ),
          ),
        ),
      );
    }
    return h(
      'div',
      { class: 'complete' },
      button('Complete session…', {
        testid: 'complete-button',
        onclick: async () => {
          const failed = checks.filter((c) => latest.get(c.id)?.passed === false);
          const unanswered = checks.filter((c) => !c.required && !latest.has(c.id));
          const confirmed = await confirmDialog({
            title: 'Complete this session?',
            body: completionSummary(failed, unanswered),
            confirmLabel: 'Complete session',
            testid: 'complete-dialog',
          });
          if (confirmed) await direct('complete', 'complete', () => postJson(`${path}/complete`), 'Session completed.');
        },
      }),
      slotFor('complete'),
    );
  }

  function actions() {
    if (isEnded(session)) return null;
    return h(
      'section',
      { class: 'session-actions', 'aria-label': 'Session actions' },
      session.status === 'IN_PROGRESS' ? completeButton() : null,
      h(
        'div',
        { class: 'button-row actions' },
        session.status === 'IN_PROGRESS'
          ? button('Pause…', { class: 'secondary', testid: 'pause-button', onclick: pauseDialog.open })
          : null,
        button('Abort…', { class: 'danger-outline', testid: 'abort-button', onclick: abortDialog.open }),
      ),
      slotFor('actions'),
    );
  }

  function switcher() {
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

  function currentStep(entries) {
    const editable = session.status === 'IN_PROGRESS';
    const section = stepSection(sop, session, selected, {
      controls: (check, ids) =>
        h(
          'div',
          {},
          check.kind === 'measurement'
            ? measurementControls(check, ids, controlsContext)
            : confirmControls(check, ids, controlsContext),
          slotFor(`check:${check.id}`),
        ),
      extraFor: (check) => waitingFor(entries, check),
    });
    section.querySelector('h2').setAttribute('tabindex', '-1');
    return [
      h(
        'fieldset',
        {
          class: 'steps',
          disabled: !editable,
          'aria-describedby': session.status === 'PAUSED' ? 'paused-note' : null,
        },
        h('legend', { class: 'visually-hidden' }, 'Record checks'),
        section,
      ),
      stepPager(sop, selected, select, stepState(sop.steps[selected], latestRecords(session)).done),
    ];
  }

  function about() {
    return h(
      'details',
      { class: 'about', testid: 'about-session' },
      h('summary', {}, 'About this session'),
      sessionFacts(session),
      sop.description ? h('p', { class: 'instructions' }, sop.description) : null,
      historySection(session),
    );
  }

  function render() {
    const focus = focusKey(content);
    const entries = outboxFor(id);
    const ended = isEnded(session);
    mount(
      content,
      sessionHeader(session, { facts: false }),
      failuresNote(session),
      statusBanner(),
      offlineBanner(),
      outboxPanel(entries),
      ended
        ? [
            sessionFacts(session),
            h('h2', {}, 'Steps and checks'),
            stepsList(sop, session, { recordsOpen: true }),
            historySection(session),
          ]
        : h(
            'div',
            { class: 'step-layout' },
            stepList(sop, session, selected, select),
            h('div', { class: 'step-main' }, currentStep(entries), actions(), switcher(), about()),
          ),
    );
    restoreFocus(content, focus);
  }

  // A screen left open goes stale: look again whenever the worker comes back to it.
  async function refresh() {
    if (!content.isConnected) return stop();
    await flushOutbox().catch(() => {});
    try {
      const fresh = await getJson(path);
      if (fresh.updated_at !== session.updated_at || fresh.status !== session.status) {
        accept(fresh);
        render();
      }
    } catch {
      // Offline or signed out: the banner and the sign-in page say so.
    }
  }
  const onVisible = () => document.visibilityState === 'visible' && refresh();
  let refusals = outboxFor(id).filter((e) => e.state === 'refused').length;
  // A change refused after the network came back means this screen is out of date.
  async function outboxChanged() {
    if (!content.isConnected) return stop();
    const now = outboxFor(id).filter((e) => e.state === 'refused').length;
    if (now > refusals) await reloadSession();
    refusals = now;
    render();
  }
  const rerender = () => (content.isConnected ? render() : stop());
  const stopSent = onSent((updated) => {
    if (updated.id === id && content.isConnected) {
      accept(updated);
      render();
    }
  });
  const stopWatch = watchOutbox(outboxChanged);
  function stop() {
    window.removeEventListener('focus', refresh);
    document.removeEventListener('visibilitychange', onVisible);
    window.removeEventListener('online', rerender);
    window.removeEventListener('offline', rerender);
    stopSent();
    stopWatch();
  }
  window.addEventListener('focus', refresh);
  document.addEventListener('visibilitychange', onVisible);
  window.addEventListener('online', rerender);
  window.addEventListener('offline', rerender);

  mount(root, content, pauseDialog.element, abortDialog.element);
  render();
}
