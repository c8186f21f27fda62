// Counted nouns: "1 worker", never "1 workers".
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { plural, pluralWord } from '../../src/extensions/plural.js';

describe('plural', () => {
  it('uses the singular for exactly one and the plural otherwise', () => {
    assert.equal(plural(1, 'worker'), '1 worker');
    assert.equal(plural(2, 'worker'), '2 workers');
    assert.equal(plural(0, 'epoch'), '0 epochs');
    assert.equal(plural(-1, 'step'), '-1 step');
    assert.equal(plural(1.5, 'core'), '1.5 cores');
    assert.equal(plural(2, 'index', 'indices'), '2 indices');
    assert.equal(plural(1, 'index', 'indices'), '1 index');
    assert.equal(pluralWord(65536, 'row'), 'rows');
  });

  it('refuses a count that is not a number and empty words, naming the argument', () => {
    assert.throws(() => plural(Number.NaN, 'worker'), /count must be a number/);
    assert.throws(() => plural('2' as unknown as number, 'worker'), /count must be a number, got/);
    assert.throws(() => plural(2, ''), /singular must be a non-empty string/);
    assert.throws(() => plural(2, 'index', ''), /pluralForm must be a non-empty string/);
  });
});
