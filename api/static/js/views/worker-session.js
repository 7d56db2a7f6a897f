import { getSop } from '../api.js';
import { getJson } from '../http.js';
import { supervisorHref } from '../nav.js';
import { dismiss, flushOutbox, onSent, outboxFor, watchOutbox } from '../outbox.js';
import { latestRecords, ownSessionParams } from '../session-parts.js';
import { listSessions } from '../session-lists.js';
import { currentUser, hasRole } from '../signin-store.js';
import { confirmDialog, focusKey, h, mount, restoreFocus } from '../ui.js';
import { completionSummary, reasonDialog } from './session-dialogs.js';
import { sessionActions } from './worker-session-actions.js';
import { checksOf, sessionPage } from './worker-session-render.js';

// The worker's page for one session: loads it, draws it, and keeps it current while it is open.
export async function workerSessionView(root, { args: [id] }) {
  const user = currentUser();
  const [first, mine] = await Promise.all([
    getJson(`/sessions/${encodeURIComponent(id)}`),
    listSessions(new URLSearchParams(ownSessionParams(user))),
  ]);
  if (user.id && first.worker_id !== user.id && hasRole(user, 'supervisor')) {
    location.replace(supervisorHref(id));
    return;
  }
  const sop = await getSop(first.sop_id, first.sop_version);
  const others = mine.items.filter((s) => s.id !== id);
  const content = h('div', { class: 'session-page' });
  const act = sessionActions({
    id,
    first,
    sop,
    changed: () => render(),
    busy: (on) => (on ? content.setAttribute('aria-busy', 'true') : content.removeAttribute('aria-busy')),
  });
  const { state } = act;
  const focusOn = (testid) => content.querySelector(`[data-testid="${testid}"]`)?.focus();

  const pauseDialog = reasonDialog({
    title: 'Pause this session?',
    text: 'Every check and all progress are kept. No check can be recorded until you resume.',
    confirmLabel: 'Pause session',
    testPrefix: 'pause',
    onConfirm: (reason, clear) => act.pause(reason, clear).then(() => focusOn('resume-button')),
  });

  const abortDialog = reasonDialog({
    title: 'Abort this session?',
    text: 'An aborted session can never be resumed. Its checks are kept for audit.',
    confirmLabel: 'Abort session',
    confirmClass: 'danger',
    testPrefix: 'abort',
    onConfirm: (reason) => act.abort(reason),
  });

  function select(index, focusStep = true) {
    act.select(index);
    if (focusStep) content.querySelector('.step h2')?.focus();
  }

  const on = {
    select,
    recordCheck: act.recordCheck,
    dismiss,
    pause: pauseDialog.open,
    abort: abortDialog.open,
    resume: () => act.resume().then(() => focusOn('pause-button')),
    goToCheck(check) {
      select(
        sop.steps.findIndex((s) => s.checks.includes(check)),
        false,
      );
      content.querySelector(`[data-check="${CSS.escape(check.id)}"]`)?.querySelector('button, input')?.focus();
    },
    async complete() {
      const latest = latestRecords(state.session);
      const checks = checksOf(sop);
      const confirmed = await confirmDialog({
        title: 'Complete this session?',
        body: completionSummary(
          checks.filter((c) => latest.get(c.id)?.passed === false),
          checks.filter((c) => !c.required && !latest.has(c.id)),
        ),
        confirmLabel: 'Complete session',
        testid: 'complete-dialog',
      });
      if (confirmed) await act.complete();
    },
  };

  function render() {
    const focus = focusKey(content);
    const page = { ...state, sop, entries: outboxFor(id), others, online: navigator.onLine };
    mount(content, sessionPage(page, on));
    restoreFocus(content, focus);
  }

  async function refresh() {
    if (!content.isConnected) return stop();
    await flushOutbox().catch(() => {});
    await act.refresh();
  }
  const onVisible = () => document.visibilityState === 'visible' && refresh();
  let refusals = outboxFor(id).filter((e) => e.state === 'refused').length;
  // A change refused after the network came back means this screen is out of date.
  async function outboxChanged() {
    if (!content.isConnected) return stop();
    const now = outboxFor(id).filter((e) => e.state === 'refused').length;
    if (now > refusals) await act.reloadSession();
    refusals = now;
    render();
  }
  const rerender = () => (content.isConnected ? render() : stop());
  const stopSent = onSent((updated) => {
    if (updated.id === id && content.isConnected) {
      act.accept(updated);
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
