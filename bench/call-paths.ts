// What one synk.fn call costs on each of its paths, with the same trivial work (the sum of 16x4 rows):
//   data:    the rows from a Data (the control block's fast path);
//   batchS:  the rows of a sliceable shared variable picked with batchS (a training step with --data shared);
//   batchS + update: the same, also updating a small shared variable every call (as a step updates parameters);
//   batchS list: batchS as an index list.
// Median microseconds per call (and p10 / p90) after warm-up, at each worker count.
// Usage: node dist/bench/call-paths.js [--workers 1,2] [--seconds 1] [--devices cpu|cuda]
import { Command } from 'commander';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';

const o = new Command().name('bench-call-paths')
  .option('--workers <list>', 'worker counts', (v) => v.split(',').map(Number), [1, 2])
  .option('--seconds <s>', 'least time timing each path', (v) => Number(v), 1)
  .option('--devices <kind>', "'cpu' or 'cuda'", 'cpu')
  .parse()
  .opts<{ workers: number[]; seconds: number; devices: 'cpu' | 'cuda' }>();

await registerBuiltinDevices();
const ROWS = 16;
const full = T.NDArray.full([ROWS, 4], 1, 'float32');
const x = T.matrix('x');
const sx = T.shared(new T.NDArray('float32', [0, 4]), { name: 'sx' });
const w = T.shared(T.NDArray.full([4], 0, 'float32'), { name: 'w' });
const fData = synk.fn({ inputs: [x], outputs: [[x.sum(), 'sum']] });
const fSliced = synk.fn({ outputs: [[sx.sum(), 'sum']], sliceableShareds: [sx] });
const fStep = synk.fn({ outputs: [[sx.sum(), 'sum']], updates: [[w, T.add(w, sx.sum(0))]], sliceableShareds: [sx] });

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
async function time(call: () => Promise<unknown>): Promise<string> {
  for (let i = 0; i < 200; i++) await call();
  const ts: number[] = [];
  const start = performance.now();
  while (ts.length < 300 || (performance.now() - start < o.seconds * 1000 && ts.length < 50_000)) {
    const t0 = performance.now();
    await call();
    ts.push((performance.now() - t0) * 1000);
  }
  const s = ts.sort((a, b) => a - b);
  return `${quantile(s, 0.5).toFixed(0)} us (p10 ${quantile(s, 0.1).toFixed(0)}, p90 ${quantile(s, 0.9).toFixed(0)}, ${ts.length} calls)`;
}

for (const n of o.workers) {
  await synk.fork({ n, devices: o.devices });
  const xs = synk.data(full, { name: 'x' });
  await synk.scatter(sx, T.NDArray.full([ROWS * n, 4], 1, 'float32'));
  const per = { start: 0, stop: ROWS };
  const list = Int32Array.from({ length: ROWS }, (_, i) => ROWS - 1 - i);
  const sum = async (r: Promise<unknown>): Promise<number> => ((await r) as T.NDArray[])[0]!.item();
  if ((await sum(fSliced({ batchS: per }))) !== ROWS * 4 * n) throw new Error('call-paths: the batchS sum is wrong');
  console.log(`${n} worker(s), ${o.devices}:`);
  console.log(`  data:             ${await time(() => sum(fData(xs)))}`);
  console.log(`  batchS:           ${await time(() => sum(fSliced({ batchS: per })))}`);
  console.log(`  batchS + update:  ${await time(() => sum(fStep({ batchS: per })))}`);
  console.log(`  batchS list:      ${await time(() => sum(fSliced({ batchS: list })))}`);
  await synk.close();
}
