import { field, h, uid } from '../ui.js';

/** A modal that asks for an optional reason before pausing or aborting. */
export function reasonDialog({ title, text, confirmLabel, confirmClass, testPrefix, onConfirm }) {
  const titleId = uid('dialog');
  const reason = h('textarea', { rows: 3, testid: `${testPrefix}-reason` });
  const dialog = h(
    'dialog',
    { 'aria-labelledby': titleId },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: titleId }, title),
      text ? h('p', {}, text) : null,
      field('Reason (optional)', reason),
      h(
        'div',
        { class: 'button-row' },
        h('button', { value: 'cancel', class: 'secondary' }, 'Cancel'),
        h('button', { value: 'confirm', class: confirmClass, testid: `${testPrefix}-confirm` }, confirmLabel),
      ),
    ),
  );
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'confirm') onConfirm(reason.value.trim(), () => (reason.value = ''));
  });
  return {
    element: dialog,
    open() {
      // returnValue survives from the previous close; Escape would otherwise repeat a confirm.
      dialog.returnValue = '';
      dialog.showModal();
    },
  };
}

const checkList = (checks) =>
  h(
    'ul',
    {},
    checks.map((c) => h('li', {}, c.prompt)),
  );

/** What completing would leave behind, said before the worker confirms. */
export function completionSummary(failed, unanswered) {
  return h(
    'div',
    { testid: 'complete-summary' },
    failed.length
      ? [h('p', { class: 'result-fail' }, h('strong', {}, `✗ ${failed.length} FAILED:`)), checkList(failed)]
      : null,
    unanswered.length
      ? [h('p', {}, h('strong', {}, `${unanswered.length} optional not answered:`)), checkList(unanswered)]
      : null,
    h(
      'p',
      {},
      failed.length || unanswered.length
        ? 'These stay in the record as they are. A completed session cannot be changed.'
        : 'Every check has passed. A completed session cannot be changed.',
    ),
  );
}
