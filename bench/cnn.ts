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

interface Result { workers: number; batch: number; msPerStep: number; samplesPerSecond: number; gradMs: number; allReduceMs: number; updateMs: number }

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN; };

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

const results: Result[] = [];
for (const workers of o.workers) {
  await synk.fork({ n: workers, devices: o.devices });
  for (const batch of o.batches) {
    if (batch < workers) throw new RangeError(`batch ${batch} is smaller than ${workers} workers: every worker needs at least one image`);
    const step = () => train(xs, ys, { batch });
    for (let i = 0; i < 3; i++) await step();
    const total: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t0 = performance.now();
      await step();
      total.push(performance.now() - t0);
    }
    // Where the time goes. The shared-state step (CPU workers) reports rank 0's own timings of each
    // step; otherwise the three calls train makes are timed one by one.
    const parts = { grad: [] as number[], ar: [] as number[], upd: [] as number[] };
    for (let i = 0; i < Math.max(3, Math.floor(o.steps / 2)); i++) {
      if (workers === 1 && train.timings() === null) {
        // One rank runs gradient and update as one program: nothing to split.
        const t0 = performance.now();
        await step();
        parts.grad.push(performance.now() - t0); parts.ar.push(0); parts.upd.push(0);
        continue;
      }
      if (train.timings() !== null) {
        await step();
        const t = train.timings()!;
        parts.grad.push(t.gradientMs); parts.ar.push(t.waitMs); parts.upd.push(t.updateMs);
        continue;
      }
      const t0 = performance.now();
      await train.gradFn(xs, ys, { batch });
      const t1 = performance.now();
      if (workers > 1) await synk.allReduce(train.optimizer.flatGrad, { op: 'sum' });
      const t2 = performance.now();
      await train.updateFn();
      parts.grad.push(t1 - t0); parts.ar.push(t2 - t1); parts.upd.push(performance.now() - t2);
    }
    const ms = median(total);
    const r: Result = {
      workers, batch, msPerStep: ms, samplesPerSecond: (batch / ms) * 1000,
      gradMs: median(parts.grad), allReduceMs: median(parts.ar), updateMs: median(parts.upd),
    };
    results.push(r);
    const how = train.timings() !== null ? 'one shared-state dispatch; rank 0: gradient, wait at barrier, reduce + update'
      : workers === 1 ? 'one program: gradient and update, / - / -' : 'three calls: gradient, all-reduce, update';
    console.log(`workers ${workers}, batch ${batch}: ${ms.toFixed(1)} ms/step, ${Math.round(r.samplesPerSecond)} samples/s `
      + `(${how}: ${r.gradMs.toFixed(1)} / ${r.allReduceMs.toFixed(1)} / ${r.updateMs.toFixed(1)} ms; `
      + `dispatch and the rest ${(ms - r.gradMs - r.allReduceMs - r.updateMs).toFixed(1)} ms)`);
  }
  await synk.close();
}

console.log('\n| workers | batch | ms/step | samples/s | gradient ms | all-reduce ms | update ms |\n|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  console.log(`| ${r.workers} | ${r.batch} | ${r.msPerStep.toFixed(1)} | ${Math.round(r.samplesPerSecond)} | `
    + `${r.gradMs.toFixed(1)} | ${r.allReduceMs.toFixed(1)} | ${r.updateMs.toFixed(1)} |`);
}
if (o.json) {
  const report = { model, optimizer: 'adam', learningRate: lr, devices: o.devices, cores: os.availableParallelism(), results };
  writeFileSync(o.json, JSON.stringify(report, null, 2));
}
