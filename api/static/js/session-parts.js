import { listSessions } from './session-lists.js';
import { limitsRange } from './decimal.js';
import { isActive, kindLabel, statusLabel } from './vocabulary.js';
import {
  ago,
  button,
  busyGuard,
  duration,
  failedMark,
  h,
  pageHeading,
  progressText,
  resultMark,
  showError,
  statusBadge,
  time,
  uid,
} from './ui.js';

export const isEnded = (session) => !isActive(session.status);

export const ownSessionParams = (user) => (user.id ? [['worker_id', user.id]] : []);

export const workerLabel = (s) => (s.worker_name ? `${s.worker_name} (${s.worker_id})` : s.worker_id);

export function recordsFor(session, checkId) {
  return session.safety_checks.filter((r) => r.check_id === checkId).sort((a, b) => a.seq - b.seq);
}

export function latestRecords(session) {
  const latest = new Map();
  for (const record of [...session.safety_checks].sort((a, b) => a.seq - b.seq)) latest.set(record.check_id, record);
  return latest;
}

export function pauseReason(session) {
  if (session.pause_reason !== undefined) return session.pause_reason;
  return session.history?.findLast((e) => e.status === 'PAUSED')?.reason ?? null;
}

export function limitsText(check) {
  return check.min == null && check.max == null ? 'No limits' : `Limits: ${limitsRange(check)}`;
}

export const valueText = (value, unit) => (unit ? `${value} ${unit}` : String(value));

export function progressLine(session) {
  const { progress } = session;
  const failed = progress.checks_failed;
  return h(
    'p',
    { class: 'card-row' },
    statusBadge(session.status),
    h('span', { testid: 'progress' }, progressText(progress)),
    failedMark(failed),
    progress.checks_required > 0
      ? h('progress', {
          class: failed ? 'has-failed' : null,
          max: progress.checks_required,
          value: progress.checks_passed,
          'aria-hidden': 'true',
        })
      : null,
  );
}

/** The line that says a finished session holds failed records, so a full bar cannot hide them. */
export function failuresNote(session) {
  const failed = session.progress.checks_failed;
  if (!failed || session.status !== 'COMPLETED') return null;
  return h(
    'p',
    { class: 'banner banner-failed', testid: 'completed-with-failures' },
    h('span', { class: 'icon', 'aria-hidden': 'true' }, '✗ '),
    h('strong', {}, `Completed with ${failed} failed ${failed === 1 ? 'check' : 'checks'}.`),
    ' Their records are kept below.',
  );
}

function pausedLine(session) {
  const reason = pauseReason(session);
  return h(
    'span',
    { class: 'paused-line' },
    'Paused since ',
    time(session.paused_at),
    ` (${ago(session.paused_at)})`,
    h('br'),
    reason ? `Reason: ${reason}` : 'No reason given',
  );
}

function sessionItem(session, { href, showWorker }) {
  return h(
    'li',
    {},
    h(
      'a',
      { class: 'card session-card', href, testid: `session-item-${session.id}` },
      h('span', { class: 'card-title' }, session.sop_title),
      progressLine(session),
      showWorker ? h('span', {}, `Worker: ${workerLabel(session)}`) : null,
      h('span', {}, 'Started ', time(session.started_at), ` · active ${duration(session.active_seconds)}`),
      session.status === 'PAUSED' && session.paused_at ? pausedLine(session) : null,
      session.ended_at ? h('span', {}, `${statusLabel(session.status)} `, time(session.ended_at)) : null,
    ),
  );
}

// Renders the first page before resolving, so a view shows a complete list or an error.
export async function sessionList(params, { hrefFor, showWorker = false, empty, testid = 'session-list' }) {
  const list = h('ul', { class: 'session-list', testid });
  const emptyNote = h('p', { class: 'empty', hidden: true }, empty);
  const more = button('Load more', { class: 'secondary', hidden: true });
  let pageToken = null;

  async function load() {
    const page = await listSessions(new URLSearchParams(params), pageToken);
    const items = page.items.map((s) => sessionItem(s, { href: hrefFor(s), showWorker }));
    list.append(...items);
    pageToken = page.next_page_token || null;
    more.hidden = !pageToken;
    emptyNote.hidden = list.children.length > 0;
    return items;
  }

  more.addEventListener(
    'click',
    busyGuard(more, async () => {
      try {
        const items = await load();
        items[0]?.querySelector('a').focus();
      } catch (err) {
        showError(err);
      }
    }),
  );
  await load();
  return h('div', {}, list, emptyNote, more);
}

export function sessionFacts(session, { showWorker = false } = {}) {
  const reason = session.status === 'PAUSED' ? pauseReason(session) : null;
  const facts = [
    showWorker && ['Worker', workerLabel(session)],
    ['SOP', `${session.sop_id}, version ${session.sop_version}`],
    ['Started', time(session.started_at)],
    session.ended_at && [statusLabel(session.status), time(session.ended_at)],
    ['Last change', time(session.updated_at)],
    ['Active time', duration(session.active_seconds)],
    ['Paused time', duration(session.paused_seconds)],
    session.status === 'PAUSED' &&
      session.paused_at && ['Paused since', [time(session.paused_at), ` (${ago(session.paused_at)})`]],
    session.status === 'PAUSED' && ['Pause reason', reason || 'No reason given'],
    session.abort_reason && ['Abort reason', session.abort_reason],
  ].filter(Boolean);
  return h(
    'dl',
    { class: 'facts' },
    facts.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, value))),
  );
}

