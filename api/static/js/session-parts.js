import { listSessions } from './api.js';
import {
  button,
  busyGuard,
  duration,
  h,
  pageHeading,
  progressText,
  showError,
  ago,
  statusBadge,
  time,
  uid,
} from './ui.js';

export const STATUSES = ['IN_PROGRESS', 'PAUSED', 'COMPLETED', 'ABORTED'];
export const isEnded = (session) => session.status === 'COMPLETED' || session.status === 'ABORTED';

export const ownSessionParams = (user) => (user.id ? [['worker_id', user.id]] : []);

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
  const unit = check.unit ? ` ${check.unit}` : '';
  const hasMin = check.min != null;
  const hasMax = check.max != null;
  if (hasMin && hasMax) return `Limits: ${check.min} to ${check.max}${unit}`;
  if (hasMin) return `Limit: at least ${check.min}${unit}`;
  if (hasMax) return `Limit: at most ${check.max}${unit}`;
  return 'No limits';
}

const valueText = (value, unit) => (unit ? `${value} ${unit}` : String(value));

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
      h(
        'span',
        { class: 'card-row' },
        statusBadge(session.status),
        h('span', { testid: 'progress' }, progressText(session.progress)),
      ),
      showWorker ? h('span', {}, `Worker: ${session.worker_id}`) : null,
      h('span', {}, 'Started ', time(session.started_at), ` · active ${duration(session.active_seconds)}`),
      session.status === 'PAUSED' && session.paused_at ? pausedLine(session) : null,
      session.ended_at
        ? h('span', {}, `${session.status === 'ABORTED' ? 'Aborted' : 'Completed'} `, time(session.ended_at))
        : null,
    ),
  );
}

// Renders the first page before resolving, so a view shows a complete list or an error.
export async function sessionList(params, { hrefFor, showWorker = false, empty }) {
  const list = h('ul', { class: 'session-list', testid: 'session-list' });
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

export function sessionHeader(session, { showWorker = false } = {}) {
  const { progress } = session;
  const reason = session.status === 'PAUSED' ? pauseReason(session) : null;
  const facts = [
    showWorker && ['Worker', session.worker_id],
    ['SOP', `${session.sop_id}, version ${session.sop_version}`],
    ['Started', time(session.started_at)],
    session.ended_at && [session.status === 'ABORTED' ? 'Aborted' : 'Completed', time(session.ended_at)],
    ['Active time', duration(session.active_seconds)],
    ['Paused time', duration(session.paused_seconds)],
    session.status === 'PAUSED' &&
      session.paused_at && ['Paused since', [time(session.paused_at), ` (${ago(session.paused_at)})`]],
    session.status === 'PAUSED' && ['Pause reason', reason || 'No reason given'],
    session.abort_reason && ['Abort reason', session.abort_reason],
  ].filter(Boolean);
  return h(
    'header',
    { class: 'session-header' },
    pageHeading(session.sop_title, { testid: 'session-title' }),
    h(
      'p',
      { class: 'card-row' },
      statusBadge(session.status),
      h('span', { testid: 'progress' }, progressText(progress)),
      progress.checks_required > 0
        ? h('progress', { max: progress.checks_required, value: progress.checks_passed, 'aria-hidden': 'true' })
        : null,
    ),
    h(
      'dl',
      { class: 'facts' },
      facts.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, value))),
    ),
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
          h('strong', { class: r.passed ? 'pass' : 'fail' }, r.passed ? 'Passed' : 'Failed'),
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
    h('strong', { testid: 'check-result', class: last.passed ? 'pass' : 'fail' }, last.passed ? 'PASSED' : 'FAILED'),
    last.value != null ? ` · ${valueText(last.value, check.unit)}` : '',
    ' · ',
    time(last.recorded_at),
  );
}

function checkItem(check, records, { controls, recordsOpen }) {
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
      check.kind === 'measurement' ? limitsText(check) : 'Confirmation',
    ),
    latestLine(check, last),
    controls?.(check, ids),
    records.length ? recordList(check, records, recordsOpen) : null,
  );
}

// `controls(check, {prompt, meta})` (element ids to describe inputs with) adds the inputs for recording a check; without it the steps are read-only.
export function stepsList(sop, session, { controls, recordsOpen = false } = {}) {
  return sop.steps.map((step, index) => {
    const current = !isEnded(session) && step.id === session.current_step_id;
    const headingId = uid('step');
    return h(
      'section',
      {
        class: current ? 'step step-current' : 'step',
        'aria-labelledby': headingId,
        'aria-current': current ? 'step' : null,
      },
      h(
        'h3',
        { id: headingId },
        `Step ${index + 1}: ${step.title}`,
        current ? h('span', { class: 'tag tag-current' }, 'Current step') : null,
      ),
      step.instructions ? h('p', { class: 'instructions' }, step.instructions) : null,
      h(
        'ul',
        { class: 'checks' },
        step.checks.map((check) => checkItem(check, recordsFor(session, check.id), { controls, recordsOpen })),
      ),
    );
  });
}

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
          h('strong', {}, entry.status),
          ' · ',
          time(entry.at, { seconds: true }),
          ` · by ${entry.by}`,
          entry.reason ? h('span', { class: 'note' }, `Reason: ${entry.reason}`) : null,
        ),
      ),
    ),
  );
}
