import { ApiError } from './http.js';
import { statusLabel } from './vocabulary.js';

// replaceChildren/append would insert null and false as the text "null" and "false".
const present = (children) => children.flat(Infinity).filter((c) => c != null && c !== false);

export function mount(el, ...children) {
  el.replaceChildren(...present(children));
}

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (key === 'testid') el.dataset.testid = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  el.append(...present(children));
  return el;
}

let lastId = 0;
export const uid = (prefix = 'id') => `${prefix}-${++lastId}`;

export const pageHeading = (text, props = {}) => h('h1', { tabindex: -1, ...props }, text);

export function field(label, control, hint) {
  control.id ||= uid('field');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('hint') }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), hintEl, control);
}

// A record read by someone in another plant, or in a spreadsheet later, needs its time zone.
const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  timeZoneName: 'short',
});
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  timeZoneName: 'short',
});

export function formatTime(iso, { seconds = false } = {}) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : (seconds ? dateTimeSeconds : dateTime).format(date);
}

export const time = (iso, options) => h('time', { datetime: iso }, formatTime(iso, options));

const unitFormats = Object.fromEntries(
  ['day', 'hour', 'minute', 'second'].map((unit) => [
    unit,
    new Intl.NumberFormat(undefined, { style: 'unit', unit, unitDisplay: 'long' }),
  ]),
);

// The two most significant units are enough to read at a glance.
export function duration(totalSeconds) {
  const s = Math.max(0, Math.round(totalSeconds || 0));
  const parts = [
    ['day', Math.floor(s / 86400)],
    ['hour', Math.floor((s % 86400) / 3600)],
    ['minute', Math.floor((s % 3600) / 60)],
    ['second', s % 60],
  ];
  const first = parts.findIndex(([, n]) => n > 0);
  if (first === -1) return unitFormats.second.format(0);
  return parts
    .slice(first, first + 2)
    .filter(([, n]) => n > 0)
    .map(([unit, n]) => unitFormats[unit].format(n))
    .join(' ');
}

export const ago = (iso) => `${duration((Date.now() - new Date(iso).getTime()) / 1000)} ago`;

export const statusBadge = (status) =>
  h('span', { class: `badge badge-${status.toLowerCase()}`, testid: 'status-badge' }, statusLabel(status));

// Colour alone is not enough on a sunlit screen or for a colour-blind reader: icon and word too.
export const resultMark = (passed, props = {}) =>
  h(
    'strong',
    { class: passed ? 'result result-pass' : 'result result-fail', ...props },
    h('span', { class: 'icon', 'aria-hidden': 'true' }, passed ? '✓' : '✗'),
    passed ? ' PASSED' : ' FAILED',
  );

export const failedMark = (count) =>
  count > 0
    ? h(
        'strong',
        { class: 'result result-fail', testid: 'failed-count' },
        h('span', { class: 'icon', 'aria-hidden': 'true' }, '✗'),
        ` ${count} FAILED`,
      )
    : null;

export const progressText = (p) => `${p.checks_passed} / ${p.checks_required} checks passed`;

// What a refused change means for the person who tried it, in a sentence.
function sentence(problem, action) {
  const status = problem.session_status;
  if (problem.code === 'invalid_transition' && typeof status === 'string' && action) {
    const hint = status === 'PAUSED' ? ' Resume it first.' : '';
    return `Could not ${action}: the session is ${statusLabel(status).toLowerCase()}.${hint}`;
  }
  return null;
}

function describe(err, action) {
  if (err instanceof ApiError) {
    const { title, detail, errors } = err.problem;
    const readable = sentence(err.problem, action);
    return {
      title: readable ?? (title || 'Request failed'),
      detail: readable ? '' : typeof detail === 'string' ? detail : '',
      errors: (Array.isArray(errors) ? errors : []).map((e) => {
        const loc = (e.loc ?? []).filter((part) => part !== 'body').join('.');
        return loc ? `${loc}: ${e.msg}` : e.msg;
      }),
    };
  }
  if (err instanceof Error) return { title: 'Something went wrong', detail: err.message, errors: [] };
  if (typeof err === 'string') return { title: err, detail: '', errors: [] };
  return { title: err.title, detail: err.detail ?? '', errors: [] };
}

