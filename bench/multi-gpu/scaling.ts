// Multi-GPU scaling through the public runtime (issue #7): synk.fork with one CUDA worker per GPU
// (explicit device specs { kind: 'cuda', index: 0..k-1, tf32 } choose both the count and TF32), for
// k = 1, 2, 4, 8 (only counts this machine has). TF32 is allowed in every matrix product.
//   w1          mean(tanh(X . W1) . W2, axis 0), X 262144x1024 split by rows over the GPUs once
//               (synk.scatter into a shared variable, so each GPU keeps its rows resident), W1
//               1024x1024, W2 1024x256; the per-GPU means are averaged. Strong scaling.
//   mlp-weak    one training step of the MLP 784-2048-2048-10 (ReLU, cross-entropy, Adam 1e-4) through
//               makeTrainFunction, as bench/train.ts, with 8192 rows per GPU (global batch 8192 k).
//   mlp-strong  the same step with a fixed global batch of 8192 rows (8192 / k per GPU).
// Times are wall-clock medians of whole awaited calls from the controller (W1 returns its 256
// values to the controller; a training step returns the loss). Training rows come from shared
// memory (synk.data) and are uploaded by each worker every step. One JSON line per configuration
// ({"bench":"scaling","impl":"synk",...}) for bench/device-multigpu.sh; the PyTorch
// DistributedDataParallel peer is bench/multi-gpu/ddp_torch.py.
// Usage: node dist/bench/multi-gpu/scaling.js [--gpus 1,2,4,8] [--calls 10] [--steps 10]
//          [--per-gpu-batch 8192] [--strong-batch 8192] [--hidden 2048] [--no-w1] [--no-mlp] [--no-tf32]
import { Command } from 'commander';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import * as X from '../../src/extensions/index.js';
import { cudaAvailable } from '../../src/devices/cuda/ffi/driver.js';
import type { DeviceSpec } from '../../src/devices/create.js';

