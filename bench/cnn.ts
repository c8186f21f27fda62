// Training throughput of a convolutional network: examples/train-mnist-cnn.ts's model
// (conv5x5(16)-relu-maxpool2-conv5x5(32)-relu-maxpool2-flatten-dense(1568 -> 128, relu)-dropout(0.25)-dense(10),
// cross-entropy) with Adam lr 1e-3 through makeTrainFunction, in train mode (dropout on), on random
// (n, 1, 28, 28) images in shared memory, at batch 128 and 1024, for each worker count asked. Prints
// the median time per step, samples/s and where a step's time goes. The same model in PyTorch:
// bench/cnn_torch.py (run it on the same machine to compare).
// Usage: node dist/bench/cnn.js [--workers 1,2,4,8,16] [--batches 128,1024] [--steps 20] [--devices cpu] [--json out.json]
import os from 'node:os';
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';
import { type TrainTiming, timeTrainSteps, timingLine, timingTable } from './_train-timing.js';

const list = (v: string): number[] => v.split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a comma-separated list of positive integers, got ${JSON.stringify(v)}`);
  return n;
});
const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
};
const o = new Command().name('bench-cnn')
  .description("Time per training step of train-mnist-cnn's network with Adam through makeTrainFunction.")
  .option('--workers <list>', 'worker counts to measure', list, [os.availableParallelism()])
  .option('--batches <list>', 'batch sizes (images per step over all workers)', list, [128, 1024])
  .option('--steps <n>', 'timed steps per configuration (after 3 warm-up steps)', positive, 20)
  .option('--devices <kind>', "'cpu', 'auto', 'cuda' or 'reference'", 'cpu')
  .option('--json <file>', 'also write the results as JSON')
  .parse()
  .opts<{ workers: number[]; batches: number[]; steps: number; devices: 'cpu' | 'auto' | 'cuda' | 'reference'; json?: string }>();



await registerBuiltinDevices();
const [c1, c2, hidden, dropout, lr, seed] = [16, 32, 128, 0.25, 1e-3, 3];
const maxBatch = Math.max(...o.batches);
// Random images and labels, once, in shared memory: the arithmetic does not depend on the values.
const rng = new X.Rng(1);
const images = new T.NDArray('float32', [maxBatch, 1, 28, 28]);
for (let i = 0; i < images.size; i++) images.data[i] = rng.next();
const labels = new T.NDArray('int32', [maxBatch]);
for (let i = 0; i < maxBatch; i++) labels.data[i] = rng.int(10);
const xs = synk.data(images, { name: 'x' });
const ys = synk.data(labels, { name: 'y' });

// Exactly examples/train-mnist-cnn.ts's network and training function.
const net = X.sequential(
  X.conv2dLayer(1, c1, 5, { padding: 2, activation: 'relu', rng: rng.fork() }), X.maxPool(2),
  X.conv2dLayer(c1, c2, 5, { padding: 2, activation: 'relu', rng: rng.fork() }), X.maxPool(2),
  X.flatten(), X.dense(c2 * 7 * 7, hidden, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dropout(dropout, { seed }),
  X.dense(hidden, 10, { rng: rng.fork() }),
);
const x = T.tensor4('x');
const y = T.vector('y', 'int32');
const train = X.makeTrainFunction(X.crossEntropy(net.apply(x, X.trainMode()), y), net.params, [x, y], 'adam', { learningRate: lr });
const nParams = net.params.reduce((s, p) => s + p.getValue({ borrow: true }).size, 0);
const model = `conv5x5(${c1})-pool-conv5x5(${c2})-pool-dense(${hidden})-dropout(${dropout})-10`;
console.log(`CNN ${model} (${(nParams / 1e3).toFixed(1)} k parameters), Adam lr ${lr}, train mode; devices '${o.devices}' `
  + `on ${os.availableParallelism()} cores; data from Data in shared memory; ${o.steps} timed steps`);

const results: TrainTiming[] = [];
for (const workers of o.workers) {
  await synk.fork({ n: workers, devices: o.devices });
  for (const batch of o.batches) {
    if (batch < workers) throw new RangeError(`batch ${batch} is smaller than ${workers} workers: every worker needs at least one image`);
    const r = await timeTrainSteps(train, [xs, ys, { batch }], workers, batch, o.steps);
    results.push(r);
    console.log(timingLine(train, r));
  }
  await synk.close();
}

console.log(timingTable(results));
if (o.json) {
  const report = { model, optimizer: 'adam', learningRate: lr, devices: o.devices, cores: os.availableParallelism(), results };
  writeFileSync(o.json, JSON.stringify(report, null, 2));
}
