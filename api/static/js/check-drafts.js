// What the worker has typed into a check, kept per tab so that a reload or a sign-in after the
// token expired puts it back.
const keyOf = (sessionId, checkId) => `ws.draft.${sessionId}.${checkId}`;

export function readDraft(sessionId, checkId) {
  try {
    const draft = JSON.parse(sessionStorage.getItem(keyOf(sessionId, checkId)) ?? 'null');
    return { value: String(draft?.value ?? ''), note: String(draft?.note ?? '') };
  } catch {
    return { value: '', note: '' };
  }
}

export function writeDraft(sessionId, checkId, change) {
  const draft = { ...readDraft(sessionId, checkId), ...change };
  if (!draft.value && !draft.note) sessionStorage.removeItem(keyOf(sessionId, checkId));
  else sessionStorage.setItem(keyOf(sessionId, checkId), JSON.stringify(draft));
}

export const clearDraft = (sessionId, checkId) => sessionStorage.removeItem(keyOf(sessionId, checkId));

// On sign-out: the next person at this tablet does not inherit anyone's half-typed answers.
export function clearAllDrafts() {
  const keys = Array.from({ length: sessionStorage.length }, (_, i) => sessionStorage.key(i));
  for (const key of keys) if (key?.startsWith('ws.draft.')) sessionStorage.removeItem(key);
}
