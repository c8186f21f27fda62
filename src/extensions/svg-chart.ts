// A small, dependency-free SVG line chart for training curves: side-by-side panels (e.g. loss and
// accuracy), each with its own y axis, axis titles, gridlines, round tick labels and a legend placed
// where it covers no data. The layout is computed first (lineChartLayout) and then drawn, so tests
// can check where everything went.
import { writeFileSync } from 'node:fs';
import { describe } from '../tensor/ndarray.js';

/** One line of a chart panel: a name for the legend, its values (one per x) and an optional CSS colour. */
export interface ChartSeries {
  readonly name: string;
  readonly values: readonly number[];
  readonly color?: string;
}

/** One panel of a line chart, with its own y axis. */
export interface ChartPanel {
  readonly title: string;
  /** Title of the y axis (default: the panel's title). */
  readonly yLabel?: string;
  readonly series: readonly ChartSeries[];
  /** Fixed y range (default: the data's range, padded). It may grow upwards to make room for the legend. */
  readonly yRange?: readonly [number, number];
  /** Values are fractions shown as percentages (0.95 -> 95%). */
  readonly percent?: boolean;
  /** Formats tick labels; `step` is the distance between two ticks (default: as many decimals as the step needs). */
  readonly format?: (value: number, step: number) => string;
}

/** Options of a whole chart: its title, the shared x values and label, and the size of each panel in pixels. */
export interface ChartOptions {
  readonly title?: string;
  /** x values (default 1, 2, ...); shared by every series. */
  readonly x?: readonly number[];
  /** Title of the x axis (default 'epoch'). */
  readonly xLabel?: string;
  readonly panelWidth?: number;
  readonly panelHeight?: number;
}

/** A rectangle in SVG coordinates (y grows downwards). */
export interface Box { readonly x: number; readonly y: number; readonly width: number; readonly height: number }
/** A point in SVG user units. */
export interface Point { readonly x: number; readonly y: number }
/** An axis title: its text, anchor and rotation in degrees. */
export interface AxisTitle { readonly text: string; readonly x: number; readonly y: number; readonly rotate: number }

/** Where one panel's plot, ticks, titles and legend go (computed before drawing, so tests can check it). */
export interface PanelLayout {
  /** The plotting area. */
  readonly plot: Box;
  readonly yRange: readonly [number, number];
  readonly yTicks: readonly { value: number; y: number; label: string }[];
  readonly xTicks: readonly { value: number; x: number; label: string }[];
  /** Per series, its drawn points (non-finite values are skipped). */
  readonly points: readonly (readonly Point[])[];
  readonly legend: Box;
  readonly xTitle: AxisTitle;
  readonly yTitle: AxisTitle;
}

/** The whole chart's layout: its size and each panel's. */
export interface ChartLayout { readonly width: number; readonly height: number; readonly panels: readonly PanelLayout[] }

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const TICK_FONT = 11, LEGEND_FONT = 11, LEGEND_ROW = 16, LEGEND_PAD = 7, LEGEND_SAMPLE = 18;
/** Room kept between the legend and any drawn point or line: circle radius 3 plus the stroke. */
const CLEARANCE = 4;
const INSET = 8;
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** A generous estimate of a sans-serif label's width (no font metrics in Node). */
const textWidth = (s: string, size: number): number => s.length * size * 0.62;

/** Decimals that print every multiple of `step` exactly (0.25 -> 2, 5 -> 0). */
export function stepDecimals(step: number): number {
  for (let d = 0; d <= 12; d++) if (Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) < 1e-6) return d;
  return 12;
}

function defaultFormat(v: number, step: number): string {
  // Very large or very fine values: three significant digits in exponent form (1.25e-5).
  if (Math.abs(v) >= 1e6 || (step < 1e-4 && v !== 0)) return Number(v.toPrecision(3)).toExponential();
  return v.toFixed(stepDecimals(step));
}
const percentFormat = (v: number, step: number): string => `${(100 * v).toFixed(stepDecimals(100 * step))}%`;

/**
 * "Nice" tick values covering [lo, hi] (about count + 1 of them): multiples of 1, 2, 2.5 or 5 times a
 * power of ten, printed without float noise (0.6, not 0.6000000000000001). `integer` keeps steps whole.
 */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new RangeError(`niceTicks: lo and hi must be finite, got ${lo} and ${hi}`);
  if (!(hi > lo)) return [lo];
  const step = niceStep(lo, hi, count, integer);
  const decimals = stepDecimals(step);
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(Number((k * step).toFixed(decimals)));
  return ticks;
}

