import { request } from './api.js';

// The server owns the list of statuses, check kinds and audit events and the words for them.
let loading = null;
let terms = null;

export function loadVocabulary() {
  loading ??= request('/vocabulary', { auth: false })
    .then((res) => res.json())
    .then((body) => {
      terms = Object.fromEntries(
        Object.entries(body).map(([group, list]) => [group, new Map(list.map((t) => [t.value, t.label]))]),
      );
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
