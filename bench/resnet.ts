// ResNet training throughput: torchvision's ResNet-50 or ResNet-18 (X.resnet50 / X.resnet18, batch
// norm in train mode, cross-entropy) through makeTrainFunction with SGD momentum 0.9 (lr 0.1) or Adam
// (lr 1e-3), on generated ImageNet-shaped data (X.makeImageNetLike: 3x224x224 float32, 1000 classes),
// at batch 64, 128 and 256 (images per step over all workers), for each float32 matrix-product
// precision asked (fork's matmulPrecision: 'highest' float32, 'high' TF32, 'medium' bf16 operands).
// Prints the median time per step, images/s, where a step's time goes, and on CUDA the peak device
// memory in use (nvidia-smi polled every 100 ms: the whole process, its context and cached pools,
// comparable to torch.cuda.max_memory_reserved plus the context). The same networks in PyTorch:
// bench/resnet_torch.py; bench/device-resnet.sh runs both and bench/resnet-table.ts prints one table.
// Usage: node dist/bench/resnet.js [--model resnet50|resnet18] [--batches 64,128,256] [--size 224] [--steps 20]
//          [--devices cuda|cpu|reference|auto] [--workers N] [--precision highest,high,medium] [--optimizer momentum|adam]
//          [--data device|host] [--width 64] [--stem imagenet|small] [--classes 1000] [--json out.json]
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';
import { type TrainTiming, timeTrainSteps, timingLine } from './_train-timing.js';

const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
};
const list = (v: string): number[] => v.split(',').map(positive);
const PRECISIONS = ['highest', 'high', 'medium', 'bf16'] as const;
type Precision = (typeof PRECISIONS)[number];
const precisions = (v: string): Precision[] => v.split(',').map((p) => {
  if (!(PRECISIONS as readonly string[]).includes(p))
    throw new Error(`--precision: expected a comma-separated list of ${PRECISIONS.join(', ')}, got ${JSON.stringify(v)}`);
  return p as Precision;
});
const o = new Command().name('bench-resnet')
  .description('Images/s of a ResNet-50 or ResNet-18 training step through makeTrainFunction on generated ImageNet-shaped data.')
  .addOption(new Option('--model <name>', 'network').choices(['resnet50', 'resnet18']).default('resnet50'))
  .option('--batches <list>', 'batch sizes (images per step over all workers)', list, [64, 128, 256])
  .option('--size <n>', 'side of the square images', positive, 224)
  .option('--steps <n>', 'timed steps per configuration (after 3 warm-up steps)', positive, 20)
  .addOption(new Option('--devices <kind>', 'worker devices').choices(['cuda', 'cpu', 'reference', 'auto']).default('cuda'))
  .option('--workers <n>', 'workers (default: 1 on cuda, one per core on cpu)', positive)
  .option('--precision <list>', "one fork each: 'highest' (float32), 'high' (TF32), 'medium' (bf16 matmul operands), "
    + "'bf16' (the bf16 policy on TF32 devices: products and convolutions on bf16 operands, as torch.autocast)",
    precisions, ['highest'])
  .addOption(new Option('--optimizer <rule>', "'momentum' (SGD momentum 0.9, lr 0.1) or 'adam' (lr 1e-3)").choices(['momentum', 'adam']).default('momentum'))
  .addOption(new Option('--data <where>', "'device': images scattered once into sliceable shared variables (on a GPU, resident there, as "
    + "resnet_torch.py keeps them), batchS picks each step's rows; 'host': each step's batch comes from Data in shared memory")
    .choices(['device', 'host']).default('device'))
  .option('--width <n>', 'channels of the first layer (64 is torchvision)', positive, 64)
  .addOption(new Option('--stem <kind>', "'imagenet' (7x7/2 + max pool) or 'small' (3x3/1)").choices(['imagenet', 'small']).default('imagenet'))
  .option('--classes <n>', 'classes', positive, 1000)
  .option('--json <file>', 'also write the results as JSON')
  .option('--cudnn-benchmark', "CUDA: cuDNN's algorithms chosen by timing (as torch.backends.cudnn.benchmark, which resnet_torch.py sets)")
  .parse()
  .opts<{
    model: 'resnet50' | 'resnet18'; batches: number[]; size: number; steps: number; devices: 'cuda' | 'cpu' | 'reference' | 'auto'; workers?: number;
    precision: Precision[]; optimizer: 'momentum' | 'adam'; data: 'device' | 'host'; width: number; stem: X.ResNetStem; classes: number; json?: string;
    cudnnBenchmark?: boolean;
  }>();

/** Peak GPU memory in use (MiB, the largest of any GPU) from nvidia-smi polled in the background; null where there is none. */
class MemoryPoller {
  private peak = 0;
  private child: ChildProcess | null = null;
  start(): boolean {
    try {
      this.child = spawn('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-lms', '100'], { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return false;
    }
    this.child.on('error', () => { this.child = null; });
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      // One line per GPU per sample; the driver reports every GPU of the machine.
      for (const l of lines) if (Number.isFinite(Number(l))) this.peak = Math.max(this.peak, Number(l));
    });
    return true;
  }
  /** The largest sample since the last reset (MiB), or null without nvidia-smi. */
  take(): number | null {
    const p = this.child ? this.peak : null;
    this.peak = 0;
    return p;
  }
  stop(): void {
    this.child?.kill();
  }
}