/** The round step (1, 2, 2.5 or 5 times a power of ten) whose tick count is closest to count + 1; ties take the larger step. */
function niceStep(lo: number, hi: number, count: number, integer: boolean): number {
  const target = Math.max(1, count) + 1;
  const e0 = Math.floor(Math.log10((hi - lo) / Math.max(1, count)));
  let best = 0, bestMiss = Infinity;
  for (let e = e0 - 1; e <= e0 + 1; e++) {
    for (const m of [1, 2, 2.5, 5]) {
      const step = m * 10 ** e;
      if (integer && (step < 1 || !Number.isInteger(step))) continue;
      const ticks = Math.floor(hi / step + 1e-9) - Math.ceil(lo / step - 1e-9) + 1;
      const miss = Math.abs(ticks - target);
      if (miss < bestMiss || (miss === bestMiss && step > best)) { best = step; bestMiss = miss; }
    }
  }
  return best > 0 ? best : Math.max(1, 10 ** e0);
}

/** Whether the segment a-b passes through the box (Liang-Barsky clipping). */
export function segmentHitsBox(a: Point, b: Point, box: Box): boolean {
  const dx = b.x - a.x, dy = b.y - a.y;
  let t0 = 0, t1 = 1;
  const sides: [number, number][] = [[-dx, a.x - box.x], [dx, box.x + box.width - a.x], [-dy, a.y - box.y], [dy, box.y + box.height - a.y]];
  for (const [p, q] of sides) {
    if (p === 0) { if (q < 0) return false; continue; }
    const t = q / p;
    if (p < 0) { if (t > t1) return false; t0 = Math.max(t0, t); } else { if (t < t0) return false; t1 = Math.min(t1, t); }
  }
  return true;
}

const grow = (b: Box, by: number): Box => ({ x: b.x - by, y: b.y - by, width: b.width + 2 * by, height: b.height + 2 * by });

/** Whether a legend at `box` stays clear of every drawn point and line. */
function isClear(box: Box, points: readonly (readonly Point[])[]): boolean {
  const zone = grow(box, CLEARANCE);
  return points.every((pts) => pts.every((p, i) => !segmentHitsBox(p, pts[i + 1] ?? p, zone)));
}

const isList = (v: unknown): v is readonly unknown[] => Array.isArray(v);

function checkPanels(panels: readonly ChartPanel[], xs: readonly number[]): void {
  if (!isList(panels) || panels.length === 0) throw new RangeError(`lineChartSvg: at least one panel is needed, got ${describe(panels)}`);
  panels.forEach((p, i) => {
    if (typeof p?.title !== 'string') throw new TypeError(`lineChartSvg: panels[${i}].title must be a string, got ${describe(p?.title)}`);
    if (!isList(p.series)) throw new TypeError(`lineChartSvg: panels[${i}].series must be an array, got ${describe(p.series)}`);
    p.series.forEach((s, k) => {
      if (!isList(s?.values) || s.values.some((v) => typeof v !== 'number')) {
        throw new TypeError(`lineChartSvg: panels[${i}].series[${k}].values must be an array of numbers, got ${describe(s?.values)}`);
      }
      if (s.values.length > xs.length) {
        throw new RangeError(`lineChartSvg: panels[${i}].series[${k}] has ${s.values.length} values but options.x only ${xs.length}`);
      }
    });
    if (p.yRange && !(Number.isFinite(p.yRange[0]) && Number.isFinite(p.yRange[1]) && p.yRange[1] > p.yRange[0])) {
      throw new RangeError(`lineChartSvg: panels[${i}].yRange must be [low, high] with low < high, got ${describe(p.yRange)}`);
    }
  });
  if (xs.some((x) => !Number.isFinite(x))) throw new TypeError(`lineChartSvg: options.x must hold finite numbers, got ${describe(xs)}`);
}

