// Dispatch overhead of the data-parallel runtime: microseconds per call of a trivial synk.fn (the sum
// of a tiny Data, reduced by 'sum') at several worker counts, after warm-up; the median of many calls.
// Usage: node dist/bench/dispatch.js [counts, e.g. 1,2,4,8,16] [--seconds 1]
//   default counts: 1, 2, 4, 8, 16 up to os.availableParallelism(); counts above twice the
//   available cores are skipped with a note.
import os from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';

export interface DispatchBenchOptions {
  /** Worker counts to measure. */
  counts: number[];
  /** Least time spent timing calls at one count, in seconds. */
  minSeconds: number;
  /** Untimed calls before timing. */
  warmup: number;
}

export interface DispatchRow {
  workers: number;
  calls: number;
  medianUs: number;
  p10Us: number;
  p90Us: number;
  meanUs: number;
}

export const DEFAULT_COUNTS = [1, 2, 4, 8, 16];

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** Times one worker count: fork, warm up, time calls one by one, close. */
async function measure(n: number, f: synk.SynkFn, options: DispatchBenchOptions): Promise<DispatchRow> {
  await synk.fork({ n });
  try {
    const rows = Math.max(16, n);
    const x = synk.data(T.NDArray.full([rows, 4], 1, 'float32'), { name: 'x' });
    for (let i = 0; i < options.warmup; i++) await f(x);
    const check = (await f(x)) as T.NDArray;
    if (check.item() !== rows * 4) throw new Error(`dispatch bench: the sum is ${check.item()}, expected ${rows * 4}`);
    const times: number[] = [];
    const start = performance.now();
    while (times.length < 500 || (performance.now() - start < options.minSeconds * 1000 && times.length < 100_000)) {
      const t0 = performance.now();
      await f(x);
      times.push((performance.now() - t0) * 1000);
    }
    const sorted = [...times].sort((a, b) => a - b);
    return {
      workers: n,
      calls: times.length,
      medianUs: quantile(sorted, 0.5),
      p10Us: quantile(sorted, 0.1),
      p90Us: quantile(sorted, 0.9),
      meanUs: times.reduce((s, t) => s + t, 0) / times.length,
    };
  } finally {
    await synk.close();
  }
}

/** Runs the benchmark and returns a markdown table (with notes for skipped counts). */
export async function runDispatchBench(options: Partial<DispatchBenchOptions> = {}): Promise<string> {
  const cores = os.availableParallelism();
  const opts: DispatchBenchOptions = {
    counts: options.counts ?? DEFAULT_COUNTS.filter((c) => c <= cores),
    minSeconds: options.minSeconds ?? 1,
    warmup: options.warmup ?? 200,
  };
  const x = T.matrix('x');
  const f = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'], name: 'trivial' });
  const rows: DispatchRow[] = [];
  const notes: string[] = [];
  for (const n of opts.counts) {
    if (n > 2 * cores) { notes.push(`${n} workers skipped: more than twice the ${cores} available cores`); continue; }
    rows.push(await measure(n, f, opts));
  }
  const header = [
    `Dispatch overhead: one call of a trivial synk.fn (sum of a max(16, n) x 4 float32 Data, reduced by 'sum'), awaited one at a time after ` +
      `${opts.warmup} warm-up calls.`,
    `Machine: ${cores} available cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, 1-minute load average ` +
      `${os.loadavg()[0]!.toFixed(2)} at the end.`,
    '',
    '| workers | median us | p10 us | p90 us | mean us | calls |',
    '|---:|---:|---:|---:|---:|---:|',
  ];
  const lines = rows.map((r) => [r.workers, r.medianUs.toFixed(1), r.p10Us.toFixed(1), r.p90Us.toFixed(1), r.meanUs.toFixed(1), r.calls])
    .map((cells) => `| ${cells.join(' | ')} |`);
  const oversubscribed = rows.filter((r) => r.workers > cores).map((r) => r.workers);
  if (oversubscribed.length) notes.push(`${oversubscribed.join(', ')} workers share ${cores} cores: those figures include waiting for a core`);
  return [...header, ...lines, ...(notes.length ? ['', ...notes.map((s) => `- ${s}.`)] : [])].join('\n');
}

function parseArgs(argv: readonly string[]): Partial<DispatchBenchOptions> {
  const out: Partial<DispatchBenchOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = argv[i + 1];
    if (a === '--seconds' && value !== undefined) { out.minSeconds = Number(value); i++; continue; }
    if (a === '--warmup' && value !== undefined) { out.warmup = Number(value); i++; continue; }
    const list = a === '--workers' || a === '--counts' ? (i++, value) : a;
    if (list === undefined) continue;
    const counts = list.split(',').map(Number);
    if (counts.some((c) => !Number.isInteger(c) || c < 1)) {
      throw new RangeError(`dispatch bench: worker counts must be positive integers, got ${JSON.stringify(list)}`);
    }
    out.counts = counts;
  }
  if (out.minSeconds !== undefined && !(out.minSeconds > 0)) throw new RangeError('dispatch bench: --seconds must be > 0');
  if (out.warmup !== undefined && !(Number.isInteger(out.warmup) && out.warmup >= 0)) throw new RangeError('dispatch bench: --warmup must be an integer >= 0');
  return out;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  console.log(await runDispatchBench(parseArgs(process.argv.slice(2))));
}