export function sessionHeader(session, { showWorker = false, facts = true } = {}) {
  return h(
    'header',
    { class: 'session-header' },
    pageHeading(session.sop_title, { testid: 'session-title' }),
    progressLine(session),
    facts ? sessionFacts(session, { showWorker }) : null,
  );
}

function recordList(check, records, open) {
  return h(
    'details',
    { class: 'records', open },
    h('summary', {}, `All records (${records.length})`),
    h(
      'ol',
      {},
      records.map((r) =>
        h(
          'li',
          {},
          resultMark(r.passed),
          r.value != null ? ` · ${valueText(r.value, check.unit)}` : '',
          ' · ',
          time(r.recorded_at, { seconds: true }),
          ` · by ${r.recorded_by}`,
          r.note ? h('span', { class: 'note' }, `Note: ${r.note}`) : null,
        ),
      ),
    ),
  );
}

function latestLine(check, last) {
  if (!last) return h('p', { class: 'latest muted' }, 'Not recorded yet');
  return h(
    'p',
    { class: 'latest' },
    'Latest: ',
    resultMark(last.passed, { testid: 'check-result' }),
    last.value != null ? ` · ${valueText(last.value, check.unit)}` : '',
    ' · ',
    time(last.recorded_at),
  );
}

/** One check with its latest result; `controls(check, ids)` adds the inputs for recording it. */
export function checkItem(check, records, { controls, recordsOpen = false, extra = null }) {
  const last = records.at(-1);
  const ids = { prompt: uid('prompt'), meta: uid('meta') };
  const state = last ? (last.passed ? 'check-pass' : 'check-fail') : 'check-open';
  return h(
    'li',
    { class: `check ${state}`, testid: `check-${check.id}`, 'data-check': check.id },
    h('p', { class: 'check-prompt', id: ids.prompt }, check.prompt),
    h(
      'p',
      { class: 'check-meta', id: ids.meta },
      h('span', { class: 'tag' }, check.required ? 'Required' : 'Optional'),
      check.kind === 'measurement' ? limitsText(check) : kindLabel(check.kind),
    ),
    latestLine(check, last),
    extra,
    controls?.(check, ids),
    records.length ? recordList(check, records, recordsOpen) : null,
  );
}

/** Counts a step's checks whose latest record failed, and whether every check has passed. */
export function stepState(step, latest) {
  const failed = step.checks.filter((c) => latest.get(c.id)?.passed === false).length;
  const done = step.checks.every((c) => latest.get(c.id)?.passed || (!c.required && latest.has(c.id)));
  return { failed, done };
}

export function stepHeading(step, index, { current, failed, id }) {
  return h(
    'h2',
    { id, class: 'step-title' },
    `Step ${index + 1}: ${step.title}`,
    current ? h('span', { class: 'tag tag-current' }, 'Current step') : null,
    failed
      ? h('span', { class: 'tag tag-failed' }, h('span', { 'aria-hidden': 'true' }, '✗ '), `${failed} FAILED`)
      : null,
  );
}

export function stepSection(sop, session, index, { controls, recordsOpen = false, extraFor = () => null } = {}) {
  const step = sop.steps[index];
  const latest = latestRecords(session);
  const current = !isEnded(session) && step.id === session.current_step_id;
  const headingId = uid('step');
  return h(
    'section',
    {
      class: current ? 'step step-current' : 'step',
      'aria-labelledby': headingId,
      'aria-current': current ? 'step' : null,
      testid: `step-${step.id}`,
    },
    stepHeading(step, index, { current, failed: stepState(step, latest).failed, id: headingId }),
    step.instructions ? h('p', { class: 'instructions' }, step.instructions) : null,
    h(
      'ul',
      { class: 'checks' },
      step.checks.map((check) =>
        checkItem(check, recordsFor(session, check.id), { controls, recordsOpen, extra: extraFor(check) }),
      ),
    ),
  );
}

export const stepsList = (sop, session, options) => sop.steps.map((_, i) => stepSection(sop, session, i, options));

export function historySection(session) {
  return h(
    'section',
    { class: 'history' },
    h('h2', {}, 'Status history'),
    h(
      'ol',
      { class: 'timeline' },
      session.history.map((entry) =>
        h(
          'li',
          {},
          h('strong', {}, statusLabel(entry.status)),
          ' · ',
          time(entry.at, { seconds: true }),
          ` · by ${entry.by}`,
          entry.reason ? h('span', { class: 'note' }, `Reason: ${entry.reason}`) : null,
        ),
      ),
    ),
  );
}