function layoutPanel(p: ChartPanel, xs: readonly number[], ox: number, oy: number, w: number, h: number, xLabel: string): PanelLayout {
  const all = p.series.flatMap((s) => s.values.filter(Number.isFinite));
  let [lo, hi] = p.yRange ?? (all.length ? [Math.min(...all), Math.max(...all)] : [0, 1]);
  const dataHi = all.length ? Math.max(...all) : hi;
  if (!p.yRange) {
    // A flat or nearly flat series (also of tiny values such as 1e-320) gets a visible range around it.
    const mag = Math.max(Math.abs(lo), Math.abs(hi));
    const pad = hi - lo > mag * 1e-9 ? (hi - lo) * 0.08 : mag > 1e-100 ? mag * 0.1 : 1;
    lo -= pad; hi += pad;
  }
  const format = p.format ?? (p.percent ? percentFormat : defaultFormat);
  const legendWidth = 2 * LEGEND_PAD + LEGEND_SAMPLE + 6 + Math.max(0, ...p.series.map((s) => textWidth(s.name, LEGEND_FONT)));
  const legendHeight = 2 * LEGEND_PAD + LEGEND_ROW * p.series.length - 4;
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const integerX = xs.every(Number.isInteger);
  const xTickValues = niceTicks(x0, x1, Math.min(8, Math.max(1, xs.length - 1)), integerX);
  const xStep = xTickValues.length > 1 ? xTickValues[1]! - xTickValues[0]! : 1;

  const build = (low: number, high: number): PanelLayout => {
    const yTickValues = niceTicks(low, high);
    const yStep = yTickValues.length > 1 ? yTickValues[1]! - yTickValues[0]! : Math.abs(low) || 1;
    const labels = yTickValues.map((t) => format(t, yStep));
    // Left margin: the rotated y title, then the widest tick label.
    const left = 26 + Math.ceil(Math.max(...labels.map((l) => textWidth(l, TICK_FONT)))) + 8;
    const plot: Box = { x: ox + left, y: oy + 30, width: w - left - 14, height: h - 30 - 48 };
    const sx = (x: number) => plot.x + (x1 > x0 ? ((x - x0) / (x1 - x0)) * plot.width : plot.width / 2);
    const sy = (y: number) => plot.y + plot.height - ((y - low) / (high - low)) * plot.height;
    const points = p.series.map((s) => s.values.flatMap((v, i) => (Number.isFinite(v) ? [{ x: sx(xs[i]!), y: sy(v) }] : [])));
    const corners: Box[] = [
      { x: plot.x + plot.width - INSET - legendWidth, y: plot.y + INSET, width: legendWidth, height: legendHeight },
      { x: plot.x + INSET, y: plot.y + INSET, width: legendWidth, height: legendHeight },
      { x: plot.x + plot.width - INSET - legendWidth, y: plot.y + plot.height - INSET - legendHeight, width: legendWidth, height: legendHeight },
      { x: plot.x + INSET, y: plot.y + plot.height - INSET - legendHeight, width: legendWidth, height: legendHeight },
    ];
    return {
      plot, yRange: [low, high], points,
      legend: corners.find((c) => isClear(c, points)) ?? corners[0]!,
      yTicks: yTickValues.map((value, i) => ({ value, y: sy(value), label: labels[i]! })),
      xTicks: xTickValues.map((value) => ({ value, x: sx(value), label: defaultFormat(value, xStep) })),
      xTitle: { text: xLabel, x: plot.x + plot.width / 2, y: oy + h - 8, rotate: 0 },
      yTitle: { text: p.yLabel ?? p.title, x: ox + 14, y: plot.y + plot.height / 2, rotate: -90 },
    };
  };
  const first = build(lo, hi);
  if (isClear(first.legend, first.points)) return first;
  // Every corner covers data: raise the top of the y range until a band above the highest value
  // holds the legend (with its inset and clearance), as plotting libraries add headroom.
  const band = INSET + legendHeight + 2 * CLEARANCE + 2;
  const ph = first.plot.height;
  if (band >= ph) return first;
  return build(lo, lo + ((dataHi - lo) * ph) / (ph - band));
}

/** Where every part of the chart goes (SVG coordinates). */
export function lineChartLayout(panels: readonly ChartPanel[], options: ChartOptions = {}): ChartLayout {
  const lengths = (isList(panels) ? panels : [])
    .flatMap((p: ChartPanel) => (isList(p?.series) ? p.series.map((s: ChartSeries) => s?.values?.length ?? 0) : []));
  const longest = Math.max(1, ...lengths);
  const xs = options.x ?? Array.from({ length: longest }, (_, i) => i + 1);
  checkPanels(panels, xs);
  const w = options.panelWidth ?? 440, h = options.panelHeight ?? 300;
  const top = options.title ? 28 : 0;
  return {
    width: w * panels.length,
    height: h + top,
    panels: panels.map((p, i) => layoutPanel(p, xs, i * w, top, w, h, options.xLabel ?? 'epoch')),
  };
}

