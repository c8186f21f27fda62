// The SVG training chart: structure, escaping, axis titles, round ticks, and a legend that covers no data.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as X from '../../src/extensions/index.js';

interface Box { x: number; y: number; width: number; height: number }
interface Pt { x: number; y: number }

const num = (s: string | undefined): number => { assert.ok(s !== undefined); return Number(s); };
const attrs = (tag: string): Record<string, string> => Object.fromEntries([...tag.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));

const boxOf = (tag: string): Box => { const a = attrs(tag); return { x: num(a['x']), y: num(a['y']), width: num(a['width']), height: num(a['height']) }; };
const pointOf = (tag: string): Pt => { const a = attrs(tag); return { x: num(a['cx']), y: num(a['cy']) }; };

/** What the SVG draws, read back from its text (independent of the layout code). */
function parse(svg: string) {
  const all = (re: RegExp): RegExpMatchArray[] => [...svg.matchAll(re)];
  return {
    legends: all(/<rect class="legend"[^>]*>/g).map((m) => boxOf(m[0])),
    circles: all(/<circle[^>]*>/g).map((m) => pointOf(m[0])),
    lines: all(/<polyline[^>]*points="([^"]*)"/g).map((m) => m[1]!.split(' ').map((p) => ({ x: Number(p.split(',')[0]), y: Number(p.split(',')[1]) }))),
    titles: all(/<text class="axis-title (x|y)-title"[^>]*>([^<]*)<\/text>/g).map((m) => ({ axis: m[1]!, text: m[2]! })),
    // The plot frames: the only unfilled rectangles.
    plots: all(/<rect x="[^"]*" y="[^"]*" width="[^"]*" height="[^"]*" fill="none"[^>]*>/g).map((m) => boxOf(m[0])),
    tickLabels: all(/<text x="[^"]*" y="[^"]*" text-anchor="(?:end|middle)" font-size="11">([^<]*)<\/text>/g).map((m) => m[1]!),
  };
}

const inside = (p: Pt, b: Box, margin: number): boolean =>
  p.x >= b.x - margin && p.x <= b.x + b.width + margin && p.y >= b.y - margin && p.y <= b.y + b.height + margin;

/** Asserts that no point (a 3 px circle) and no line (2 px wide, sampled every 0.25 px) touches a legend, and each legend lies in its plot. */
function assertLegendsClear(svg: string, what: string): void {
  const { legends, circles, lines, plots } = parse(svg);
  assert.equal(legends.length, plots.length, `${what}: one legend per panel`);
  legends.forEach((g, i) => {
    const plot = plots[i]!;
    const within = g.x >= plot.x && g.y >= plot.y && g.x + g.width <= plot.x + plot.width && g.y + g.height <= plot.y + plot.height;
    assert.ok(within, `${what}: legend ${i} lies inside its plot`);
    for (const c of circles) assert.ok(!inside(c, g, 3), `${what}: point (${c.x}, ${c.y}) is under legend ${i} ${JSON.stringify(g)}`);
    for (const pts of lines) {
      for (let k = 0; k + 1 < pts.length; k++) {
        const a = pts[k]!, b = pts[k + 1]!;
        const steps = Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) * 4) + 1;
        for (let s = 0; s <= steps; s++) {
          const p = { x: a.x + ((b.x - a.x) * s) / steps, y: a.y + ((b.y - a.y) * s) / steps };
          assert.ok(!inside(p, g, 1), `${what}: the line through (${a.x}, ${a.y}) and (${b.x}, ${b.y}) crosses legend ${i}`);
        }
      }
    }
  });
}

