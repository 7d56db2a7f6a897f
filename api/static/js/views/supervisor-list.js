import { getJson } from '../http.js';
import { listSessions } from '../session-lists.js';
import { navigate, reload, supervisorHref } from '../nav.js';
import { workerLabel } from '../session-parts.js';
import { activeStatuses, statusLabel, statuses } from '../vocabulary.js';
import { button, failedMark, field, h, mount, pageHeading, progressText, showError, statusBadge, time } from '../ui.js';

const REFRESH_MS = 15_000;

// Visibility cannot sort, so the table sorts the sessions it has loaded.
const COLUMNS = [
  { key: 'sop', label: 'SOP', value: (s) => s.sop_title.toLowerCase() },
  { key: 'worker', label: 'Worker', value: (s) => workerLabel(s).toLowerCase() },
  { key: 'status', label: 'Status', value: (s) => statusLabel(s.status) },
  { key: 'progress', label: 'Progress', value: (s) => [s.progress.checks_failed, s.progress.checks_passed] },
  { key: 'started', label: 'Started', value: (s) => Date.parse(s.started_at) },
  { key: 'updated', label: 'Last change', value: (s) => Date.parse(s.updated_at) },
];

function compare(a, b) {
  if (Array.isArray(a)) return compare(a[0], b[0]) || compare(a[1], b[1]);
  return a < b ? -1 : a > b ? 1 : 0;
}

export let listHash = '#/supervisor';

// Day boundaries are the supervisor's own midnights.
const dayStart = (date) => new Date(`${date}T00:00:00`);

function apiParams(query) {
  const chosen = query.getAll('status').filter((s) => statuses().includes(s));
  const params = (chosen.length ? chosen : activeStatuses()).map((s) => ['status', s]);
  for (const name of ['worker_id', 'sop_id']) if (query.get(name)) params.push([name, query.get(name)]);
  const from = query.get('from');
  const to = query.get('to');
  if (from && !Number.isNaN(dayStart(from).getTime())) params.push(['started_since', dayStart(from).toISOString()]);
  if (to && !Number.isNaN(dayStart(to).getTime())) {
    const next = dayStart(to);
    next.setDate(next.getDate() + 1);
    params.push(['started_until', next.toISOString()]);
  }
  if (query.get('failed') === '1') params.push(['has_failed_checks', 'true']);
  return params;
}

function filtersForm(query, sops) {
  const chosen = new Set(
    apiParams(query)
      .filter(([k]) => k === 'status')
      .map(([, v]) => v),
  );
  const worker = h('input', {
    type: 'text',
    testid: 'filter-worker',
    value: query.get('worker_id') ?? '',
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'none',
  });
  const sop = h(
    'select',
    { testid: 'filter-sop' },
    h('option', { value: '' }, 'Every SOP'),
    sops.map((s) => h('option', { value: s.id, selected: s.id === query.get('sop_id') }, s.title)),
  );
  const from = h('input', { type: 'date', testid: 'filter-from', value: query.get('from') ?? '' });
  const to = h('input', { type: 'date', testid: 'filter-to', value: query.get('to') ?? '' });
  const failed = h('input', { type: 'checkbox', testid: 'filter-failed', checked: query.get('failed') === '1' });
  const boxes = statuses().map((s) =>
    h('input', { type: 'checkbox', name: 'status', value: s, checked: chosen.has(s), testid: `filter-status-${s}` }),
  );
  const form = h(
    'form',
    {
      class: 'filters',
      testid: 'filters',
      onsubmit: (e) => {
        e.preventDefault();
        const selected = boxes.filter((b) => b.checked).map((b) => b.value);
        if (!selected.length) {
          showError({ title: 'Choose at least one status.' });
          boxes[0].focus();
          return;
        }
        const next = new URLSearchParams(selected.map((s) => ['status', s]));
        if (worker.value.trim()) next.set('worker_id', worker.value.trim());
        if (sop.value) next.set('sop_id', sop.value);
        if (from.value) next.set('from', from.value);
        if (to.value) next.set('to', to.value);
        if (failed.checked) next.set('failed', '1');
        for (const name of ['sort', 'dir']) if (query.get(name)) next.set(name, query.get(name));
        navigate(`#/supervisor?${next}`);
      },
    },
    field('SOP', sop),
    field('Worker id', worker, 'Leave empty for every worker.'),
    field('Started from', from),
    field('Started until', to),
    h(
      'fieldset',
      { class: 'status-filter' },
      h('legend', {}, 'Status'),
      boxes.map((box) => h('label', { class: 'checkbox' }, box, statusLabel(box.value))),
    ),
    h('label', { class: 'checkbox' }, failed, 'Only sessions with failed checks'),
    h('button', { type: 'submit', testid: 'filter-apply' }, 'Apply filters'),
  );
  return form;
}