const n1 = (v: number): string => v.toFixed(1);

function panelSvg(p: ChartPanel, l: PanelLayout): string {
  const { plot } = l;
  const out: string[] = [];
  out.push(`<text x="${n1(plot.x + plot.width / 2)}" y="${n1(plot.y - 10)}" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of l.yTicks) {
    out.push(`<line x1="${n1(plot.x)}" x2="${n1(plot.x + plot.width)}" y1="${n1(t.y)}" y2="${n1(t.y)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${n1(plot.x - 6)}" y="${n1(t.y + 4)}" text-anchor="end" font-size="${TICK_FONT}">${esc(t.label)}</text>`);
  }
  for (const t of l.xTicks) {
    out.push(`<line x1="${n1(t.x)}" x2="${n1(t.x)}" y1="${n1(plot.y + plot.height)}" y2="${n1(plot.y + plot.height + 4)}" stroke="#333"/>`);
    out.push(`<text x="${n1(t.x)}" y="${n1(plot.y + plot.height + 17)}" text-anchor="middle" font-size="${TICK_FONT}">${esc(t.label)}</text>`);
  }
  out.push(`<rect x="${n1(plot.x)}" y="${n1(plot.y)}" width="${n1(plot.width)}" height="${n1(plot.height)}" fill="none" stroke="#333"/>`);
  for (const [cls, t] of [['x-title', l.xTitle], ['y-title', l.yTitle]] as const) {
    const rotate = t.rotate ? ` transform="rotate(${t.rotate} ${n1(t.x)} ${n1(t.y)})"` : '';
    out.push(`<text class="axis-title ${cls}" x="${n1(t.x)}" y="${n1(t.y)}"${rotate} text-anchor="middle" font-size="12">${esc(t.text)}</text>`);
  }
  const colors = p.series.map((s, k) => s.color ?? COLORS[k % COLORS.length]!);
  l.points.forEach((pts, k) => {
    const coords = pts.map((q) => `${n1(q.x)},${n1(q.y)}`).join(' ');
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${colors[k]}" stroke-width="2" points="${coords}"/>`);
    for (const q of pts) out.push(`<circle cx="${n1(q.x)}" cy="${n1(q.y)}" r="3" fill="${colors[k]}"/>`);
  });
  const g = l.legend;
  out.push(`<rect class="legend" x="${n1(g.x)}" y="${n1(g.y)}" width="${n1(g.width)}" height="${n1(g.height)}" `
    + 'fill="white" fill-opacity="0.9" stroke="#bbb"/>');
  p.series.forEach((s, k) => {
    const mid = g.y + LEGEND_PAD + LEGEND_ROW * k + 5;
    const x1 = g.x + LEGEND_PAD, x2 = x1 + LEGEND_SAMPLE;
    out.push(`<line x1="${n1(x1)}" x2="${n1(x2)}" y1="${n1(mid)}" y2="${n1(mid)}" stroke="${colors[k]}" stroke-width="2"/>`);
    out.push(`<text x="${n1(g.x + LEGEND_PAD + LEGEND_SAMPLE + 6)}" y="${n1(mid + 4)}" font-size="${LEGEND_FONT}">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** The chart as an SVG document. */
export function lineChartSvg(panels: readonly ChartPanel[], options: ChartOptions = {}): string {
  const layout = lineChartLayout(panels, options);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    options.title ? `<text x="${layout.width / 2}" y="20" text-anchor="middle" font-size="15">${esc(options.title)}</text>` : '',
    ...panels.map((p, i) => panelSvg(p, layout.panels[i]!)),
    '</svg>', '',
  ].join('\n');
}

/**
 * Writes the chart of {@link lineChartSvg} to an SVG file.
 *
 * @example
 * ```ts
 * import * as X from 'synkhronos/extensions';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * const loss = { title: 'loss', series: [{ name: 'train', values: [2.3, 1.1, 0.6] }, { name: 'test', values: [2.2, 1.2, 0.8] }] };
 * const accuracy = { title: 'accuracy', series: [{ name: 'test', values: [0.2, 0.7, 0.85] }] };
 * X.writeLineChart(join(tmpdir(), 'training.svg'), [loss, accuracy], { title: 'MLP on MNIST', xLabel: 'epoch' });
 * ```
 */
export function writeLineChart(path: string, panels: readonly ChartPanel[], options: ChartOptions = {}): void {
  writeFileSync(path, lineChartSvg(panels, options));
}
