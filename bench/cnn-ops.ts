// Where one CPU rank's CNN step goes, op by op: the gradient of examples/train-mnist-cnn.ts's
// network (the model of bench/cnn.ts, train mode, dropout on) on one CPU device in this thread, with
// the device's profile on. Prints the median ms per op over the timed calls, the whole call, and the
// buffers allocated per call (pool, results, untracked: all 0 in a steady state). On a shared
// machine the minimum of the calls is the steadier figure to compare.
// With --model resnet18, torchvision's ResNet-18 (X.resnet18, batch norm in train mode) on
// --size x --size images of 3 channels, 1000 classes, instead.
// Usage: node dist/bench/cnn-ops.js [--batches 64,512] [--calls 10] [--model cnn|resnet18] [--size 224]
import * as T from '../src/tensor.js';
import { NDArray } from '../src/tensor/ndarray.js';
import { CpuDevice } from '../src/devices/cpu/cpu-device.js';
import { CompiledFunction, describeFunction } from '../src/run/function.js';
import type { CpuExecutable } from '../src/devices/cpu/executable.js';
import * as X from '../src/extensions/index.js';
import { median } from './_train-timing.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const batches = arg('batches', '64,512').split(',').map(Number);
const calls = Number(arg('calls', '10'));
const model = arg('model', 'cnn');
if (model !== 'cnn' && model !== 'resnet18') throw new Error(`--model: expected cnn or resnet18, got ${JSON.stringify(model)}`);
const size = model === 'cnn' ? 28 : Number(arg('size', '224'));
const [channels, classes] = model === 'cnn' ? [1, 10] : [3, 1000];
const rng = new X.Rng(1);
const net = model === 'resnet18' ? X.resnet18({ numClasses: classes, seed: 2 }) : X.sequential(
  X.conv2dLayer(1, 16, 5, { padding: 2, activation: 'relu', rng: rng.fork() }), X.maxPool(2),
  X.conv2dLayer(16, 32, 5, { padding: 2, activation: 'relu', rng: rng.fork() }), X.maxPool(2),
  X.flatten(), X.dense(32 * 7 * 7, 128, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dropout(0.25, { seed: 3 }),
  X.dense(128, 10, { rng: rng.fork() }),
);
const x = T.tensor4('x');
const y = T.vector('y', 'int32');
const loss = X.crossEntropy(net.apply(x, X.trainMode()), y);
const grads = T.grad(loss, net.params);
const device = new CpuDevice({ notice: false, profile: true });
const fn = new CompiledFunction(describeFunction({ inputs: [x, y], outputs: [loss, ...grads] }), device);
const program = fn.description.program;
const exe = device.compile(program) as CpuExecutable;

for (const batch of batches) {
  const images = new NDArray('float32', [batch, channels, size, size]);
  for (let i = 0; i < images.size; i++) images.data[i] = rng.next();
  const labels = new NDArray('int32', [batch]);
  for (let i = 0; i < batch; i++) labels.data[i] = rng.int(classes);
  const args = [images, labels, ...fn.shareds.map((s) => s.getValue({ borrow: true }))];
  for (let i = 0; i < 3; i++) exe.run(args);
  const before = exe.stats();
  const samples: Record<string, number>[] = [];
  const wall: number[] = [];
  for (let i = 0; i < calls; i++) {
    const p0 = exe.stats().profile;
    const t0 = performance.now();
    exe.run(args);
    wall.push(performance.now() - t0);
    const p1 = exe.stats().profile;
    samples.push(Object.fromEntries(Object.entries(p1).map(([k, v]) => [k, v - (p0[k] ?? 0)])));
  }
  const after = exe.stats();
  const ops = Object.keys(samples[0]!);
  const med = Object.fromEntries(ops.map((k) => [k, median(samples.map((s) => s[k] ?? 0))]));
  const least = Object.fromEntries(ops.map((k) => [k, Math.min(...samples.map((s) => s[k] ?? 0))]));
  const per = (a: number, b: number) => ((a - b) / calls).toFixed(1);
  const title = `${model === 'cnn' ? 'CNN' : `ResNet-18 ${size}x${size}`} gradient, batch ${batch}, one CPU device (${device.name})`;
  console.log(`\n${title}: ${median(wall).toFixed(2)} ms per call (median of ${calls}; min ${Math.min(...wall).toFixed(2)}); `
    + `allocations per call: pool ${per(after.poolAllocations, before.poolAllocations)}, `
    + `results ${per(after.resultAllocations, before.resultAllocations)}, untracked ${per(after.untrackedAllocations, before.untrackedAllocations)}`);
  for (const k of ops.filter((o) => med[o]! >= 0.005).sort((a, b) => med[b]! - med[a]!)) {
    console.log(`  ${med[k]!.toFixed(3).padStart(9)} ms  (min ${least[k]!.toFixed(3).padStart(8)})  ${k}`);
  }
}
