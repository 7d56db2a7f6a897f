// Gloved thumbs and locales type both "0,05" and "0.05": one separator, either mark, nothing else.
const READING = /^[+-]?(\d+([.,]\d+)?|[.,]\d+)$/;

export function parseReading(text) {
  const typed = text.trim();
  if (!typed) return { empty: true };
  if (!READING.test(typed)) {
    const hint = /[.,].*[.,]/.test(typed)
      ? 'Use one decimal mark and no thousands separators, for example 1234.5 or 0,05.'
      : 'Type digits with at most one decimal mark, for example 0.05 or 0,05.';
    return { error: `“${typed}” is not a reading. ${hint}` };
  }
  const value = Number(typed.replace(',', '.'));
  return { value };
}

export function withinLimits(check, value) {
  return (check.min == null || value >= check.min) && (check.max == null || value <= check.max);
}

const unitSuffix = (check) => (check.unit ? ` ${check.unit}` : '');

export const readingText = (check, value) => `${value}${unitSuffix(check)}`;

export function limitsRange(check) {
  const unit = unitSuffix(check);
  if (check.min != null && check.max != null) return `${check.min}–${check.max}${unit}`;
  if (check.min != null) return `at least ${check.min}${unit}`;
  return `at most ${check.max}${unit}`;
}