const list = (v: string): number[] => v.split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a comma-separated list of positive integers, got ${JSON.stringify(v)}`);
  return n;
});
const int = (v: string): number => list(v)[0]!;
const o = new Command().name('bench-multi-gpu-scaling')
  .description('W1 eval and the MLP training step on 1, 2, 4, 8 GPUs through synk.fork.')
  .option('--gpus <list>', 'GPU counts (those above the machine\'s count are skipped)', list, [1, 2, 4, 8])
  .option('--calls <n>', 'timed W1 calls per count (after 2 warm-up calls)', int, 10)
  .option('--steps <n>', 'timed training steps per configuration (after 3 warm-up steps)', int, 10)
  .option('--per-gpu-batch <n>', 'rows per GPU in the weak-scaling training step', int, 8192)
  .option('--strong-batch <n>', 'global rows in the strong-scaling training step', int, 8192)
  .option('--rows <n>', 'rows of X in W1', int, 262144)
  .option('--hidden <n>', 'hidden units per MLP layer', int, 2048)
  .option('--no-w1', 'skip W1')
  .option('--no-mlp', 'skip the training step')
  .option('--no-tf32', 'plain float32 matrix products')
  .option('--cpu-dry-run', 'CPU workers instead of GPUs: checks the script on a machine without a GPU (figures meaningless)')
  .parse()
  .opts<{
    gpus: number[];
    calls: number;
    steps: number;
    perGpuBatch: number;
    strongBatch: number;
    rows: number;
    hidden: number;
    w1: boolean;
    mlp: boolean;
    tf32: boolean;
    cpuDryRun?: boolean;
  }>();

const median = (xs: readonly number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN; };

/** Uniform values in [-scale, scale) from a xorshift (the generator of bench/cuda.ts). */
function randomF32(shape: number[], scale: number, seed: number): T.NDArray {
  const out = new T.NDArray('float32', shape);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.size; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out.data[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

interface Row { workload: string; gpus: number; globalBatch: number; ms: number; samplesPerSecond: number; extra: Record<string, number | string> }
const rows: Row[] = [];

function report(
  workload: string,
  gpus: number,
  globalBatch: number,
  iters: number,
  times: readonly number[],
  extra: Record<string, number | string> = {},
): void {
  const ms = median(times);
  const row: Row = { workload, gpus, globalBatch, ms, samplesPerSecond: (globalBatch / ms) * 1000, extra };
  rows.push(row);
  console.log(JSON.stringify({
    bench: 'scaling',
    impl: 'synk',
    workload,
    gpus,
    global_batch: globalBatch,
    per_gpu_batch: globalBatch / gpus,
    iters,
    ms,
    samples_per_s: row.samplesPerSecond,
    tf32: o.tf32,
    ...extra,
  }));
  const base = rows.find((r) => r.workload === workload && r.gpus === 1);
  const eff = base ? ` efficiency ${((row.samplesPerSecond / base.samplesPerSecond / gpus) * 100).toFixed(1)}% vs 1 GPU` : '';
  console.error(`  ${workload.padEnd(10)} ${gpus} GPU(s), batch ${globalBatch}: ${ms.toFixed(2)} ms, ${Math.round(row.samplesPerSecond)} samples/s${eff}`);
}

async function timeCalls(call: () => Promise<unknown>, warmup: number, n: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await call();
    times.push(performance.now() - t0);
  }
  return times;
}

process.env['NCCL_NVLS_ENABLE'] ??= '0'; // issue #7: NVLink multicast off, before NCCL loads anywhere
const found = o.cpuDryRun ? { ok: true as const, deviceCount: Math.max(...o.gpus) } : cudaAvailable();
if (!found.ok) {
  console.error(`scaling: no CUDA device is present here, nothing measured (${found.reason.split('\n')[0]})`);
  process.exit(1);
}
const counts = o.gpus.filter((k) => k <= found.deviceCount);
const skipped = o.gpus.filter((k) => k > found.deviceCount);
console.error(`scaling on ${found.deviceCount} GPU(s): counts ` +
  `${counts.join(', ')}${skipped.length ? ` (skipped, too few GPUs: ${skipped.join(', ')})` : ''}; TF32 ${o.tf32 ? 'on' : 'off'}; ` +
  `NCCL_NVLS_ENABLE=${process.env['NCCL_NVLS_ENABLE']}`);

// ---- W1: X split once by synk.scatter; the controller's first value is one row (cheap to send) ----
const D = 1024;
const xShard = T.shared(new T.NDArray('float32', [1, D]), { name: 'X shard' });
const w1 = T.shared(randomF32([D, D], 1 / 32, 2), { name: 'W1' });
const w2 = T.shared(randomF32([D, 256], 1 / 32, 3), { name: 'W2' });
const w1Fn = synk.fn({ outputs: [T.mean(T.dot(T.tanh(T.dot(xShard, w1)), w2), 0), 'avg'], name: 'W1' });
const xFull = o.w1 ? randomF32([o.rows, D], 1, 1) : null;

// ---- the MLP of bench/train.ts; rows for the largest global batch, once, in shared memory ----
const H = o.hidden;
const maxRows = Math.max(o.strongBatch, o.perGpuBatch * Math.max(1, ...counts));
const rng = new X.Rng(1);
const images = new T.NDArray('float32', [o.mlp ? maxRows : 1, 784]);
for (let i = 0; i < images.size; i++) images.data[i] = rng.next();
const labels = new T.NDArray('int32', [o.mlp ? maxRows : 1]);
for (let i = 0; i < labels.size; i++) labels.data[i] = rng.int(10);
const xs = synk.data(images, { name: 'x' });
const ys = synk.data(labels, { name: 'y' });
const net = X.sequential(
  X.dense(784, H, { activation: 'relu', rng: rng.fork() }),
  X.dense(H, H, { activation: 'relu', rng: rng.fork() }),
  X.dense(H, 10, { rng: rng.fork() }),
);
const x = T.matrix('x');
const y = T.vector('y', 'int32');
const train = X.makeTrainFunction(X.crossEntropy(net.apply(x), y), net.params, [x, y], 'adam', { learningRate: 1e-4 });

let w1First: T.NDArray | null = null;
for (const k of counts) {
  const devices: DeviceSpec[] = Array.from({ length: k }, (_, index) => (o.cpuDryRun ? { kind: 'cpu', threads: 1 } : { kind: 'cuda', index, tf32: o.tf32 }));
  try {
    const t0 = performance.now();
    await synk.fork({ devices });
    console.error(`${k} GPU worker(s) forked in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (xFull) {
      await synk.scatter(xShard, xFull);
      const times = await timeCalls(() => w1Fn(), 2, o.calls);
      const out = (await w1Fn()) as T.NDArray;
      w1First ??= out;
      let diff = 0;
      for (let i = 0; i < out.size; i++) diff = Math.max(diff, Math.abs(out.data[i]! - w1First.data[i]!));
      // Equal shards make the average of the per-GPU means the global mean (rows divisible by k).
      report('w1', k, o.rows, o.calls, times, { max_abs_diff_vs_first: diff, equal_shards: o.rows % k === 0 ? 'yes' : 'no' });
    }
    if (o.mlp) {
      for (const [workload, batch] of [['mlp-weak', o.perGpuBatch * k], ['mlp-strong', o.strongBatch]] as const) {
        if (batch < k) continue;
        const times = await timeCalls(() => train(xs, ys, { batch }), 3, o.steps);
        // Where a step's time goes: the three calls train makes, timed one by one.
        const parts = { grad: [] as number[], ar: [] as number[], upd: [] as number[] };
        for (let i = 0; i < Math.max(3, Math.floor(o.steps / 2)); i++) {
          const a = performance.now();
          await train.gradFn(xs, ys, { batch });
          const b = performance.now();
          await synk.allReduce(train.optimizer.flatGrad, { op: 'sum' });
          const c = performance.now();
          await train.updateFn();
          parts.grad.push(b - a); parts.ar.push(c - b); parts.upd.push(performance.now() - c);
        }
        report(workload, k, batch, o.steps, times, { grad_ms: median(parts.grad), allreduce_ms: median(parts.ar), update_ms: median(parts.upd) });
      }
    }
  } catch (e) {
    console.error(`${k} GPU(s): failed: ${e instanceof Error ? e.message : String(e)}`);
    console.log(JSON.stringify({ bench: 'scaling', impl: 'synk', gpus: k, error: e instanceof Error ? e.message : String(e) }));
  } finally {
    await synk.close();
    xShard.setValue(new T.NDArray('float32', [1, D])); // the next fork sends one row, then scatters
  }
}

console.error('\n| workload | GPUs | global batch | ms | samples/s | efficiency vs 1 GPU |\n|---|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const base = rows.find((b) => b.workload === r.workload && b.gpus === 1);
  const eff = base ? `${((r.samplesPerSecond / base.samplesPerSecond / r.gpus) * 100).toFixed(1)}%` : '-';
  console.error(`| ${r.workload} | ${r.gpus} | ${r.globalBatch} | ${r.ms.toFixed(2)} | ${Math.round(r.samplesPerSecond)} | ${eff} |`);
}
