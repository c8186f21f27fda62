// A small, dependency-free SVG line chart for training curves: side-by-side panels (e.g. loss and
// accuracy), each with its own y axis, gridlines, tick labels and a legend.
import { writeFileSync } from 'node:fs';

/** One line of a chart panel: a name for the legend, its values (one per x) and an optional CSS colour. */
export interface ChartSeries {
  readonly name: string;
  readonly values: readonly number[];
  readonly color?: string;
}

/** One panel of a line chart, with its own y axis. */
export interface ChartPanel {
  readonly title: string;
  readonly yLabel?: string;
  readonly series: readonly ChartSeries[];
  /** Fixed y range (default: the data's range, padded). */
  readonly yRange?: readonly [number, number];
  /** Formats tick labels (default: 3 significant digits). */
  readonly format?: (v: number) => string;
}

/** Options of a whole chart: its title, the shared x values and label, and the size of each panel in pixels. */
export interface ChartOptions {
  readonly title?: string;
  /** x values (default 1, 2, ...); shared by every series. */
  readonly x?: readonly number[];
  readonly xLabel?: string;
  readonly panelWidth?: number;
  readonly panelHeight?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt3 = (v: number): string => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(1) : Number(v.toPrecision(3)).toString());

/** "Nice" tick values covering [lo, hi] (about `count` of them). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function panelSvg(p: ChartPanel, xs: readonly number[], ox: number, w: number, h: number, xLabel: string): string {
  const m = { left: 58, right: 14, top: 30, bottom: 44 };
  const pw = w - m.left - m.right, ph = h - m.top - m.bottom;
  const all = p.series.flatMap((s) => s.values.filter(Number.isFinite));
  let [lo, hi] = p.yRange ?? [Math.min(...all), Math.max(...all)];
  if (!p.yRange) { const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1; lo -= pad; hi += pad; }
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const sx = (x: number) => ox + m.left + (x1 > x0 ? ((x - x0) / (x1 - x0)) * pw : pw / 2);
  const sy = (y: number) => m.top + ph - ((y - lo) / (hi - lo)) * ph;
  const fmt = p.format ?? fmt3;
  const out: string[] = [];
  out.push(`<text x="${ox + m.left + pw / 2}" y="${m.top - 10}" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of niceTicks(lo, hi)) {
    out.push(`<line x1="${ox + m.left}" x2="${ox + m.left + pw}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${ox + m.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${esc(fmt(t))}</text>`);
  }
  for (const t of niceTicks(x0, x1, Math.min(8, Math.max(1, xs.length - 1)))) {
    out.push(`<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="#333"/>`);
    out.push(`<text x="${sx(t).toFixed(1)}" y="${m.top + ph + 17}" text-anchor="middle" font-size="11">${esc(fmt3(t))}</text>`);
  }
  out.push(`<rect x="${ox + m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${ox + m.left + pw / 2}" y="${h - 8}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  if (p.yLabel) out.push(`<text transform="translate(${ox + 14} ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(p.yLabel)}</text>`);
  p.series.forEach((s, k) => {
    const color = s.color ?? COLORS[k % COLORS.length]!;
    const pts = s.values.map((v, i) => [xs[i], v] as const).filter(([x, v]) => x !== undefined && Number.isFinite(v)).map(([x, v]) => `${sx(x!).toFixed(1)},${sy(v).toFixed(1)}`);
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const pt of pts) { const [cx, cy] = pt.split(','); out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`); }
    const ly = m.top + 12 + 16 * k;
    out.push(`<line x1="${ox + m.left + pw - 110}" x2="${ox + m.left + pw - 92}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${ox + m.left + pw - 88}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** The chart as an SVG document. */
export function lineChartSvg(panels: readonly ChartPanel[], options: ChartOptions = {}): string {
  if (panels.length === 0) throw new RangeError('lineChartSvg: at least one panel is needed');
  const longest = Math.max(1, ...panels.flatMap((p) => p.series.map((s) => s.values.length)));
  const xs = options.x ?? Array.from({ length: longest }, (_, i) => i + 1);
  const w = options.panelWidth ?? 440, h = options.panelHeight ?? 300;
  const top = options.title ? 28 : 0;
  const body = panels.map((p, i) => panelSvg(p, xs, i * w, w, h, options.xLabel ?? 'epoch')).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w * panels.length}" height="${h + top}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    options.title ? `<text x="${(w * panels.length) / 2}" y="20" text-anchor="middle" font-size="15">${esc(options.title)}</text>` : '',
    `<g transform="translate(0 ${top})">`, body, '</g>', '</svg>', '',
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
