import {
  currentUser,
  getJson,
  getSop,
  hasRole,
  listSessions,
  postIdempotent,
  postJson,
  rememberSession,
} from '../api.js';
import { clearDraft, readDraft, writeDraft } from '../check-drafts.js';
import { navigate, reload, supervisorHref, workerHref } from '../nav.js';
import {
  historySection,
  isEnded,
  latestRecords,
  ownSessionParams,
  pauseReason,
  sessionHeader,
  sessionList,
  stepsList,
} from '../session-parts.js';
import {
  announce,
  button,
  busyGuard,
  clearError,
  field,
  focusKey,
  h,
  mount,
  pageHeading,
  restoreFocus,
  showError,
  time,
  uid,
} from '../ui.js';

const refreshButton = () => button('Refresh', { class: 'secondary', onclick: reload });

export async function mySessionsView(root) {
  const list = await sessionList(ownSessionParams(currentUser()), {
    hrefFor: (s) => workerHref(s.id),
    empty: 'You have no sessions in progress or paused.',
  });
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
    list,
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
        announce(`Session started: ${session.sop_title}.`);
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

function reasonDialog({ title, text, label, confirmLabel, testPrefix, confirmClass, onConfirm }) {
  const titleId = uid('dialog');
  const reason = h('textarea', { rows: 3, testid: `${testPrefix}-reason` });
  const dialog = h(
    'dialog',
    { 'aria-labelledby': titleId },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: titleId }, title),
      text ? h('p', {}, text) : null,
      field(label, reason),
      h(
        'div',
        { class: 'button-row' },
        h('button', { value: 'cancel', class: 'secondary' }, 'Cancel'),
        h('button', { value: 'confirm', class: confirmClass, testid: `${testPrefix}-confirm` }, confirmLabel),
      ),
    ),
  );
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'confirm') onConfirm(reason.value.trim(), () => (reason.value = ''));
  });
  return {
    element: dialog,
    open() {
      // returnValue survives from the previous close; Escape would otherwise repeat a confirm.
      dialog.returnValue = '';
      dialog.showModal();
    },
  };
}

