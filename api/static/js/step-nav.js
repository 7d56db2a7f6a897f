import { latestRecords, stepState } from './session-parts.js';
import { button, h, uid } from './ui.js';

function stepMark(step, latest, isCurrent) {
  const { failed, done } = stepState(step, latest);
  if (failed)
    return h(
      'span',
      { class: 'step-mark result-fail' },
      h('span', { 'aria-hidden': 'true' }, '✗ '),
      `${failed} FAILED`,
    );
  if (done) return h('span', { class: 'step-mark result-pass' }, h('span', { 'aria-hidden': 'true' }, '✓ '), 'Done');
  return isCurrent ? h('span', { class: 'step-mark' }, 'Current') : null;
}

/** The list of steps, folded away on a phone; picking one shows that step. */
export function stepList(sop, session, selected, onSelect) {
  const latest = latestRecords(session);
  const listId = uid('steps');
  const toggle = button(`Steps: ${selected + 1} of ${sop.steps.length}`, {
    class: 'secondary step-toggle',
    testid: 'step-list-toggle',
    'aria-expanded': 'false',
    'aria-controls': listId,
  });
  const list = h(
    'ol',
    { class: 'step-list', id: listId, testid: 'step-list' },
    sop.steps.map((step, index) =>
      h(
        'li',
        {},
        button([`${index + 1}. ${step.title}`, stepMark(step, latest, step.id === session.current_step_id)], {
          class: 'step-link',
          testid: `step-link-${step.id}`,
          'aria-current': index === selected ? 'step' : null,
          onclick: () => onSelect(index),
        }),
      ),
    ),
  );
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    list.classList.toggle('open', open);
  });
  return h('nav', { class: 'step-nav', 'aria-label': 'Steps' }, toggle, list);
}

// Once the step on screen is done, moving on is the obvious next tap.
export function stepPager(sop, selected, onSelect, stepDone) {
  const last = sop.steps.length - 1;
  return h(
    'div',
    { class: 'button-row step-pager' },
    button('← Previous step', {
      class: 'secondary',
      testid: 'step-prev',
      disabled: selected === 0,
      onclick: () => onSelect(selected - 1),
    }),
    button('Next step →', {
      class: stepDone ? null : 'secondary',
      testid: 'step-next',
      disabled: selected === last,
      onclick: () => onSelect(selected + 1),
    }),
  );
}
