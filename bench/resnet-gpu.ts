// Where a ResNet training step on one GPU spends its time and memory, in this thread on a CudaDevice
// (no worker): the step of bench/resnet.ts (SGD momentum, batch norm in train mode, generated
// ImageNet-shaped data resident on the device) as one T.fn with updates. Per batch it prints the
// median time per step, the allocator's peak bytes in use (arrays alive at once) against the peak
// bytes held from the driver (in use plus cached, the graph's private pools included), and whether
// the step ran as a CUDA graph. With SYNK_CUDA_PROFILE=1 every op waits for the GPU and the per-op
// table is printed instead (graphs are off then).
// Usage: node dist/bench/resnet-gpu.js [--model resnet50|resnet18] [--batches 64,128,256] [--steps 10]
//          [--precision highest|high|medium] [--policy fp32|bf16]
import { Command, Option } from 'commander';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { CudaDevice, cudaAvailable } from '../src/devices/cuda/index.js';
import { profileMode, profileTable, resetProfile, profiling } from '../src/devices/cuda/profile.js';
import { cudnnWorkspaceLimit } from '../src/devices/cuda/cudnn-conv.js';
import { timedConfigLimit } from '../src/devices/cuda/cudnn-graph-conv.js';

const o = new Command().name('bench-resnet-gpu')
  .addOption(new Option('--model <name>', 'network').choices(['resnet50', 'resnet18']).default('resnet50'))
  .option('--batches <list>', 'batch sizes', (v) => v.split(',').map(Number), [64, 128, 256])
  .option('--steps <n>', 'timed steps', (v) => Number(v), 10)
  .addOption(new Option('--precision <p>', 'matmulPrecision').choices(['highest', 'high', 'medium']).default('high'))
  .addOption(new Option('--policy <p>', "the function's precision policy").choices(['fp32', 'bf16']).default('fp32'))
  .option('--cudnn-benchmark', "cuDNN's algorithms chosen by timing (as torch.backends.cudnn.benchmark)")
  .option('--workspace-mb <n>', 'the most workspace one cuDNN convolution may take (cudnnWorkspaceLimit)', (v) => Number(v))
  .option('--timed-configs <n>', 'with --cudnn-benchmark: the most engine configurations timed per convolution (default 24)', (v) => Number(v))
  .parse()
  .opts<{ model: 'resnet50' | 'resnet18'; batches: number[]; steps: number; precision: 'highest' | 'high' | 'medium'; policy: 'fp32' | 'bf16';
    workspaceMb?: number; cudnnBenchmark?: boolean; timedConfigs?: number }>();

const ok = cudaAvailable();
if (!ok.ok) {
  console.log(`no CUDA device: ${ok.reason}`);
  process.exit(0);
}
const GiB = 2 ** 30;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
if (o.workspaceMb !== undefined) cudnnWorkspaceLimit.bytes = o.workspaceMb * 2 ** 20;
if (o.timedConfigs !== undefined) timedConfigLimit.max = o.timedConfigs;
const device = new CudaDevice({ matmulPrecision: o.precision, cudnnBenchmark: o.cudnnBenchmark === true });
const allocator = device.context.allocator;
console.log(`${o.model}, SGD momentum, train-mode batch norm, ${device.name}, matmulPrecision ${o.precision}, policy ${o.policy}; `
  + `cuDNN ${o.cudnnBenchmark ? 'timed' : 'heuristic'} algorithms, workspace limit ${cudnnWorkspaceLimit.bytes / 2 ** 20} MiB; `
  + `median of ${o.steps} steps${profiling ? ` (SYNK_CUDA_PROFILE=${profileMode === 'gpu' ? 'gpu: events around every op' : '1: every op waits'})` : ''}`);
for (const batch of o.batches) {
  const set = X.makeImageNetLike({ rows: batch, size: 224, classes: 1000, seed: 1 });
  const net = (o.model === 'resnet50' ? X.resnet50 : X.resnet18)({ numClasses: 1000, seed: 2 });
  const mode = X.trainMode();
  const images = T.shared(set.x, { name: 'images' });
  const labels = T.shared(set.y, { name: 'labels' });
  const loss = X.crossEntropy(net.apply(images, mode), labels);
  const opt = X.makeOptimizer('momentum', net.params, { loss }, { learningRate: 0.1, momentum: 0.9 });
  const step = T.fn({ outputs: loss, updates: [...opt.directUpdates!, ...mode.updates], device, precision: o.policy });
  const warm = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    (step() as T.NDArray).item();
    warm.push(performance.now() - t0);
  }
  allocator.resetPeak();
  resetProfile();
  const ts: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const t0 = performance.now();
    (step() as T.NDArray).item();
    ts.push(performance.now() - t0);
  }
  const m = allocator.stats;
  const ms = median(ts);
  console.log(`batch ${batch}: ${ms.toFixed(1)} ms/step (${(batch / ms * 1000).toFixed(0)} images/s; warm-up ${warm.map((w) => w.toFixed(0)).join(', ')} ms); `
    + `memory peak in use ${(m.peakInUse / GiB).toFixed(2)} GiB, peak held from the driver ${(m.peakDriverHeld / GiB).toFixed(2)} GiB, `
    + `held now ${(m.driverHeld / GiB).toFixed(2)}, cached ${(m.cached / GiB).toFixed(2)}; driver allocations ${m.driverAllocs}`);
  if (profiling) console.log(profileTable());
  resetProfile();
  device.trim();
}
device.close();
