import { getJson } from './http.js';
import { activeStatuses } from './vocabulary.js';

// Lists come from Temporal visibility, which trails each change by a moment (longer under load).
// Sessions this page has just started or changed are kept briefly, so that a list fetched right
// after shows them as they are now: a new session is there, an aborted one is gone.
const RECENT_MS = 30_000;
const recentSessions = new Map(); // id -> {session, at}

export function rememberSession(session) {
  recentSessions.set(session.id, { session, at: Date.now() });
}

export const forgetRecentSessions = () => recentSessions.clear();

function withRecentChanges(params, items, firstPage) {
  const now = Date.now();
  for (const [id, entry] of recentSessions) if (now - entry.at > RECENT_MS) recentSessions.delete(id);
  const statuses = params.getAll('status');
  const wanted = statuses.length ? statuses : activeStatuses();
  const workerId = params.get('worker_id');
  const matches = (s) => wanted.includes(s.status) && (!workerId || s.worker_id === workerId);
  const newer = (s) => {
    const known = recentSessions.get(s.id)?.session;
    return known && Date.parse(known.updated_at) > Date.parse(s.updated_at) ? known : s;
  };
  const listed = new Set(items.map((s) => s.id));
  const missing = firstPage
    ? [...recentSessions.values()]
        .map((entry) => entry.session)
        .filter((s) => !listed.has(s.id))
        .sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at))
    : [];
  return [...missing, ...items.map(newer)].filter(matches);
}

// One page of `GET /sessions`; `params` is a URLSearchParams without the page token.
export async function listSessions(params, pageToken = null) {
  const query = new URLSearchParams(params);
  if (pageToken) query.set('page_token', pageToken);
  const page = await getJson(`/sessions?${query}`);
  return { ...page, items: withRecentChanges(params, page.items, !pageToken) };
}
