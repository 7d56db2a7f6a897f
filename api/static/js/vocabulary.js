import { request } from './http.js';

// The server owns the list of statuses, check kinds and audit events, the words for them, and
// which statuses are active (listed by default, still open to changes).
let loading = null;
let terms = null;
let active = [];

export function loadVocabulary() {
  loading ??= request('/vocabulary', { auth: false })
    .then((res) => res.json())
    .then((body) => {
      terms = Object.fromEntries(
        Object.entries(body).map(([group, list]) => [group, new Map(list.map((t) => [t.value, t.label]))]),
      );
      active = body.statuses.filter((t) => t.active).map((t) => t.value);
    })
    .catch((err) => {
      loading = null;
      throw err;
    });
  return loading;
}

const label = (group, value) => terms?.[group]?.get(value) ?? value;

export const statusLabel = (status) => label('statuses', status);
export const kindLabel = (kind) => label('check_kinds', kind);
export const eventLabel = (type) => label('audit_event_types', type);
export const statuses = () => [...(terms?.statuses.keys() ?? [])];
export const activeStatuses = () => [...active];
export const endedStatuses = () => statuses().filter((s) => !active.includes(s));
export const isActive = (status) => active.includes(status);
