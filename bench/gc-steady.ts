// Garbage collections in a steady-state training step on CPU workers: the MLP 784-H-H-10
// with Adam through makeTrainFunction; after warm-up steps, counts the collections V8 reports
// (--trace-gc, every thread: the controller and each worker) over the timed steps, by kind.
// The goal of issue #12: no fresh allocation and no collection in a steady-state step.
// Usage: node dist/bench/gc-steady.js [--workers 2] [--hidden 2048] [--batch 512] [--steps 20]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const workers = flag('--workers', 2);
const hidden = flag('--hidden', 2048);
const batch = flag('--batch', 512);
const steps = flag('--steps', 20);
const START = '--- gc-steady: timed steps begin';
const END = '--- gc-steady: timed steps end';

if (!argv.includes('--child')) {
  // The parent runs this file again under --trace-gc and reads what every thread's V8 printed.
  const run = spawnSync(process.execPath, ['--trace-gc', fileURLToPath(import.meta.url), ...argv, '--child'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const out = run.stdout ?? '';
  const timed = out.slice(out.indexOf(START), out.indexOf(END));
  const kinds = new Map<string, number>();
  for (const m of timed.matchAll(/ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact)[^\n]*/g)) kinds.set(m[1]!, (kinds.get(m[1]!) ?? 0) + 1);
  const perStep = out.match(/ms per step: ([0-9.]+)/)?.[1] ?? '?';
  console.log(`MLP 784-${hidden}-${hidden}-10, Adam, ${workers} CPU worker(s), batch ${batch}: ${steps} timed steps, ${perStep} ms per step`);
  console.log(`collections during the timed steps (all threads): ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
  if (run.status !== 0) console.log(`the run failed (status ${run.status}): ${(run.stderr ?? '').slice(-2000)}`);
  process.exit(run.status ?? 1);
}

const rng = new X.Rng(1);
const images = new T.NDArray('float32', [batch, 784]);
for (let i = 0; i < images.size; i++) images.data[i] = rng.next();
const labels = new T.NDArray('int32', [batch]);
for (let i = 0; i < batch; i++) labels.data[i] = rng.int(10);
const net = X.sequential(X.dense(784, hidden, { activation: 'relu', rng: rng.fork() }), X.dense(hidden, hidden, { activation: 'relu', rng: rng.fork() }),
  X.dense(hidden, 10, { rng: rng.fork() }));
const x = T.matrix('x');
const y = T.vector('y', 'int32');
const train = X.makeTrainFunction(X.crossEntropy(net.apply(x), y), net.params, [x, y], 'adam', { learningRate: 1e-4 });
await synk.fork({ n: workers, devices: 'cpu' });
const xs = synk.data(images);
const ys = synk.data(labels);
for (let i = 0; i < 5; i++) await train(xs, ys);
console.log(START);
const t0 = performance.now();
for (let i = 0; i < steps; i++) await train(xs, ys);
const ms = (performance.now() - t0) / steps;
console.log(END);
console.log(`ms per step: ${ms.toFixed(1)}`);
await synk.close();