function sessionRow(s) {
  return h(
    'tr',
    { testid: `session-item-${s.id}` },
    h('th', { scope: 'row' }, h('a', { href: supervisorHref(s.id), class: 'row-link' }, s.sop_title)),
    h('td', {}, workerLabel(s)),
    h('td', {}, statusBadge(s.status)),
    h(
      'td',
      { class: 'nowrap' },
      h('span', { testid: 'progress' }, progressText(s.progress)),
      h('br'),
      failedMark(s.progress.checks_failed),
    ),
    h('td', {}, time(s.started_at)),
    h('td', {}, time(s.updated_at)),
  );
}

export async function supervisorListView(root, { query }) {
  listHash = location.hash;
  const sortKey = COLUMNS.some((c) => c.key === query.get('sort')) ? query.get('sort') : 'started';
  const descending = query.get('dir') !== 'asc';
  const params = apiParams(query);
  let sessions = [];
  let pageToken = null;
  let pages = 0;

  async function fetchPages(count) {
    const loaded = [];
    let token = null;
    for (let i = 0; i < count; i += 1) {
      const page = await listSessions(new URLSearchParams(params), token);
      loaded.push(...page.items);
      token = page.next_page_token || null;
      if (!token) break;
    }
    return { loaded, token };
  }

  const body = h('tbody');
  const emptyNote = h('p', { class: 'empty', hidden: true }, 'No sessions match these filters.');
  const more = button('Load more', { class: 'secondary', hidden: true });
  const headRow = h('tr');
  const table = h(
    'div',
    { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Sessions' },
    h('table', { testid: 'session-table', class: 'session-table' }, h('thead', {}, headRow), body),
  );

  function sortHref(key) {
    const next = new URLSearchParams(query);
    next.set('sort', key);
    next.set('dir', key === sortKey && descending ? 'asc' : 'desc');
    return `#/supervisor?${next}`;
  }

  function show() {
    const column = COLUMNS.find((c) => c.key === sortKey);
    const sorted = [...sessions].sort((a, b) => compare(column.value(a), column.value(b)) * (descending ? -1 : 1));
    mount(
      headRow,
      COLUMNS.map((c) =>
        h(
          'th',
          { scope: 'col', 'aria-sort': c.key === sortKey ? (descending ? 'descending' : 'ascending') : null },
          h(
            'a',
            { href: sortHref(c.key), class: 'sort-link', testid: `sort-${c.key}` },
            c.label,
            c.key === sortKey ? h('span', { 'aria-hidden': 'true' }, descending ? ' ▼' : ' ▲') : null,
          ),
        ),
      ),
    );
    mount(body, sorted.map(sessionRow));
    emptyNote.hidden = sessions.length > 0;
    table.hidden = sessions.length === 0;
    more.hidden = !pageToken;
  }

  async function load(count) {
    const { loaded, token } = await fetchPages(count);
    sessions = loaded;
    pageToken = token;
    pages = count;
    show();
  }

  more.addEventListener('click', async () => {
    try {
      const page = await listSessions(new URLSearchParams(params), pageToken);
      sessions = [...sessions, ...page.items.filter((s) => !sessions.some((known) => known.id === s.id))];
      pageToken = page.next_page_token || null;
      pages += 1;
      show();
    } catch (err) {
      showError(err);
    }
  });

  const [{ items: sops }] = await Promise.all([getJson('/sops'), load(1)]);
  const updatedNote = h(
    'p',
    { class: 'muted', testid: 'list-refreshed' },
    'Updates by itself while this page is open.',
  );
  mount(
    root,
    h(
      'div',
      { class: 'page-head' },
      pageHeading('All sessions'),
      button('Refresh', { class: 'secondary', onclick: reload }),
    ),
    filtersForm(query, sops),
    h('h2', {}, 'Sessions'),
    updatedNote,
    table,
    emptyNote,
    more,
  );

  const timer = setInterval(async () => {
    if (!root.isConnected || !body.isConnected) return clearInterval(timer);
    if (document.visibilityState !== 'visible') return;
    try {
      await load(Math.max(pages, 1));
    } catch {
      // The next round tries again; a lasting problem shows on Refresh.
    }
  }, REFRESH_MS);
}