await registerBuiltinDevices();
const workers = o.workers ?? (o.devices === 'cpu' ? os.availableParallelism() : 1);
const maxBatch = Math.max(...o.batches);
for (const b of o.batches) if (b < workers) throw new RangeError(`batch ${b} is smaller than ${workers} workers: every worker needs at least one image`);
const t0 = performance.now();
const set = X.makeImageNetLike({ rows: maxBatch, size: o.size, classes: o.classes, seed: 1 });
const make = o.model === 'resnet50' ? X.resnet50 : X.resnet18;
const hyper = o.optimizer === 'momentum' ? { learningRate: 0.1, momentum: 0.9 } : { learningRate: 1e-3 };
const onDevice = o.data === 'device';
/** A network and its training step under one precision policy (a parameter belongs to one training function, so each policy has its own). */
function buildStep(policy: 'fp32' | 'bf16'): { net: X.ResNet; train: X.TrainFunction; sharedX: T.SharedVariable; sharedY: T.SharedVariable } {
  const net = make({ numClasses: o.classes, width: o.width, stem: o.stem, seed: 2 });
  const mode = X.trainMode();
  // --data device: the images live in sliceable shared variables (on the workers' devices), selected by batchS.
  const sharedX = T.shared(new T.NDArray('float32', [0, 3, o.size, o.size]), { name: 'images' });
  const sharedY = T.shared(new T.NDArray('int32', [0]), { name: 'labels' });
  const x = T.tensor4('x');
  const y = T.vector('y', 'int32');
  const loss = onDevice ? X.crossEntropy(net.apply(sharedX, mode), sharedY) : X.crossEntropy(net.apply(x, mode), y);
  const train = X.makeTrainFunction(loss, net.params, onDevice ? [] : [x, y], o.optimizer, {
    ...hyper, updates: mode.updates, precision: policy, ...(onDevice ? { sliceableShareds: [sharedX, sharedY] } : {}),
  });
  return { net, train, sharedX, sharedY };
}
// Made before the fork that distributes them (the bf16 policy is a compile-time rewrite).
const steps = new Map((['fp32', 'bf16'] as const).filter((p) => o.precision.some((q) => (q === 'bf16') === (p === 'bf16'))).map((p) => [p, buildStep(p)]));
const net = [...steps.values()][0]!.net;
const name = `${o.model}${o.width === 64 ? '' : ` width ${o.width}`}${o.stem === 'small' ? ' small stem' : ''}`;
console.log(`${name}: ${(net.parameterCount() / 1e6).toFixed(3)} M parameters, ${o.optimizer === 'momentum' ? 'SGD momentum 0.9 lr 0.1' : 'Adam lr 1e-3'}, `
  + `batch norm in train mode; ${maxBatch} generated ${o.size}x${o.size} images (${((performance.now() - t0) / 1000).toFixed(1)} s to build); `
  + `${workers} ${o.devices} worker(s) on ${os.availableParallelism()} cores; `
  + `data ${onDevice ? 'resident (sliceable shared, batchS)' : 'from host shared memory'}; `
  + `${o.steps} timed steps`);

interface Row extends TrainTiming { precision: Precision; peakMiB: number | null }
const results: Row[] = [];
/** Written after every configuration, so a run cut short by its time limit still leaves the rows it measured. */
function writeJson(): void {
  if (!o.json) return;
  const report = {
    framework: 'synkhronos', model: o.model, width: o.width, stem: o.stem, size: o.size, classes: o.classes, optimizer: o.optimizer, data: o.data,
    devices: o.devices, cores: os.availableParallelism(), results,
  };
  writeFileSync(o.json, JSON.stringify(report, null, 2));
}
const poller = new MemoryPoller();
const polling = o.devices === 'cuda' && poller.start();
const xs = onDevice ? null : synk.data(set.x, { name: 'images' });
const ys = onDevice ? null : synk.data(set.y, { name: 'labels' });
try {
  for (const precision of o.precision) {
    const { train, sharedX, sharedY } = steps.get(precision === 'bf16' ? 'bf16' : 'fp32')!;
    const devices = o.devices === 'cuda' && o.cudnnBenchmark
      ? Array.from({ length: workers }, (_, index) => ({ kind: 'cuda' as const, index, cudnnBenchmark: true }))
      : o.devices;
    await synk.fork({ n: workers, devices, matmulPrecision: precision === 'bf16' ? 'high' : precision });
    if (onDevice) { await synk.scatter(sharedX, set.x); await synk.scatter(sharedY, set.y); }
    for (const batch of o.batches) {
      poller.take();
      const perRank = Math.floor(batch / workers);
      const args: unknown[] = onDevice ? [{ batchS: { start: 0, stop: perRank } }] : [xs, ys, { batch }];
      // With resident data every worker takes perRank rows; the images of a step are those.
      const r = await timeTrainSteps(train, args, workers, onDevice ? perRank * workers : batch, o.steps);
      const peakMiB = polling ? poller.take() : null;
      results.push({ ...r, precision, peakMiB });
      writeJson();
      console.log(`precision ${precision}: ${timingLine(train, r)}${peakMiB === null ? '' : `; peak GPU memory ${(peakMiB / 1024).toFixed(1)} GiB`}`);
    }
    await synk.close();
  }
} finally {
  poller.stop();
  // A failed configuration still ends the workers, so the process exits with the error.
  if (synk.isForked()) await synk.close();
}

console.log(['', `| model | devices | workers | precision | batch | ms/step | images/s | peak GPU GiB |`, '|---|---|---:|---|---:|---:|---:|---:|',
  ...results.map((r) => `| ${name} | ${o.devices} | ${r.workers} | ${r.precision} | ${r.batch} | ${r.msPerStep.toFixed(1)} | `
    + `${r.samplesPerSecond.toFixed(1)} | `
    + `${r.peakMiB === null ? '' : (r.peakMiB / 1024).toFixed(1)} |`)].join('\n'));
