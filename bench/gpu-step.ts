// Where one GPU training step's time goes, in this thread on a CudaDevice (no worker, no dispatch):
// the MLP 784-H-H-10 with Adam on data resident on the GPU, as
//   flat:      gradient into the flat vector, then the update (two programs: today's multi-rank recipe)
//   one:       gradient and update as one program straight from the gradients (what one rank runs)
//   one, pipelined: the same with the loss not read, N steps queued, one wait at the end: the step's
//              GPU time when the host keeps ahead, or the host's time per step when it does not.
// Usage: node dist/bench/gpu-step.js [--batches 512,8192] [--steps 30] [--hidden 2048] [--precision highest|high|medium]
import { Command } from 'commander';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { CudaDevice, cudaAvailable } from '../src/devices/cuda/index.js';
import { profileTable, resetProfile } from '../src/devices/cuda/profile.js';
import * as synk from '../src/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';

const o = new Command().name('bench-gpu-step')
  .option('--batches <list>', 'batch sizes', (v) => v.split(',').map(Number), [512, 8192])
  .option('--steps <n>', 'timed steps', (v) => Number(v), 30)
  .option('--hidden <n>', 'hidden units per layer', (v) => Number(v), 2048)
  .option('--precision <p>', "'highest', 'high' (TF32) or 'medium' (bf16 operands)", 'highest')
  .option('--worker', 'also time the one-program step as a synk.fn on one GPU worker (the dispatch and the worker\'s own work)')
  .option('--profile', 'per-op table of the one-program step after warm-up (needs SYNK_CUDA_PROFILE=1: every op waits)')
  .parse()
  .opts<{ batches: number[]; steps: number; hidden: number; precision: 'highest' | 'high' | 'medium'; profile?: boolean; worker?: boolean }>();

const ok = cudaAvailable();
if (!ok.ok) {
  console.log(`no CUDA device: ${ok.reason}`);
  process.exit(0);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const device = new CudaDevice({ matmulPrecision: o.precision });
const H = o.hidden;
console.log(`MLP 784-${H}-${H}-10, Adam, ${device.name}, matmulPrecision ${o.precision}; median of ${o.steps} steps`);
for (const batch of o.batches) {
  const rng = new X.Rng(1);
  const images = new T.NDArray('float32', [batch, 784]);
  for (let i = 0; i < images.size; i++) images.data[i] = rng.next();
  const labels = new T.NDArray('int32', [batch]);
  for (let i = 0; i < batch; i++) labels.data[i] = rng.int(10);
  const x = T.shared(images, { name: 'x' });
  const y = T.shared(labels, { name: 'y' });
  const net = X.sequential(X.dense(784, H, { activation: 'relu', rng: rng.fork() }), X.dense(H, H, { activation: 'relu', rng: rng.fork() }),
    X.dense(H, 10, { rng: rng.fork() }));
  const loss = X.crossEntropy(net.apply(x), y);
  const opt = X.makeOptimizer('adam', net.params, { loss }, { learningRate: 1e-4 });
  const gradFn = T.fn({ outputs: loss, updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]), device });
  const updateFn = T.fn({ updates: opt.paramUpdates, device });
  const one = T.fn({ outputs: loss, updates: opt.directUpdates!, device });
  const oneQuiet = T.fn({ updates: opt.directUpdates!, device });
  // The worker's path: the batch as inputs, taken on the device from resident data each step (batchS).
  const xi = T.matrix('xi');
  const yi = T.vector('yi', 'int32');
  const lossIn = X.crossEntropy(net.apply(xi), yi);
  const optIn = X.makeOptimizer('adam', net.params, { loss: lossIn }, { learningRate: 1e-4 });
  const oneIn = T.fn({ inputs: [xi, yi], outputs: lossIn, updates: optIn.directUpdates!, device });
  const xDev = device.upload(images);
  const yDev = device.upload(labels);
  const time = (step: () => void, reps = o.steps): number => {
    for (let i = 0; i < 3; i++) step();
    device.synchronize();
    const ts: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      step();
      ts.push(performance.now() - t0);
    }
    return median(ts);
  };
  if (o.profile) {
    for (let i = 0; i < 3; i++) (one() as T.NDArray).item();
    resetProfile();
    for (let i = 0; i < o.steps; i++) (one() as T.NDArray).item();
    console.log(`batch ${batch}, one program, ${o.steps} steps:${profileTable()}`);
    resetProfile();
    continue;
  }
  const flatMs = time(() => { (gradFn() as T.NDArray).item(); updateFn(); device.synchronize(); });
  const oneMs = time(() => (one() as T.NDArray).item());
  // Host time to queue one step (no wait), and the pipelined rate.
  const enqueueMs = time(() => oneQuiet());
  device.synchronize();
  const t0 = performance.now();
  for (let i = 0; i < o.steps; i++) oneQuiet();
  device.synchronize();
  const pipelinedMs = (performance.now() - t0) / o.steps;
  if (o.worker) {
    await registerBuiltinDevices();
    await synk.fork({ n: 1, devices: 'cuda', matmulPrecision: o.precision });
    const remote = synk.fn({ outputs: [[loss, 'avg']], updates: opt.directUpdates! });
    for (let i = 0; i < 3; i++) await remote();
    const ts: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t1 = performance.now();
      (await remote())[0].item();
      ts.push(performance.now() - t1);
    }
    console.log(`batch ${batch}: one program on a GPU worker through synk.fn ${median(ts).toFixed(2)} ms`);
    await synk.close();
  }
  const runIn = (xs: T.DeviceArray, ys: T.DeviceArray): number => {
    const { outputs, updates } = oneIn.compiled.evaluate([xs, ys]);
    oneIn.compiled.applyUpdates(updates);
    return outputs[0]!.item();
  };
  const takenMs = time(() => {
    const xs = device.takeRows(xDev, { start: 0, stop: batch });
    const ys = device.takeRows(yDev, { start: 0, stop: batch });
    runIn(xs, ys);
    device.free(xs);
    device.free(ys);
  });
  const residentMs = time(() => runIn(xDev, yDev));
  console.log(`batch ${batch}: the batch as inputs: rows taken on the device ${takenMs.toFixed(2)} ms, `
    + `the resident arrays themselves ${residentMs.toFixed(2)} ms`);
  device.free(xDev);
  device.free(yDev);
  console.log(`batch ${batch}: flat ${flatMs.toFixed(2)} ms, one program ${oneMs.toFixed(2)} ms (queueing ${enqueueMs.toFixed(2)} ms of host time), `
    + `pipelined ${pipelinedMs.toFixed(2)} ms/step`);
}
device.close();
