import { getConfig, getSop } from '../api.js';
import { getJson, request } from '../http.js';
import { limitsText, failuresNote, historySection, sessionHeader, stepsList, valueText } from '../session-parts.js';
import { eventLabel } from '../vocabulary.js';
import { announce, button, busyGuard, clearError, h, mount, resultMark, showError, time } from '../ui.js';
import { reload } from '../nav.js';
import { listHash } from './supervisor-list.js';

export { supervisorListView } from './supervisor-list.js';

function temporalLink(config, session) {
  if (!config?.temporal_ui_url) return null;
  const base = config.temporal_ui_url.replace(/\/+$/, '');
  const href = `${base}/namespaces/${encodeURIComponent(config.temporal_namespace)}/workflows/${encodeURIComponent(session.id)}`;
  return h(
    'a',
    { class: 'button-link secondary', href, target: '_blank', rel: 'noopener', testid: 'temporal-link' },
    'Open in Temporal Web UI',
    h('span', { class: 'visually-hidden' }, ' (opens in a new tab)'),
  );
}

async function downloadCsv(sessionId) {
  clearError();
  try {
    const query = new URLSearchParams({ session_id: sessionId, format: 'csv' });
    const res = await request(`/audit?${query}`, { accept: 'text/csv, application/problem+json' });
    const url = URL.createObjectURL(await res.blob());
    const link = h('a', { href: url, download: `audit-${sessionId.replace(/[^\w.-]+/g, '_')}.csv`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    // Revoking right away can cancel the download in some browsers.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    announce('Audit trail downloaded as CSV.');
  } catch (err) {
    showError(err);
  }
}

function checkDetails(data, check) {
  if (!check) return `Check ${data.check_id}`;
  return [
    h('strong', {}, check.prompt),
    ' · ',
    resultMark(data.passed),
    data.value != null ? ` · ${valueText(data.value, check.unit)}` : '',
    check.kind === 'measurement' ? ` · ${limitsText(check)}` : '',
    data.note ? h('span', { class: 'note' }, `Note: ${data.note}`) : null,
  ];
}

// Each record beside what it answers: a reading means nothing without its prompt, unit and limits.
function details(event, checks) {
  const data = event.data ?? {};
  switch (event.type) {
    case 'check_recorded':
      return checkDetails(data, checks.get(data.check_id));
    case 'session_started':
      return `${data.sop_title ?? event.sop_id}, version ${data.sop_version}`;
    case 'session_paused':
    case 'session_aborted':
      return data.reason ? `Reason: ${data.reason}` : 'No reason given';
    default:
      return '';
  }
}

function auditTable(events, checks) {
  const columns = ['#', 'Time', 'Event', 'Actor', 'Details'];
  return h(
    'div',
    { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Audit trail' },
    h(
      'table',
      { testid: 'audit-table' },
      h('caption', { class: 'visually-hidden' }, 'Audit events, oldest first'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      h(
        'tbody',
        {},
        events.map((e) =>
          h(
            'tr',
            {},
            h('td', {}, e.seq),
            h('td', { class: 'nowrap' }, time(e.at, { seconds: true })),
            h('td', { class: 'nowrap' }, eventLabel(e.type)),
            h('td', { class: 'nowrap' }, e.actor),
            h('td', { class: 'data' }, details(e, checks)),
          ),
        ),
      ),
    ),
  );
}

// Every status change and every check record writes one audit event.
const expectedEvents = (session) => session.history.length + session.safety_checks.length;
// The audit activity writes each event shortly after the change: look again a few times.
const AUDIT_RETRY_MS = [250, 500, 1000, 2000, 4000];

function auditSection(session, sop, firstEvents, path) {
  const checks = new Map(sop.steps.flatMap((step) => step.checks).map((c) => [c.id, c]));
  const csv = button('Download CSV', { class: 'secondary', testid: 'audit-csv' });
  csv.addEventListener(
    'click',
    busyGuard(csv, () => downloadCsv(session.id)),
  );
  const body = h('div');
  const section = h('section', {}, h('div', { class: 'page-head' }, h('h2', {}, 'Audit trail'), csv), body);
  const expected = expectedEvents(session);

  function show(events, waiting) {
    const behind = events.length < expected;
    mount(
      body,
      events.length ? auditTable(events, checks) : h('p', { class: 'empty' }, 'No audit events recorded yet.'),
      behind
        ? h(
            'p',
            { class: 'muted' },
            `${events.length} of ${expected} events written so far. `,
            waiting ? 'The rest are on their way; this list updates by itself.' : 'Refresh to look again.',
          )
        : null,
    );
    return behind;
  }

  async function catchUp(attempt = 0) {
    await new Promise((resolve) => setTimeout(resolve, AUDIT_RETRY_MS[attempt]));
    if (!section.isConnected) return;
    let events;
    try {
      ({ items: events } = await getJson(`${path}/audit`));
    } catch (err) {
      showError(err);
      return;
    }
    const last = attempt === AUDIT_RETRY_MS.length - 1;
    if (section.isConnected && show(events, !last) && !last) await catchUp(attempt + 1);
  }

  if (show(firstEvents, true)) catchUp();
  return section;
}

export async function supervisorSessionView(root, { args: [id] }) {
  const path = `/sessions/${encodeURIComponent(id)}`;
  const [session, audit, config] = await Promise.all([
    getJson(path),
    getJson(`${path}/audit`),
    // The page is still useful without the Temporal link.
    getConfig().catch((err) => {
      showError(err);
      return null;
    }),
  ]);
  const sop = await getSop(session.sop_id, session.sop_version);
  mount(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('a', { href: listHash }, '← All sessions'),
      button('Refresh', { class: 'secondary', onclick: reload }),
    ),
    sessionHeader(session, { showWorker: true }),
    failuresNote(session),
    h('p', {}, temporalLink(config, session)),
    sop.description ? h('p', { class: 'instructions' }, sop.description) : null,
    h('h2', {}, 'Steps and checks'),
    stepsList(sop, session, { recordsOpen: true }),
    historySection(session),
    auditSection(session, sop, audit.items, path),
  );
}