export async function workerSessionView(root, { args: [id] }) {
  const user = currentUser();
  const path = `/sessions/${encodeURIComponent(id)}`;
  const [first, mine] = await Promise.all([
    getJson(path),
    listSessions(new URLSearchParams(ownSessionParams(user))),
  ]);
  if (user.id && first.worker_id !== user.id && hasRole(user, 'supervisor')) {
    location.replace(supervisorHref(id));
    return;
  }
  const sop = await getSop(first.sop_id, first.sop_version);
  const others = mine.items.filter((s) => s.id !== id);
  let session = first;
  const content = h('div');

  const draft = (checkId) => readDraft(id, checkId);

  // `focusAfter`: the test id of the control to focus when the one in use goes away (pause ↔ resume).
  async function act(send, onDone, focusAfter = null) {
    if (content.getAttribute('aria-busy') === 'true') return;
    content.setAttribute('aria-busy', 'true');
    clearError();
    try {
      session = await send();
      rememberSession(session);
      const message = onDone();
      render(focusAfter);
      announce(message);
    } catch (err) {
      showError(err);
      // A conflict means this page is out of date (e.g. changed from another tab): show the truth.
      if (err.status === 409) {
        try {
          session = await getJson(path);
          render();
        } catch (reloadErr) {
          showError(reloadErr);
        }
      }
    } finally {
      content.removeAttribute('aria-busy');
    }
  }

  function submitCheck(check, answer) {
    const note = draft(check.id).note.trim();
    const body = { check_id: check.id, ...answer, ...(note ? { note } : {}) };
    return act(
      () => postIdempotent(`check:${session.id}:${check.id}`, `${path}/checks`, body),
      () => {
        clearDraft(id, check.id);
        const result = latestRecords(session).get(check.id);
        return `${check.prompt}: ${result?.passed ? 'PASSED' : 'FAILED'}.`;
      },
    );
  }

  const pauseDialog = reasonDialog({
    title: 'Pause this session?',
    text: 'Every check and all progress are kept. No check can be recorded until you resume.',
    label: 'Reason (optional)',
    confirmLabel: 'Pause session',
    testPrefix: 'pause',
    onConfirm: (reason, clear) =>
      act(
        () => postJson(`${path}/pause`, reason ? { reason } : {}),
        () => {
          clear();
          return 'Session paused.';
        },
        'resume-button',
      ),
  });

  const abortDialog = reasonDialog({
    title: 'Abort this session?',
    text: 'An aborted session can never be resumed. Its checks are kept for audit.',
    label: 'Reason',
    confirmLabel: 'Abort session',
    confirmClass: 'danger',
    testPrefix: 'abort',
    onConfirm: (reason, clear) =>
      act(
        () => postJson(`${path}/abort`, reason ? { reason } : {}),
        () => {
          clear();
          return 'Session aborted.';
        },
      ),
  });

  const noteField = (check) =>
    field(
      'Note (optional)',
      h('input', {
        type: 'text',
        name: 'note',
        value: draft(check.id).note,
        oninput: (e) => writeDraft(id, check.id, { note: e.target.value }),
      }),
    );

  function confirmControls(check, ids) {
    return h(
      'div',
      { class: 'check-input' },
      noteField(check),
      h(
        'div',
        { class: 'button-row' },
        button('Pass', {
          class: 'pass',
          testid: 'confirm-pass',
          'aria-describedby': ids.prompt,
          onclick: () => submitCheck(check, { passed: true }),
        }),
        button('Fail', {
          class: 'fail',
          testid: 'confirm-fail',
          'aria-describedby': ids.prompt,
          onclick: () => submitCheck(check, { passed: false }),
        }),
      ),
    );
  }

  function measurementControls(check, ids) {
    const input = h('input', {
      type: 'number',
      step: 'any',
      required: true,
      testid: 'measurement-input',
      'aria-describedby': `${ids.prompt} ${ids.meta}`,
      value: draft(check.id).value,
      oninput: (e) => writeDraft(id, check.id, { value: e.target.value }),
    });
    return h(
      'form',
      {
        class: 'check-input',
        onsubmit: (e) => {
          e.preventDefault();
          submitCheck(check, { value: input.valueAsNumber });
        },
      },
      // No min/max on the input: an out-of-limit reading must still be recordable, the server fails it.
      field(`Measured value${check.unit ? ` (${check.unit})` : ''}`, input),
      noteField(check),
      h(
        'button',
        { type: 'submit', testid: 'measurement-submit', 'aria-describedby': ids.prompt },
        'Record measurement',
      ),
    );
  }

  function statusBanner() {
    if (session.status === 'PAUSED') {
      const reason = pauseReason(session);
      return h(
        'p',
        { class: 'banner banner-paused', id: 'paused-note' },
        h('strong', {}, 'Paused. '),
        reason ? `Reason: ${reason}. ` : '',
        'Checks cannot be recorded while the session is paused. Resume it to continue.',
      );
    }
    if (session.status === 'COMPLETED') {
      return h(
        'p',
        { class: 'banner banner-done' },
        'This session was completed ',
        time(session.ended_at),
        '. It is read-only.',
      );
    }
    if (session.status === 'ABORTED') {
      return h(
        'p',
        { class: 'banner banner-ended' },
        'This session was aborted ',
        time(session.ended_at),
        '. It cannot be resumed; its checks are kept for audit.',
      );
    }
    return null;
  }

  function actions() {
    if (isEnded(session)) return null;
    return h(
      'div',
      { class: 'button-row actions' },
      session.status === 'IN_PROGRESS'
        ? button('Pause', { class: 'secondary', testid: 'pause-button', onclick: pauseDialog.open })
        : button('Resume', {
            testid: 'resume-button',
            onclick: () =>
              act(
                () => postJson(`${path}/resume`),
                () => 'Session resumed. Checks can be recorded again.',
                'pause-button',
              ),
          }),
      button('Abort…', { class: 'danger-outline', testid: 'abort-button', onclick: abortDialog.open }),
    );
  }

  function completeSection() {
    if (session.status !== 'IN_PROGRESS') return null;
    const latest = latestRecords(session);
    const missing = sop.steps.flatMap((step) => step.checks).filter((c) => c.required && !latest.get(c.id)?.passed);
    const ready = missing.length === 0;
    const label = ready
      ? 'Complete session'
      : `Cannot complete: ${missing.length} required ${missing.length === 1 ? 'check has' : 'checks have'} not passed`;
    return h(
      'section',
      { class: 'complete' },
      h('h2', {}, 'Finish'),
      button(label, {
        testid: 'complete-button',
        disabled: !ready,
        onclick: () =>
          act(
            () => postJson(`${path}/complete`),
            () => 'Session completed.',
          ),
      }),
      ready
        ? null
        : h(
            'ul',
            { class: 'missing' },
            missing.map((check) =>
              h(
                'li',
                {},
                button(`Go to: ${check.prompt}`, {
                  class: 'link',
                  onclick: () => {
                    const el = content.querySelector(`[data-check="${CSS.escape(check.id)}"]`);
                    el.scrollIntoView({ block: 'center' });
                    el.querySelector('button, input')?.focus({ preventScroll: true });
                  },
                }),
              ),
            ),
          ),
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
        others.map((s) => h('li', {}, h('a', { href: workerHref(s.id) }, s.sop_title), ` (${s.status})`)),
      ),
    );
  }

  function render(focusAfter = null) {
    const focus = focusAfter ? { testid: focusAfter } : focusKey(content);
    const ended = isEnded(session);
    const steps = stepsList(sop, session, {
      controls: ended
        ? null
        : (check, ids) =>
            check.kind === 'measurement' ? measurementControls(check, ids) : confirmControls(check, ids),
    });
    mount(
      content,
      h('div', { class: 'page-head' }, h('a', { href: '#/sessions' }, '← My sessions'), refreshButton()),
      sessionHeader(session),
      switcher(),
      statusBanner(),
      actions(),
      sop.description ? h('p', { class: 'instructions' }, sop.description) : null,
      h('h2', {}, 'Steps and checks'),
      ended
        ? steps
        : h(
            'fieldset',
            {
              class: 'steps',
              disabled: session.status !== 'IN_PROGRESS',
              'aria-describedby': session.status === 'PAUSED' ? 'paused-note' : null,
            },
            h('legend', { class: 'visually-hidden' }, 'Record checks'),
            steps,
          ),
      completeSection(),
      historySection(session),
    );
    restoreFocus(content, focus);
  }

  mount(root, content, pauseDialog.element, abortDialog.element);
  render();
}
