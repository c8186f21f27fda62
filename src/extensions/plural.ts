// Counted nouns for messages: "1 worker", "2 workers", "0 epochs". One helper so that library and
// example messages never print "1 workers".
import { describe } from '../tensor/ndarray.js';

/**
 * The noun for `count` things: `singular` when count is exactly 1 (or -1), else `pluralForm`
 * (default: singular + 's'; give it for irregular nouns: pluralWord(n, 'index', 'indices')).
 */
export function pluralWord(count: number, singular: string, pluralForm?: string): string {
  if (typeof count !== 'number' || Number.isNaN(count)) throw new TypeError(`plural: count must be a number, got ${describe(count)}`);
  if (typeof singular !== 'string' || singular === '') throw new TypeError(`plural: singular must be a non-empty string, got ${describe(singular)}`);
  if (pluralForm !== undefined && (typeof pluralForm !== 'string' || pluralForm === '')) {
    throw new TypeError(`plural: pluralForm must be a non-empty string when given, got ${describe(pluralForm)}`);
  }
  return Math.abs(count) === 1 ? singular : (pluralForm ?? `${singular}s`);
}

/**
 * `count` followed by its noun: plural(1, 'worker') is '1 worker', plural(3, 'epoch') '3 epochs',
 * plural(2, 'index', 'indices') '2 indices'. Large counts print as given (format them first and use
 * pluralWord for '65,536 rows').
 */
export function plural(count: number, singular: string, pluralForm?: string): string {
  return `${count} ${pluralWord(count, singular, pluralForm)}`;
}