// A training run like main-train's: the accuracy curves end in the top-right corner, where the
// legend used to be drawn on top of the train line.
const TRAIN = [
  {
    title: 'loss', yLabel: 'mean cross-entropy',
    series: [{ name: 'train', values: [1.09, 0.35, 0.23, 0.17, 0.13] }, { name: 'test', values: [0.65, 0.43, 0.41, 0.36, 0.34] }],
  },
  {
    title: 'accuracy', percent: true,
    series: [{ name: 'train', values: [0.7027, 0.8983, 0.9333, 0.957, 0.9703] }, { name: 'test', values: [0.7995, 0.873, 0.8765, 0.888, 0.896] }],
  },
];

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

  it('every panel has an x and a y axis title (the y title defaults to the panel title)', () => {
    const { titles } = parse(X.lineChartSvg(TRAIN, { xLabel: 'epoch' }));
    assert.deepEqual(titles, [
      { axis: 'x', text: 'epoch' }, { axis: 'y', text: 'mean cross-entropy' }, { axis: 'x', text: 'epoch' }, { axis: 'y', text: 'accuracy' },
    ]);
  });

  it('the legend covers no point and no line of a training run', () => {
    assertLegendsClear(X.lineChartSvg(TRAIN), 'training run');
    const twoEpochs = TRAIN.map((p) => ({ ...p, series: p.series.map((s) => ({ ...s, values: s.values.slice(0, 2) })) }));
    assertLegendsClear(X.lineChartSvg(twoEpochs), 'two epochs');
  });

  it('when data fills every corner, the y range grows to give the legend a band of its own', () => {
    const zig = Array.from({ length: 12 }, (_, i) => (i % 2 ? 1 : 0));
    const panels = [{ title: 'zigzag', series: [{ name: 'a long series name', values: zig }, { name: 'b', values: zig.map((v) => 1 - v) }] }];
    assertLegendsClear(X.lineChartSvg(panels), 'zigzag');
    const [layout] = X.lineChartLayout(panels).panels;
    assert.ok(layout!.yRange[1] > 1.2, `the top of the y range was raised above the data (to ${layout!.yRange[1]})`);
  });

  it('the legend stays clear of any data (property)', () => {
    // Doubles include denormals and -0: a flat series of 2.5e-323 once broke the padding of the y range.
    const series = fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 15 });
    fc.assert(fc.property(fc.array(series, { minLength: 1, maxLength: 4 }), (values) => {
      const svg = X.lineChartSvg([{ title: 'random', series: values.map((v, k) => ({ name: `series ${k}`, values: v })) }]);
      assertLegendsClear(svg, JSON.stringify(values));
    }), { numRuns: 150 });
  });

  it('tick labels are short round numbers, not float noise', () => {
    const { tickLabels } = parse(X.lineChartSvg([...TRAIN, { title: 'noise', series: [{ name: 'a', values: [0.1 + 0.2, 0.7, 0.30000000000000004] }] }]));
    assert.ok(tickLabels.length > 10);
    for (const label of tickLabels) assert.match(label, /^-?\d+(\.\d{1,2})?%?$/, `tick label ${label}`);
    assert.ok(tickLabels.includes('90%') && tickLabels.includes('0.4') && tickLabels.includes('1.0'), `percent and loss ticks: ${tickLabels.join(' ')}`);
  });

  it('nice ticks are multiples of a round step inside the range; a single point still draws', () => {
    assert.deepEqual(X.niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(X.niceTicks(0.93, 0.99, 3), [0.94, 0.96, 0.98]);
    assert.deepEqual(X.niceTicks(1, 2, 1, true), [1, 2]);
    fc.assert(fc.property(fc.double({ min: -1e4, max: 1e4, noNaN: true }), fc.double({ min: 1e-3, max: 1e4, noNaN: true }), (lo, span) => {
      const ticks = X.niceTicks(lo, lo + span);
      assert.ok(ticks.length >= 2 && ticks.length <= 11, `${ticks.length} ticks for [${lo}, ${lo + span}]`);
      const step = ticks[1]! - ticks[0]!;
      const mantissa = Number((step / 10 ** Math.floor(Math.log10(step) + 1e-9)).toPrecision(6));
      assert.ok([1, 2, 2.5, 5].includes(mantissa), `step ${step}`);
      for (const t of ticks) {
        const slack = 1e-9 * Math.max(span, Math.abs(lo)); // ticks are rounded to the step's decimals
        assert.ok(t >= lo - slack && t <= lo + span + slack, `tick ${t} outside [${lo}, ${lo + span}]`);
        assert.ok(String(t).length <= 12, `tick ${t} prints with float noise`);
      }
    }), { numRuns: 300 });
    const one = X.lineChartSvg([{ title: 'x', series: [{ name: 'a', values: [2] }] }]);
    assert.equal((one.match(/<circle/g) ?? []).length, 1);
  });

  it('refuses bad input naming the argument', () => {
    assert.throws(() => X.lineChartSvg([]), /at least one panel/);
    const strings = [{ title: 'a', series: [{ name: 's', values: ['1' as unknown as number] }] }];
    assert.throws(() => X.lineChartSvg(strings), /panels\[0\]\.series\[0\]\.values must be an array of numbers/);
    const three = [{ title: 'a', series: [{ name: 's', values: [1, 2, 3] }] }];
    assert.throws(() => X.lineChartSvg(three, { x: [1, 2] }), /series\[0\] has 3 values but options\.x only 2/);
    assert.throws(() => X.lineChartSvg([{ title: 'a', yRange: [1, 0], series: [] }]), /panels\[0\]\.yRange/);
    assert.throws(() => X.niceTicks(0, Infinity), /finite/);
  });
});
