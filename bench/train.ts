// Training throughput: the MLP 784-2048-2048-10 (ReLU, cross-entropy) with Adam through
// makeTrainFunction (gradient per worker into one flat vector, one all-reduce, update per worker),
// at batch 512 and 8192, for each worker count asked. Prints the median time per step, samples/s
// and where a step's time goes (gradient call, all-reduce, update call). The same model in PyTorch:
// bench/train_torch.py (run it on the same machine to compare).
// Usage: node dist/bench/train.js [--workers 1,2,4,8,16] [--batches 512,8192] [--steps 20] [--devices cpu] [--hidden 2048]
//        [--precision highest|high|medium|bf16] [--column-split auto|on|off] [--json out.json]
// Its peer under --precision bf16: python3 bench/train_torch.py --bf16 (torch.autocast(dtype=torch.bfloat16)).
import os from 'node:os';
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';
import { setSharedStepKernels } from '../src/parallel/shared-train.js';
import { type TrainTiming, timeTrainSteps, timingLine, timingTable } from './_train-timing.js';

const list = (v: string): number[] => v.split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a comma-separated list of positive integers, got ${JSON.stringify(v)}`);
  return n;
});
const o = new Command().name('bench-train')
  .description('Time per training step of the MLP 784-H-H-10 with Adam through makeTrainFunction.')
  .option('--workers <list>', 'worker counts to measure', list, [os.availableParallelism()])
  .option('--batches <list>', 'batch sizes (rows per step over all workers)', list, [512, 8192])
  .option('--steps <n>', 'timed steps per configuration (after 3 warm-up steps)', (v) => Number(v), 20)
  .option('--hidden <n>', 'hidden units per layer', (v) => Number(v), 2048)
  .option('--devices <kind>', "'cpu', 'auto', 'cuda' or 'reference'", 'cpu')
  .option(
    '--data <where>',
    "'host': batches come from Data in shared memory each step; 'shared': the data is scattered once into sliceable shared variables " +
      "(on a GPU, resident there) and batchS picks each step's rows",
    'host',
  )
  .option('--precision <p>', "'highest' (float32), 'high' (TF32), 'medium' (the device's bf16 matmul operands), or 'bf16': the function's " +
    "precision policy (bf16 operands for every product, as torch.autocast(dtype=torch.bfloat16); float32 master weights)", 'highest')
  .option('--update-kernels <k>', "CPU shared-state step: 'fast' (WebAssembly SIMD, float32), 'exact' (SIMD, float64 arithmetic), 'off' (JavaScript)", 'fast')
  .option('--column-split <mode>', "CPU shared-state step: weight gradients by the column split 'on', 'off', or 'auto' (the measured rule)", 'auto')
  .option('--step <how>', "'auto': the CPU workers' shared-state step where it applies; 'program': the rule as a function, so that CPU " +
    "workers run the step as a GPU worker does (one rank: gradient and update as one synk.fn program; more: three calls)", 'auto')
  .option('--json <file>', 'also write the results as JSON')
  .parse()
  .opts<{
    workers: number[];
    batches: number[];
    steps: number;
    hidden: number;
    devices: 'cpu' | 'auto' | 'cuda' | 'reference';
    data: 'host' | 'shared';
    precision: 'highest' | 'high' | 'medium' | 'bf16';
    updateKernels: 'fast' | 'exact' | 'off';
    columnSplit: 'auto' | 'on' | 'off';
    step: 'auto' | 'program';
    json?: string;
  }>();
if (o.data !== 'host' && o.data !== 'shared') throw new Error(`--data must be 'host' or 'shared', got ${JSON.stringify(o.data)}`);
if (o.step !== 'auto' && o.step !== 'program') throw new Error(`--step must be 'auto' or 'program', got ${JSON.stringify(o.step)}`);
if (!['highest', 'high', 'medium', 'bf16'].includes(o.precision)) throw new Error(`--precision must be highest, high, medium or bf16, got ${o.precision}`);
// 'bf16' is the function's policy (the device stays exact float32 for everything the policy leaves alone).
const policy = o.precision === 'bf16' ? 'bf16' : 'fp32';
if (!['auto', 'on', 'off'].includes(o.columnSplit)) throw new Error(`--column-split must be auto, on or off, got ${o.columnSplit}`);
const matmulPrecision = o.precision === 'bf16' ? 'highest' : o.precision;



setSharedStepKernels(o.updateKernels);
await registerBuiltinDevices();
const H = o.hidden;
const maxBatch = Math.max(...o.batches);
// Random inputs and labels, once, in shared memory.
const rng = new X.Rng(1);
const images = new T.NDArray('float32', [maxBatch, 784]);
for (let i = 0; i < images.size; i++) images.data[i] = rng.next();
const labels = new T.NDArray('int32', [maxBatch]);
for (let i = 0; i < maxBatch; i++) labels.data[i] = rng.int(10);
const xs = synk.data(images, { name: 'x' });
const ys = synk.data(labels, { name: 'y' });

const net = X.sequential(
  X.dense(784, H, { activation: 'relu', rng: rng.fork() }),
  X.dense(H, H, { activation: 'relu', rng: rng.fork() }),
  X.dense(H, 10, { rng: rng.fork() }),
);
const x = T.matrix('x');
const y = T.vector('y', 'int32');
// With --data shared the data lives in sliceable shared variables instead of inputs.
const sharedX = T.shared(new T.NDArray('float32', [0, 784]), { name: 'sharedX' });
const sharedY = T.shared(new T.NDArray('int32', [0]), { name: 'sharedY' });
// A rule given as a function has no fused shared-state step: CPU workers then take the GPU's path.
const rule: X.Rule = o.step === 'auto' ? 'adam' : (params, source) => X.adam(params, { ...source, learningRate: 1e-4 });
const hyper = o.step === 'auto' ? { learningRate: 1e-4 } : {};
const train = o.data === 'host'
  ? X.makeTrainFunction(X.crossEntropy(net.apply(x), y), net.params, [x, y], rule, { ...hyper, precision: policy, columnSplit: o.columnSplit })
  : X.makeTrainFunction(X.crossEntropy(net.apply(sharedX), sharedY), net.params, [], rule,
    { ...hyper, sliceableShareds: [sharedX, sharedY], precision: policy, columnSplit: o.columnSplit });
const nParams = net.params.reduce((s, p) => s + p.getValue({ borrow: true }).size, 0);
console.log(`MLP 784-${H}-${H}-10 (${(nParams / 1e6).toFixed(2)} M parameters), Adam; devices '${o.devices}' on ${os.availableParallelism()} cores; ` +
  `data from ${o.data === 'host' ? 'Data in shared memory' : 'sliceable shared variables (batchS)'}; precision ${o.precision}; ` +
  `column split ${o.columnSplit}; ${o.steps} timed steps`);

const results: TrainTiming[] = [];
for (const workers of o.workers) {
  await synk.fork({ n: workers, devices: o.devices, matmulPrecision });
  if (o.data === 'shared') { await synk.scatter(sharedX, images); await synk.scatter(sharedY, labels); }
  // Under an MPI launcher (one process per node) the batch is split over every worker of every node.
  const { globalWorkers: ranks, nodeRank, nodeCount } = synk.nodeInfo();
  for (const batch of o.batches) {
    // The same rows either way: this step's batch split over the workers.
    const perRank = Math.floor(batch / ranks);
    const args: unknown[] = o.data === 'host' ? [xs, ys, { batch }] : [{ batchS: { start: 0, stop: perRank } }];
    const r = await timeTrainSteps(train, args, ranks, batch, o.steps);
    results.push(r);
    if (nodeRank === 0) console.log(`${nodeCount > 1 ? `${nodeCount} nodes x ${workers} workers: ` : ''}${timingLine(train, r)}`);
  }
  await synk.close();
}

if (!process.env['OMPI_COMM_WORLD_RANK'] || process.env['OMPI_COMM_WORLD_RANK'] === '0') console.log(timingTable(results));
const report = {
  model: `784-${H}-${H}-10`, optimizer: 'adam', devices: o.devices, data: o.data, precision: o.precision, cores: os.availableParallelism(), results,
};
if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2));
