// The SVG training chart: structure, escaping, tick choice.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as X from '../../src/extensions/index.js';

describe('svg chart', () => {
  it('draws one polyline per series in side-by-side panels, with escaped text', () => {
    const svg = X.lineChartSvg([
      { title: 'loss', series: [{ name: 'train', values: [1, 0.5, 0.25] }, { name: 'test <held out>', values: [1.1, 0.6, 0.4] }] },
      { title: 'accuracy', series: [{ name: 'test', values: [0.9, 0.95, 0.97] }], format: (v) => `${(100 * v).toFixed(0)}%` },
    ], { title: 'MLP & MNIST' });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="880"/);
    assert.equal((svg.match(/<polyline/g) ?? []).length, 3);
    assert.equal((svg.match(/<circle/g) ?? []).length, 9);
    assert.ok(svg.includes('MLP &amp; MNIST') && svg.includes('test &lt;held out&gt;'));
    assert.match(svg, />9\d%</, 'accuracy ticks use the panel format');
    assert.ok(svg.trimEnd().endsWith('</svg>'));
  });

  it('nice ticks cover the range with round steps; a single point still draws', () => {
    assert.deepEqual(X.niceTicks(0, 1), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1].map((v) => Number(v.toPrecision(12))));
    assert.deepEqual(X.niceTicks(0.93, 0.99, 3), [0.94, 0.96, 0.98]);
    const one = X.lineChartSvg([{ title: 'x', series: [{ name: 'a', values: [2] }] }]);
    assert.equal((one.match(/<circle/g) ?? []).length, 1);
    assert.throws(() => X.lineChartSvg([]), /at least one panel/);
  });
});
