import { readDraft, writeDraft } from './check-drafts.js';
import { limitsRange, parseReading, readingText, withinLimits } from './decimal.js';
import { button, confirmDialog, field, h, uid } from './ui.js';

// `ctx`: {sessionId, submit(check, answer)} — submit records the answer and the typed note.

// Folded away until wanted, so that on a phone the answer buttons sit on the first screen.
function noteField(check, ctx) {
  const note = readDraft(ctx.sessionId, check.id).note;
  return h(
    'details',
    { class: 'note-field', open: Boolean(note) },
    h('summary', { testid: 'add-note' }, 'Add a note'),
    field(
      'Note (optional)',
      h('input', {
        type: 'text',
        name: 'note',
        value: note,
        oninput: (e) => writeDraft(ctx.sessionId, check.id, { note: e.target.value }),
      }),
    ),
  );
}

export function confirmControls(check, ids, ctx) {
  return h(
    'div',
    { class: 'check-input' },
    noteField(check, ctx),
    h(
      'div',
      { class: 'button-row' },
      button('Pass', {
        class: 'pass',
        testid: 'confirm-pass',
        'aria-describedby': ids.prompt,
        onclick: () => ctx.submit(check, { passed: true }),
      }),
      button('Fail', {
        class: 'fail',
        testid: 'confirm-fail',
        'aria-describedby': ids.prompt,
        onclick: () => ctx.submit(check, { passed: false }),
      }),
    ),
  );
}

const outsideQuestion = (check, value) =>
  confirmDialog({
    title: 'Outside the limits',
    body: h(
      'p',
      { testid: 'outside-limits-question' },
      `${readingText(check, value)} is outside ${limitsRange(check)}: record it as FAILED?`,
    ),
    confirmLabel: 'Record as FAILED',
    cancelLabel: 'Correct the value',
    danger: true,
    testid: 'outside-limits-dialog',
  });

export function measurementControls(check, ids, ctx) {
  const messageId = uid('reading-error');
  const message = h('p', { class: 'field-error', id: messageId, testid: 'reading-error', hidden: true });
  // A text field: a number field silently drops "0,05" to 5 in some locales.
  const input = h('input', {
    id: uid('field'),
    type: 'text',
    inputmode: 'decimal',
    autocomplete: 'off',
    spellcheck: 'false',
    name: 'value',
    testid: 'measurement-input',
    'aria-describedby': `${ids.prompt} ${ids.meta} ${messageId}`,
    value: readDraft(ctx.sessionId, check.id).value,
  });
  const submit = h(
    'button',
    { type: 'submit', testid: 'measurement-submit', 'aria-describedby': ids.prompt },
    'Record measurement',
  );

  function preview() {
    const reading = parseReading(input.value);
    message.hidden = !reading.error;
    message.textContent = reading.error ?? '';
    input.setAttribute('aria-invalid', reading.error ? 'true' : 'false');
    submit.textContent =
      reading.value === undefined ? 'Record measurement' : `Record ${readingText(check, reading.value)}`;
    return reading;
  }

  input.addEventListener('input', () => {
    writeDraft(ctx.sessionId, check.id, { value: input.value });
    preview();
  });
  preview();

  return h(
    'form',
    {
      class: 'check-input',
      novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        const reading = preview();
        if (reading.value === undefined) {
          if (reading.empty) {
            message.hidden = false;
            message.textContent = 'Type the measured value first.';
          }
          input.focus();
          return;
        }
        if (!withinLimits(check, reading.value) && !(await outsideQuestion(check, reading.value))) {
          input.focus();
          return;
        }
        ctx.submit(check, { value: reading.value });
      },
    },
    // No min/max on the input: an out-of-limit reading must still be recordable, the server fails it.
    h(
      'div',
      { class: 'field' },
      h('label', { for: input.id }, `Measured value${check.unit ? ` (${check.unit})` : ''}`),
      input,
      message,
    ),
    noteField(check, ctx),
    submit,
  );
}
