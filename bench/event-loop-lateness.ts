// Whether the controller's event loop stays responsive while a long data-parallel call runs: a 1 ms
// interval timer records how late each tick fires during calls that keep every worker busy for about
// `--call-ms` milliseconds (a chain of matrix products on each rank's rows), at several worker counts.
// Lateness near 0 means the controller never blocks while it waits for the workers. Also prints the
// same timer's lateness with no call running, as the baseline of this machine.
// Usage: node dist/bench/event-loop-lateness.js [counts, e.g. 1,8,16] [--calls 10] [--call-ms 200]
import os from 'node:os';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { lateness, quantile } from './_lateness.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const counts = (argv[0] && !argv[0].startsWith('--') ? argv[0] : `1,${Math.min(8, os.availableParallelism())},${os.availableParallelism()}`)
  .split(',').map(Number);
const calls = flag('--calls', 10);
const callMs = flag('--call-ms', 200);


const row = (label: string, late: number[]): string =>
  `| ${label} | ${late.length} | ${quantile(late, 0.5).toFixed(2)} | ${quantile(late, 0.99).toFixed(2)} | ${(late[late.length - 1] ?? NaN).toFixed(2)} |`;

console.log(`event-loop lateness of a 1 ms timer during long calls (${calls} calls of about ${callMs} ms each), ${os.availableParallelism()} cores`);
console.log('\n| workers | ticks | median ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|');
console.log(row('none (no call)', await lateness(() => new Promise((r) => setTimeout(r, 500)))));
for (const n of counts) {
  await synk.fork({ n });
  const x = T.matrix('x');
  const w = T.shared(T.NDArray.full([256, 256], 1 / 256, 'float32'), { name: 'w' });
  // Enough products per rank to take about callMs: calibrated with one timed call below.
  let depth = 8;
  let h: T.Variable = x;
  for (let k = 0; k < depth; k++) h = T.tanh(T.dot(h, w));
  let f = synk.fn({ inputs: [x], outputs: [[T.sum(h), 'sum']] });
  const xs = synk.data(T.NDArray.full([512 * n, 256], 0.5, 'float32'), { name: 'x' });
  await f(xs);
  const t0 = performance.now();
  await f(xs);
  const one = performance.now() - t0;
  depth = Math.max(1, Math.round((depth * callMs) / Math.max(1, one)));
  h = x;
  for (let k = 0; k < depth; k++) h = T.tanh(T.dot(h, w));
  f = synk.fn({ inputs: [x], outputs: [[T.sum(h), 'sum']] });
  await f(xs);
  const t1 = performance.now();
  const late = await lateness(async () => {
    for (let i = 0; i < calls; i++) await f(xs);
  });
  const perCall = (performance.now() - t1) / calls;
  console.log(row(`${n} (${perCall.toFixed(0)} ms a call)`, late));
  await synk.close();
}
