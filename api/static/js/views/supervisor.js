import { getConfig, getJson, getSop, request } from '../api.js';
import { navigate, reload, supervisorHref } from '../nav.js';
import { STATUSES, historySection, sessionHeader, sessionList, stepsList } from '../session-parts.js';
import {
  STATUS_LABELS,
  announce,
  button,
  busyGuard,
  clearError,
  field,
  h,
  mount,
  pageHeading,
  showError,
  time,
} from '../ui.js';

const DEFAULT_STATUSES = ['IN_PROGRESS', 'PAUSED'];
let listHash = '#/supervisor';

export async function supervisorListView(root, { query }) {
  listHash = location.hash;
  const worker = query.get('worker_id') ?? '';
  const chosen = query.getAll('status').filter((s) => STATUSES.includes(s));
  const statuses = chosen.length ? chosen : DEFAULT_STATUSES;
  const params = [...statuses.map((s) => ['status', s]), ...(worker ? [['worker_id', worker]] : [])];

  const workerInput = h('input', {
    type: 'text',
    testid: 'filter-worker',
    value: worker,
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'none',
  });
  const boxes = STATUSES.map((s) =>
    h('input', {
      type: 'checkbox',
      name: 'status',
      value: s,
      checked: statuses.includes(s),
      testid: `filter-status-${s}`,
    }),
  );
  const form = h(
    'form',
    {
      class: 'filters',
      onsubmit: (e) => {
        e.preventDefault();
        const selected = boxes.filter((b) => b.checked).map((b) => b.value);
        if (!selected.length) {
          showError({ title: 'Choose at least one status.' });
          boxes[0].focus();
          return;
        }
        const next = new URLSearchParams(selected.map((s) => ['status', s]));
        const w = workerInput.value.trim();
        if (w) next.set('worker_id', w);
        navigate(`#/supervisor?${next}`);
      },
    },
    field('Worker id', workerInput, 'Leave empty for every worker.'),
    h(
      'fieldset',
      { class: 'status-filter' },
      h('legend', {}, 'Status'),
      boxes.map((box, i) => h('label', { class: 'checkbox' }, box, STATUS_LABELS[STATUSES[i]])),
    ),
    h('button', { type: 'submit', testid: 'filter-apply' }, 'Apply filters'),
  );

  const list = await sessionList(params, {
    hrefFor: (s) => supervisorHref(s.id),
    showWorker: true,
    empty: 'No sessions match these filters.',
  });
  mount(
    root,
    h(
      'div',
      { class: 'page-head' },
      pageHeading('All sessions'),
      button('Refresh', { class: 'secondary', onclick: reload }),
    ),
    form,
    h('h2', {}, 'Sessions'),
    list,
  );
}

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

const eventLabel = (type) => type.charAt(0).toUpperCase() + type.slice(1).replace(/_/g, ' ');

function dataText(data) {
  return Object.entries(data ?? {})
    .filter(([, value]) => value != null)
    .map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : value}`)
    .join(', ');
}

function auditTable(events) {
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
            h('td', { class: 'data' }, dataText(e.data)),
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

function auditSection(session, firstEvents, path) {
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
      events.length ? auditTable(events) : h('p', { class: 'empty' }, 'No audit events recorded yet.'),
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
    h('p', {}, temporalLink(config, session)),
    sop.description ? h('p', { class: 'instructions' }, sop.description) : null,
    h('h2', {}, 'Steps and checks'),
    stepsList(sop, session, { recordsOpen: true }),
    historySection(session),
    auditSection(session, audit.items, path),
  );
}
