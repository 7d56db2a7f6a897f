import { clearDraft, readDraft } from '../check-drafts.js';
import { getJson, postJson } from '../http.js';
import { submit } from '../outbox.js';
import { latestRecords } from '../session-parts.js';
import { rememberSession } from '../session-lists.js';
import { say } from '../ui.js';

// What the worker's session page holds (the session, the step shown, the errors on screen) and
// every change the worker makes from it. `changed()` redraws the page; `busy(on)` marks it busy
// while a change is on its way.

const answerText = (check, answer) =>
  answer.value !== undefined ? `${answer.value}${check.unit ? ` ${check.unit}` : ''}` : answer.passed ? 'Pass' : 'Fail';

function firstStep(sop, session, stepStore) {
  const stored = sessionStorage.getItem(stepStore);
  const index =
    stored !== null && Number.isInteger(Number(stored))
      ? Number(stored)
      : sop.steps.findIndex((s) => s.id === session.current_step_id);
  return Math.min(Math.max(index, 0), sop.steps.length - 1);
}

export function sessionActions({ id, first, sop, changed, busy }) {
  const path = `/sessions/${encodeURIComponent(id)}`;
  const stepStore = `ws.step.${id}`;
  const state = {
    session: first,
    selected: firstStep(sop, first, stepStore),
    // where an error shows ('check:<id>', 'actions', 'complete') -> {err, action}
    errors: new Map(),
    busy: false,
  };

  function select(index) {
    state.selected = index;
    sessionStorage.setItem(stepStore, String(index));
    changed();
  }

  function accept(updated) {
    state.session = updated;
    rememberSession(updated);
  }

  async function reloadSession() {
    try {
      accept(await getJson(path));
    } catch {
      // The change's own error is already on screen; the next focus refreshes again.
    }
  }

  // Sent now or kept in the outbox until the network is back. `taken` runs once the server or the
  // outbox holds the change, `recorded` once the server has it; both before the page redraws.
  async function send(slot, action, request, doneMessage, { taken = () => {}, recorded = () => {} } = {}) {
    if (state.busy) return;
    state.busy = true;
    busy(true);
    state.errors.delete(slot);
    try {
      const updated = await submit({ sessionId: id, action, ...request });
      if (updated) {
        accept(updated);
        recorded();
        say(doneMessage(updated));
      } else {
        say(`${request.label}: waiting to send.`);
      }
      taken();
    } catch (err) {
      state.errors.set(slot, { err, action });
      if (err.status === 409) await reloadSession();
    } finally {
      state.busy = false;
      busy(false);
      changed();
    }
  }

  // Abort and complete end the session: they are sent now or not at all, never queued.
  async function direct(slot, action, post, message) {
    state.errors.delete(slot);
    try {
      accept(await post());
      say(message);
    } catch (err) {
      state.errors.set(slot, { err, action });
      if (err.status === 409) await reloadSession();
    }
    changed();
  }

  function recordCheck(check, answer) {
    const note = readDraft(id, check.id).note.trim();
    const body = { check_id: check.id, ...answer, ...(note ? { note } : {}) };
    // The typed answer and note go once the change is taken: the redraw shows the record instead.
    return send(
      `check:${check.id}`,
      'record this check',
      { path: `${path}/checks`, body, label: `${check.prompt}: ${answerText(check, answer)}` },
      (updated) => `${check.prompt}: ${latestRecords(updated).get(check.id)?.passed ? 'PASSED' : 'FAILED'}.`,
      { taken: () => clearDraft(id, check.id) },
    );
  }

  const pause = (reason, recorded) =>
    send(
      'actions',
      'pause',
      { path: `${path}/pause`, body: reason ? { reason } : {}, label: 'Pause' },
      () => 'Session paused.',
      { recorded },
    );

  const resume = () =>
    send('actions', 'resume', { path: `${path}/resume`, body: {}, label: 'Resume' }, () => 'Session resumed.');

  const abort = (reason) =>
    direct('actions', 'abort', () => postJson(`${path}/abort`, reason ? { reason } : {}), 'Session aborted.');

  const complete = () => direct('complete', 'complete', () => postJson(`${path}/complete`), 'Session completed.');

  // A screen left open goes stale: the session as the server has it now, if it changed.
  async function refresh() {
    try {
      const fresh = await getJson(path);
      if (fresh.updated_at !== state.session.updated_at || fresh.status !== state.session.status) {
        accept(fresh);
        changed();
      }
    } catch {
      // Offline or signed out: the banner and the sign-in page say so.
    }
  }

  return { state, select, accept, reloadSession, recordCheck, pause, resume, abort, complete, refresh };
}
