// What a worker has typed for a check, kept in this tab's sessionStorage until it is recorded:
// a re-sign-in (a trip to the identity provider and back) or a reload loses none of it.
const PREFIX = 'ws.draft:';
const EMPTY = { value: '', note: '' };

function read(key) {
  try {
    const draft = JSON.parse(sessionStorage.getItem(key));
    return draft && typeof draft === 'object' ? { ...EMPTY, ...draft } : { ...EMPTY };
  } catch {
    return { ...EMPTY };
  }
}

// The drafts of one session's checks, each {value, note}.
export function checkDrafts(sessionId) {
  const key = (checkId) => `${PREFIX}${JSON.stringify([sessionId, checkId])}`;
  return {
    get: (checkId) => read(key(checkId)),
    update(checkId, changes) {
      sessionStorage.setItem(key(checkId), JSON.stringify({ ...read(key(checkId)), ...changes }));
    },
    delete: (checkId) => sessionStorage.removeItem(key(checkId)),
  };
}

// On sign-out: the next person at this tablet does not inherit anyone's half-typed answers.
export function clearAllDrafts() {
  const keys = Array.from({ length: sessionStorage.length }, (_, i) => sessionStorage.key(i));
  for (const key of keys) if (key?.startsWith(PREFIX)) sessionStorage.removeItem(key);
}
