// The column split against the row split, step for step in one process: the MLP 784-H-H-10 with Adam
// through makeTrainFunction on CPU workers, two training functions (columnSplit 'off' and 'on') on the
// same fork and the same rows, their steps interleaved so that both see the same machine load (the dev
// machine is shared). Prints the median ms per step of each and rank 0's gradient / reduce (the split's
// GEMMs included) / update. bench/train.ts --column-split on|off times one of them alone.
// Usage: node dist/bench/column-split.js [--workers 2] [--batches 32,64,128,256,512] [--steps 10] [--hidden 2048]
import os from 'node:os';
import { Command } from 'commander';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';
import { median } from './_train-timing.js';

const list = (v: string): number[] => v.split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a comma-separated list of positive integers, got ${JSON.stringify(v)}`);
  return n;
});
const o = new Command().name('bench-column-split')
  .description('The column split against the row split of the shared-state step, interleaved in one process.')
  .option('--workers <n>', 'CPU workers', (v) => Number(v), Math.min(2, os.availableParallelism()))
  .option('--batches <list>', 'batch sizes (rows per step over all workers)', list, [32, 64, 128, 256, 512])
  .option('--steps <n>', 'timed steps of each function per batch (after 3 warm-up steps each)', (v) => Number(v), 10)
  .option('--hidden <n>', 'hidden units per layer', (v) => Number(v), 2048)
  .parse()
  .opts<{ workers: number; batches: number[]; steps: number; hidden: number }>();

await registerBuiltinDevices();
const H = o.hidden;
const maxBatch = Math.max(...o.batches);
const rng = new X.Rng(1);
const images = new T.NDArray('float32', [maxBatch, 784]);
for (let i = 0; i < images.size; i++) images.data[i] = rng.next();
const labels = new T.NDArray('int32', [maxBatch]);
for (let i = 0; i < maxBatch; i++) labels.data[i] = rng.int(10);
const xs = synk.data(images, { name: 'x' });
const ys = synk.data(labels, { name: 'y' });
const trainFor = (columnSplit: 'on' | 'off') => {
  const seed = new X.Rng(2);
  const net = X.sequential(
    X.dense(784, H, { activation: 'relu', rng: seed.fork() }),
    X.dense(H, H, { activation: 'relu', rng: seed.fork() }),
    X.dense(H, 10, { rng: seed.fork() }),
  );
  const x = T.matrix('x');
  const y = T.vector('y', 'int32');
  const loss = X.crossEntropy(net.apply(x), y);
  return X.makeTrainFunction(loss, net.params, [x, y], 'adam', { learningRate: 1e-4, columnSplit, name: `split ${columnSplit}` });
};
const trains = { off: trainFor('off'), on: trainFor('on') };
await synk.fork({ n: o.workers, devices: 'cpu' });
console.log(`MLP 784-${H}-${H}-10, Adam, ${o.workers} CPU workers on ${os.availableParallelism()} cores, load average ${os.loadavg()[0]!.toFixed(1)}`);
console.log('| batch | rows per rank | row split ms/step | column split ms/step | ratio | ' +
  'row: gradient / reduce / update ms | column: gradient / reduce / update ms |');
console.log('|---:|---:|---:|---:|---:|---|---|');
for (const batch of o.batches) {
  const ms = { off: [] as number[], on: [] as number[] };
  const parts = { off: [] as number[][], on: [] as number[][] };
  for (let i = 0; i < 3 + o.steps; i++) {
    for (const mode of ['off', 'on'] as const) {
      const t0 = performance.now();
      await trains[mode](xs, ys, { batch });
      if (i < 3) continue;
      ms[mode].push(performance.now() - t0);
      const t = trains[mode].timings()!;
      parts[mode].push([t.gradientMs, t.reduceMs, t.updateMs]);
    }
  }
  const med = (mode: 'off' | 'on') => median(ms[mode]);
  const split = (mode: 'off' | 'on') => [0, 1, 2].map((k) => median(parts[mode].map((p) => p[k]!)).toFixed(1)).join(' / ');
  const [off, on] = [med('off'), med('on')];
  console.log(`| ${batch} | ${Math.ceil(batch / o.workers)} | ${off.toFixed(1)} | ${on.toFixed(1)} | ${(on / off).toFixed(2)} | ` +
    `${split('off')} | ${split('on')} |`);
}
await synk.close();
