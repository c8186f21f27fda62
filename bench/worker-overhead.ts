// What running on a worker adds to a call: the same function (no inputs, an output averaged over ranks,
// one update) called in-process through T.fn and on one worker through synk.fn, median ms per call.
// Usage: node dist/bench/worker-overhead.js [--size 384] [--calls 200] [--devices cpu|cuda]
import { Command } from 'commander';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';
import { median } from './_train-timing.js';

const o = new Command().name('bench-worker-overhead')
  .option('--size <n>', 'the square matrices\' size', (v) => Number(v), 384)
  .option('--calls <n>', 'timed calls', (v) => Number(v), 200)
  .option('--devices <kind>', "'cpu' or 'cuda'", 'cpu')
  .parse()
  .opts<{ size: number; calls: number; devices: 'cpu' | 'cuda' }>();

await registerBuiltinDevices();
const n = o.size;
const fill = (v: number): T.NDArray => { const a = new T.NDArray('float32', [n, n]); a.data.fill(v); return a; };
const W = T.shared(fill(0.001), { name: 'W' });
const X = T.shared(fill(0.01), { name: 'X' });
const y = T.sum(T.tanh(T.dot(X, W)));
const updates: [T.SharedVariable, T.Variable][] = [[W, T.sub(W, T.mul(1e-6, T.dot(X, W)))]];
const time = async (call: () => unknown): Promise<number> => {
  for (let i = 0; i < 20; i++) await call();
  const ts: number[] = [];
  for (let i = 0; i < o.calls; i++) {
    const t0 = performance.now();
    await call();
    ts.push(performance.now() - t0);
  }
  return median(ts);
};
let device: T.Device | undefined;
if (o.devices === 'cuda') {
  const { CudaDevice } = await import('../src/devices/cuda/cuda-device.js');
  device = new CudaDevice();
}
const local = T.fn({ outputs: y, updates, ...(device ? { device } : {}) });
const inProcess = await time(() => (local() as T.NDArray).item());
await synk.fork({ n: 1, devices: o.devices });
const remote = synk.fn({ outputs: [[y, 'avg']], updates });
const onWorker = await time(async () => (await remote())[0].item());
await synk.close();
console.log(`${o.devices}, ${n}x${n}: in-process ${inProcess.toFixed(3)} ms, on one worker ${onWorker.toFixed(3)} ms, `
  + `difference ${(onWorker - inProcess).toFixed(3)} ms`);