export function problemContent(err, action) {
  const { title, detail, errors } = describe(err, action);
  return [
    h('p', { class: 'alert-title' }, title),
    detail ? h('p', {}, detail) : null,
    errors.length
      ? h(
          'ul',
          {},
          errors.map((e) => h('li', {}, e)),
        )
      : null,
  ];
}

export function showError(err) {
  mount(document.getElementById('alert'), problemContent(err));
  document.getElementById('alert-row').classList.add('has-error');
}

/** A slot beside a control for the error that control caused; `action` says what was tried. */
export function errorSlot() {
  const slot = h('div', { class: 'inline-error', role: 'alert', testid: 'inline-error', hidden: true });
  return {
    element: slot,
    show(err, action) {
      mount(slot, problemContent(err, action));
      slot.hidden = false;
    },
    clear() {
      slot.replaceChildren();
      slot.hidden = true;
    },
  };
}

/** Asks a yes-or-no question in a modal dialog; resolves true for the confirming answer. */
export function confirmDialog({ title, body, confirmLabel, cancelLabel = 'Cancel', danger = false, testid }) {
  const titleId = uid('dialog');
  const dialog = h(
    'dialog',
    { 'aria-labelledby': titleId, testid },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: titleId }, title),
      body,
      h(
        'div',
        { class: 'button-row' },
        h('button', { value: 'cancel', class: 'secondary', testid: 'dialog-cancel' }, cancelLabel),
        h('button', { value: 'confirm', class: danger ? 'danger' : null, testid: 'dialog-confirm' }, confirmLabel),
      ),
    ),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'confirm');
    });
    dialog.showModal();
  });
}

export function clearError() {
  document.getElementById('alert').replaceChildren();
  document.getElementById('alert-row').classList.remove('has-error');
}

let noticeTimer;
export function announce(message) {
  const live = document.getElementById('live');
  clearTimeout(noticeTimer);
  // Emptying first makes screen readers repeat a message identical to the previous one.
  live.textContent = '';
  noticeTimer = setTimeout(() => {
    live.textContent = message;
    noticeTimer = setTimeout(() => {
      live.textContent = '';
    }, 8000);
  }, 100);
}

// Feedback on a control the worker is using: the control itself shows the result, a screen reader
// hears it, and nothing appears on screen that could push or cover what they tap next.
let sayTimer;
export function say(message) {
  const live = document.getElementById('sr-live');
  clearTimeout(sayTimer);
  live.textContent = '';
  sayTimer = setTimeout(() => (live.textContent = message), 100);
}

// A message already on screen belongs to the page it was made on; one still on its way stays.
export function clearNotice() {
  const live = document.getElementById('live');
  if (!live.textContent) return;
  clearTimeout(noticeTimer);
  live.textContent = '';
}

// Lets a re-rendered view put focus back on the control the user was on.
export function focusKey(root) {
  const el = document.activeElement;
  if (!el || !root.contains(el)) return null;
  return {
    check: el.closest('[data-check]')?.getAttribute('data-check'),
    testid: el.dataset.testid,
    name: el.getAttribute('name'),
  };
}

export function restoreFocus(root, key) {
  if (!key) return;
  const scope = key.check ? root.querySelector(`[data-check="${CSS.escape(key.check)}"]`) : root;
  const selector = key.testid
    ? `[data-testid="${CSS.escape(key.testid)}"]`
    : key.name && `[name="${CSS.escape(key.name)}"]`;
  const target = scope && selector ? scope.querySelector(selector) : null;
  if (target && !target.matches(':disabled')) target.focus({ preventScroll: true });
  else root.querySelector('h1')?.focus();
}

export const button = (label, props = {}) => h('button', { type: 'button', ...props }, label);

export function busyGuard(el, action) {
  return async (...args) => {
    if (el.getAttribute('aria-busy') === 'true') return;
    el.setAttribute('aria-busy', 'true');
    try {
      await action(...args);
    } finally {
      el.removeAttribute('aria-busy');
    }
  };
}
