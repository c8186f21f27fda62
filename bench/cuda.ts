// The CUDA device on one GPU, with PyTorch measured in the same run (bench/cuda_torch.py):
//   W1    mean(tanh(X . W1) . W2, axis 0), X 262144x1024, W1 1024x1024, W2 1024x256, float32, TF32 allowed
//   chain sigmoid(a * b + a) - b * 0.5 over 2^28 float32 (one fused kernel) against a device copy
//   gemm  8192^3 through our matmul path against cuBLAS called directly (fp32 and tf32), and under precision 'bf16'
//   conv  3x3 64x64x56x56 forward and forward + both gradients: fp32, TF32, precision 'bf16'; im2col and cuDNN
//   h2d   host-to-device from a plain array, from Data (shared memory) pinned by registerHost, pinned peak
//   call  per-call overhead of a small function (16 floats in, 16 out)
// GPU times are medians between CUDA events on the device's stream; call times are wall clock.
// Usage: node dist/bench/cuda.js [--quick] [--out DIR] [--no-torch]   (DIR default: $OUT or .)
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '../src/tensor.js';
import { NDArray } from '../src/tensor/ndarray.js';
import { CudaDevice } from '../src/devices/cuda/cuda-device.js';
import type { CudaArray } from '../src/devices/cuda/cuda-array.js';
import { rowMajorGemm } from '../src/devices/cuda/ffi/cublas.js';
import { data } from '../src/parallel/data.js';
import type { DeviceArray, Executable } from '../src/devices/device.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const outDir = argv[argv.indexOf('--out') + 1] && argv.includes('--out') ? argv[argv.indexOf('--out') + 1]! : process.env['OUT'] ?? '.';
const reps = quick ? 5 : 20;
const results: Record<string, number | string> = {};
const log = (s: string) => console.log(s);

const dev = new CudaDevice({ tf32: true });
const plain = new CudaDevice();
const ctx = dev.context;
const cu = ctx.cu;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Median ms of one fn() between events on the device stream, after two warm-up calls. With
 * `batch` > 1, each sample times `batch` calls issued back to back (host work overlaps the GPU,
 * as in a training loop) and reports the time per call.
 */
function eventsMs(fn: () => void, n = reps, batch = 1): number {
  fn();
  fn();
  ctx.synchronize();
  const a = cu.eventCreate(0);
  const b = cu.eventCreate(0);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    cu.eventRecord(a, ctx.stream);
    for (let k = 0; k < batch; k++) fn();
    cu.eventRecord(b, ctx.stream);
    cu.eventSynchronize(b);
    times.push(cu.eventElapsedTime(a, b) / batch);
  }
  cu.eventDestroy(a);
  cu.eventDestroy(b);
  return median(times);
}

function wallMs(fn: () => void, n = reps): number {
  fn();
  fn();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Uniform values in [-scale, scale) from a fast xorshift (never zeros). */
function randomF32(n: number, scale: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

function runFree(exe: Executable, args: readonly DeviceArray[]): void {
  for (const r of exe.run(args)) dev.free(r);
}

/** bfloat16 bits of float32 values (round to nearest even), as bytes. */
function bf16Bits(x: Float32Array): NDArray {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) { const u = bits[i]!; out[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16; }
  return new NDArray('uint8', [2 * x.length], new Uint8Array(out.buffer));
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
  return Math.sqrt(num / den);
}

log(`${dev.name} (${dev.arch}), ${ctx.multiprocessors} SMs${quick ? ', quick' : ''}`);

// ---- W1 --------------------------------------------------------------------------------------
{
  const rows = 262144;
  const Xh = new NDArray('float32', [rows, 1024], randomF32(rows * 1024, 1, 1));
  const W1h = new NDArray('float32', [1024, 1024], randomF32(1024 * 1024, 1 / 32, 2));
  const W2h = new NDArray('float32', [1024, 256], randomF32(1024 * 256, 1 / 32, 3));
  const X = T.shared(Xh, { name: 'X' });
  const W1 = T.shared(W1h, { name: 'W1' });
  const W2 = T.shared(W2h, { name: 'W2' });
  const expr = T.mean(T.dot(T.tanh(T.dot(X, W1)), W2), 0);
  const t0 = performance.now();
  const f = T.fn({ outputs: expr, device: dev });
  const first = f() as NDArray;
  results['w1_first_call_ms'] = performance.now() - t0;
  results['w1_call_ms'] = wallMs(() => { f(); });
  const program = f.compiled.description.program;
  const exe = dev.compile(program);
  const byId = new Map<string, CudaArray>([[X.sharedId, dev.upload(Xh)], [W1.sharedId, dev.upload(W1h)], [W2.sharedId, dev.upload(W2h)]]);
  const args = program.shareds.map((s) => byId.get(s.sharedId)!);
  results['w1_ms'] = eventsMs(() => runFree(exe, args), reps, 10);
  results['w1_single_ms'] = eventsMs(() => runFree(exe, args));
  const fp32 = T.fn({ outputs: expr, device: plain })() as NDArray;
  results['w1_tf32_vs_fp32_rel'] = relErr(first.data, fp32.data);
  results['w1_steps'] = program.steps.map((s) => s.op).join(' ');
  for (const a of byId.values()) dev.free(a);
  X.setValue(new NDArray('float32', [1, 1024]));
  log(`W1: ${(results['w1_ms'] as number).toFixed(3)} ms on the GPU (one call alone ${(results['w1_single_ms'] as number).toFixed(3)}), ` +
    `${(results['w1_call_ms'] as number).toFixed(3)} ms per call (first call ${(results['w1_first_call_ms'] as number).toFixed(0)} ms); tf32 vs fp32 ` +
    `${(results['w1_tf32_vs_fp32_rel'] as number).toExponential(2)}`);
}

// ---- fused chain vs copy ---------------------------------------------------------------------
{
  const n = quick ? 1 << 26 : 1 << 28;
  const ah = new NDArray('float32', [n], randomF32(n, 1, 4));
  const bh = new NDArray('float32', [n], randomF32(n, 1, 5));
  const a = dev.upload(ah);
  const b = dev.upload(bh);
  const av = T.vector('a');
  const bv = T.vector('b');
  const program = T.fn({ inputs: [av, bv], outputs: T.sub(T.sigmoid(T.add(T.mul(av, bv), av)), T.mul(bv, 0.5)) }).compiled.description.program;
  const exe = dev.compile(program);
  results['chain_steps'] = program.steps.map((s) => s.op).join(' ');
  results['chain_ms'] = eventsMs(() => runFree(exe, [a, b]), reps, 10);
  const [out] = exe.run([a, b]);
  const got = dev.download(out!);
  let worst = 0;
  for (let k = 0; k < 4096; k++) {
    const i = Math.floor((k * 2654435761) % n);
    const x = ah.data[i]!;
    const y = bh.data[i]!;
    const want = 1 / (1 + Math.exp(-(x * y + x))) - y * 0.5;
    worst = Math.max(worst, Math.abs(got.data[i]! - want));
  }
  results['chain_max_abs_err'] = worst;
  dev.free(out!);
  const dst = ctx.alloc('float32', [n]);
  results['copy_ms'] = eventsMs(() => cu.memcpyDtoDAsync(dst.ptr, a.ptr, 4 * n, ctx.stream), reps, 10);
  dst.release();
  results['chain_gbps'] = (3 * 4 * n) / (results['chain_ms'] as number) / 1e6;
  results['copy_gbps'] = (2 * 4 * n) / (results['copy_ms'] as number) / 1e6;
  results['chain_vs_copy'] = (results['chain_gbps'] as number) / (results['copy_gbps'] as number);
  dev.free(a);
  dev.free(b);
  log(`chain over ${n} floats: ${(results['chain_ms'] as number).toFixed(3)} ms = ${(results['chain_gbps'] as number).toFixed(0)} GB/s; copy ` +
    `${(results['copy_gbps'] as number).toFixed(0)} GB/s; ratio ${(results['chain_vs_copy'] as number).toFixed(3)} (max abs err ${worst.toExponential(1)})`);
}

// ---- matmul vs cuBLAS ------------------------------------------------------------------------
{
  const m = quick ? 4096 : 8192;
  const a = dev.upload(new NDArray('float32', [m, m], randomF32(m * m, 1, 6)));
  const b = dev.upload(new NDArray('float32', [m, m], randomF32(m * m, 1, 7)));
  const x = T.matrix('x');
  const y = T.matrix('y');
  const program = T.fn({ inputs: [x, y], outputs: T.dot(x, y) }).compiled.description.program;
  const { lib, handle } = ctx.cublas();
  const c = ctx.alloc('float32', [m, m]);
  const medium = new CudaDevice({ matmulPrecision: 'medium' });
  const aHalf = dev.upload(bf16Bits(randomF32(m * m, 1, 6)));
  const bHalf = dev.upload(bf16Bits(randomF32(m * m, 1, 7)));
  for (const [label, device, tf32, bf16] of [['fp32', plain, false, false], ['tf32', dev, true, false], ['bf16', medium, false, true]] as const) {
    const exe = device.compile(program);
    // bf16: cuBLAS on operands already in bfloat16 (ours also rounds the float32 operands each call).
    const gemm = bf16
      ? () => rowMajorGemm(lib, handle, { m, n: m, k: m, a: aHalf.ptr, b: bHalf.ptr, c: c.ptr, dtype: 'bfloat16', outDtype: 'float32' })
      : () => rowMajorGemm(lib, handle, { m, n: m, k: m, a: a.ptr, b: b.ptr, c: c.ptr, dtype: 'float32', tf32 });
    const ours = eventsMs(() => runFree(exe, [a, b]), reps, 10);
    const direct = eventsMs(gemm, reps, 10);
    results[`gemm_${label}_single_ms`] = eventsMs(() => runFree(exe, [a, b]));
    results[`gemm_${label}_cublas_single_ms`] = eventsMs(gemm);
    results[`gemm_${label}_ms`] = ours;
    results[`gemm_${label}_cublas_ms`] = direct;
    results[`gemm_${label}_tflops`] = (2 * m ** 3) / ours / 1e9;
    results[`gemm_${label}_vs_cublas`] = direct / ours;
    log(`gemm ${label} ${m}^3: ours ${ours.toFixed(3)} ms (${(results[`gemm_${label}_tflops`] as number).toFixed(1)} TFLOP/s), cuBLAS direct ` +
      `${direct.toFixed(3)} ms: ${((direct / ours) * 100).toFixed(1)}%; one call alone ${(results[`gemm_${label}_single_ms`] as number).toFixed(3)} vs ` +
      `${(results[`gemm_${label}_cublas_single_ms`] as number).toFixed(3)} ms`);
  }
  // The 'bf16' precision policy of the function (float32 tensors, bfloat16 operands rounded each call), as torch.autocast.
  {
    const exe = plain.compile(T.fn({ inputs: [x, y], outputs: T.dot(x, y), precision: 'bf16' }).compiled.description.program);
    const ours = eventsMs(() => runFree(exe, [a, b]), reps, 10);
    results['gemm_policy_bf16_ms'] = ours;
    results['gemm_policy_bf16_tflops'] = (2 * m ** 3) / ours / 1e9;
    log(`gemm precision 'bf16' ${m}^3: ${ours.toFixed(3)} ms (${(results['gemm_policy_bf16_tflops'] as number).toFixed(1)} TFLOP/s)`);
  }
  c.release();
  dev.free(aHalf);
  dev.free(bHalf);
  dev.free(a);
  dev.free(b);
}

// ---- conv2d (im2col + cuBLAS) vs PyTorch (cuDNN) -------------------------------------------------
{
  // A ResNet-style 3x3 layer: 64 images, 64 -> 64 channels, 56x56, padding 1, forward and the
  // gradient with respect to both inputs (one program, as training runs it), fp32 and TF32.
  const [nImg, ch, hw] = quick ? [16, 64, 56] : [64, 64, 56];
  const img = T.tensor({ dtype: 'float32', ndim: 4, name: 'img' });
  const flt = T.tensor({ dtype: 'float32', ndim: 4, name: 'flt' });
  const y = T.conv2d(img, flt, { padding: [1, 1] });
  const loss = T.sum(T.mul(y, y));
  const fwd = T.fn({ inputs: [img, flt], outputs: y }).compiled.description.program;
  const both = T.fn({ inputs: [img, flt], outputs: T.grad(loss, [img, flt]) }).compiled.description.program;
  // The same under the 'bf16' precision policy (bfloat16 operands for the convolution and both gradients).
  const fwdBf16 = T.fn({ inputs: [img, flt], outputs: y, precision: 'bf16' }).compiled.description.program;
  const bothBf16 = T.fn({ inputs: [img, flt], outputs: T.grad(loss, [img, flt]), precision: 'bf16' }).compiled.description.program;
  const xi = dev.upload(new NDArray('float32', [nImg, ch, hw, hw], randomF32(nImg * ch * hw * hw, 1, 11)));
  const fi = dev.upload(new NDArray('float32', [ch, ch, 3, 3], randomF32(ch * ch * 9, 0.1, 12)));
  // im2col + cuBLAS (cudnn: false) and cuDNN (the default where cuDNN 9 is found), the same programs.
  const im2col = new CudaDevice({ cudnn: false });
  const im2colTf32 = new CudaDevice({ cudnn: false, tf32: true });
  const dnn = new CudaDevice({ cudnn: true });
  const dnnTf32 = new CudaDevice({ cudnn: true, tf32: true });
  const timed = new CudaDevice({ cudnn: true, cudnnBenchmark: true });
  const timedTf32 = new CudaDevice({ cudnn: true, cudnnBenchmark: true, tf32: true });
  const devices: [string, CudaDevice, boolean][] = [['fp32', im2col, false], ['tf32', im2colTf32, false], ['bf16', im2col, true]];
  if (dnn.cudnn) {
    devices.push(['cudnn_fp32', dnn, false], ['cudnn_tf32', dnnTf32, false], ['cudnn_bf16', dnn, true]);
    devices.push(['cudnn_timed_fp32', timed, false], ['cudnn_timed_tf32', timedTf32, false]);
  }
  for (const [label, device, bf16] of devices) {
    const f = device.compile(bf16 ? fwdBf16 : fwd);
    const g = device.compile(bf16 ? bothBf16 : both);
    results[`conv_fwd_${label}_ms`] = eventsMs(() => runFree(f, [xi, fi]), reps, 5);
    results[`conv_fwd_bwd_${label}_ms`] = eventsMs(() => runFree(g, [xi, fi]), reps, 5);
    log(`conv2d 3x3 ${nImg}x${ch}x${hw}x${hw} ${label}: forward ${(results[`conv_fwd_${label}_ms`] as number).toFixed(3)} ms, forward + both gradients ` +
      `${(results[`conv_fwd_bwd_${label}_ms`] as number).toFixed(3)} ms`);
  }
  dev.free(xi);
  dev.free(fi);
  for (const d of [im2col, im2colTf32, dnn, dnnTf32, timed, timedTf32]) d.close();
}

// ---- host to device --------------------------------------------------------------------------
{
  const n = quick ? 1 << 26 : 1 << 28;
  const bytes = 4 * n;
  const host = new NDArray('float32', [n], randomF32(n, 1, 8));
  results['h2d_plain_gbps'] = bytes / wallMs(() => { const d = dev.upload(host); dev.synchronize(); dev.free(d); }, 5) / 1e6;
  const d = data(host);
  const view = d.array;
  results['h2d_data_staged_gbps'] = bytes / wallMs(() => { const u = dev.upload(view); dev.synchronize(); dev.free(u); }, 5) / 1e6;
  const t0 = performance.now();
  dev.registerHost(view.data);
  results['register_ms'] = performance.now() - t0;
  results['h2d_data_registered_gbps'] = bytes / wallMs(() => { const u = dev.upload(view); dev.synchronize(); dev.free(u); }, 5) / 1e6;
  dev.unregisterHost(view.data);
  const pinned = cu.memAllocHost(bytes);
  new Float32Array(pinned.buffer).set(host.data);
  const target = ctx.alloc('float32', [n]);
  results['h2d_pinned_peak_gbps'] = bytes / eventsMs(() => cu.memcpyHtoDAsync(target.ptr, new Uint8Array(pinned.buffer), ctx.stream), 5) / 1e6;
  target.release();
  cu.memFreeHost(pinned.ptr);
  const back = dev.download(dev.upload(host));
  if (back.data[n - 1] !== host.data[n - 1]) throw new Error('h2d: round trip mismatch');
  log(`h2d ${bytes >> 20} MiB: plain ${(results['h2d_plain_gbps'] as number).toFixed(1)} GB/s, Data staged ` +
    `${(results['h2d_data_staged_gbps'] as number).toFixed(1)}, Data registered ${(results['h2d_data_registered_gbps'] as number).toFixed(1)} ` +
    `(registering took ${(results['register_ms'] as number).toFixed(0)} ms), pinned peak ${(results['h2d_pinned_peak_gbps'] as number).toFixed(1)}`);
}

// ---- per-call overhead -----------------------------------------------------------------------
{
  const x = T.vector('x');
  const f = T.fn({ inputs: [x], outputs: T.add(x, 1), device: dev });
  const v = new NDArray('float32', [16], randomF32(16, 1, 9));
  results['small_call_us'] = 1e3 * wallMs(() => { f(v); }, 2000);
  const exe = dev.compile(f.compiled.description.program);
  const xa = dev.upload(v);
  results['small_run_sync_us'] = 1e3 * wallMs(() => { runFree(exe, [xa]); dev.synchronize(); }, 2000);
  results['small_roundtrip_us'] = 1e3 * wallMs(() => { const d = dev.upload(v); dev.download(d); dev.free(d); }, 2000);
  log(`small function: ${(results['small_call_us'] as number).toFixed(1)} us per call (upload, kernel, download); run + synchronize ` +
    `${(results['small_run_sync_us'] as number).toFixed(1)} us; upload + download alone ${(results['small_roundtrip_us'] as number).toFixed(1)} us`);
}

const stats = dev.stats();
results['nvrtc_units'] = stats.kernels.compiled;
results['nvrtc_ms'] = stats.kernels.compileMs;
results['disk_cache_hits'] = stats.kernels.fromDisk;
plain.close();
dev.close();

// ---- PyTorch in the same run -----------------------------------------------------------------
mkdirSync(outDir, { recursive: true });
let torch: Record<string, number | string> | null = null;
if (!argv.includes('--no-torch')) {
  const file = join(outDir, 'cuda-torch.json');
  const r = spawnSync('python3', ['bench/cuda_torch.py', file, ...(quick ? ['--quick'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) torch = JSON.parse(readFileSync(file, 'utf8')) as Record<string, number | string>;
  else log(`PyTorch run failed (${r.status}): ${(r.stderr ?? '').split('\n').slice(-5).join(' | ')}`);
}
const num = (o: Record<string, number | string> | null, k: string): number => (o && typeof o[k] === 'number' ? (o[k] as number) : NaN);
const rows: [string, number, number, string][] = [
  ['W1 eval, GPU ms (events)', num(results, 'w1_ms'), num(torch, 'w1_ms'), 'lower is better'],
  ['W1 eval, ms per call incl. download', num(results, 'w1_call_ms'), num(torch, 'w1_call_ms'), 'lower is better'],
  [
    `fused chain ${quick ? '2^26' : '2^28'}, ms`,
    num(results, 'chain_ms'),
    num(torch, 'chain_ms'),
    `torch.compile: ${num(torch, 'chain_compiled_ms').toFixed(3)} ms`,
  ],
  ['device copy GB/s (read+write)', num(results, 'copy_gbps'), num(torch, 'copy_gbps'), ''],
  [
    `gemm fp32 ${quick ? 4096 : 8192}^3, ms`,
    num(results, 'gemm_fp32_ms'),
    num(torch, 'gemm_fp32_ms'),
    `cuBLAS direct ${num(results, 'gemm_fp32_cublas_ms').toFixed(3)}`,
  ],
  [
    `gemm tf32 ${quick ? 4096 : 8192}^3, ms`,
    num(results, 'gemm_tf32_ms'),
    num(torch, 'gemm_tf32_ms'),
    `cuBLAS direct ${num(results, 'gemm_tf32_cublas_ms').toFixed(3)}`,
  ],
  [
    `gemm float32 as bf16 ${quick ? 4096 : 8192}^3, ms`,
    num(results, 'gemm_bf16_ms'),
    num(torch, 'gemm_bf16_ms'),
    `cuBLAS on bfloat16 operands ${num(results, 'gemm_bf16_cublas_ms').toFixed(3)}; torch: bfloat16 tensors`,
  ],
  [
    `gemm precision 'bf16' ${quick ? 4096 : 8192}^3, ms`,
    num(results, 'gemm_policy_bf16_ms'),
    num(torch, 'gemm_autocast_ms'),
    'float32 tensors, operands rounded each call; torch.autocast(bfloat16)',
  ],
  ['conv2d 3x3 forward, precision bf16 (im2col), ms', num(results, 'conv_fwd_bf16_ms'), num(torch, 'conv_fwd_autocast_ms'), 'torch.autocast(bfloat16), cuDNN'],
  ['conv2d 3x3 forward + both grads, precision bf16 (im2col), ms', num(results, 'conv_fwd_bwd_bf16_ms'), num(torch, 'conv_fwd_bwd_autocast_ms'), ''],
  ['conv2d 3x3 forward, precision bf16 through cuDNN, ms', num(results, 'conv_fwd_cudnn_bf16_ms'), num(torch, 'conv_fwd_autocast_ms'), ''],
  ['conv2d 3x3 forward + both grads, precision bf16 through cuDNN, ms', num(results, 'conv_fwd_bwd_cudnn_bf16_ms'), num(torch, 'conv_fwd_bwd_autocast_ms'), ''],
  ['conv2d 3x3 forward fp32, ms', num(results, 'conv_fwd_fp32_ms'), num(torch, 'conv_fwd_fp32_ms'), 'ours im2col + cuBLAS; torch cuDNN'],
  ['conv2d 3x3 forward TF32, ms', num(results, 'conv_fwd_tf32_ms'), num(torch, 'conv_fwd_tf32_ms'), ''],
  ['conv2d 3x3 forward + both grads fp32, ms', num(results, 'conv_fwd_bwd_fp32_ms'), num(torch, 'conv_fwd_bwd_fp32_ms'), ''],
  ['conv2d 3x3 forward + both grads TF32, ms', num(results, 'conv_fwd_bwd_tf32_ms'), num(torch, 'conv_fwd_bwd_tf32_ms'), ''],
  ['conv2d 3x3 forward fp32 through cuDNN, ms', num(results, 'conv_fwd_cudnn_fp32_ms'), num(torch, 'conv_fwd_fp32_ms'), 'CudaDevice({ cudnn: true })'],
  ['conv2d 3x3 forward TF32 through cuDNN, ms', num(results, 'conv_fwd_cudnn_tf32_ms'), num(torch, 'conv_fwd_tf32_ms'), ''],
  ['conv2d 3x3 forward + both grads fp32 through cuDNN, ms', num(results, 'conv_fwd_bwd_cudnn_fp32_ms'), num(torch, 'conv_fwd_bwd_fp32_ms'), ''],
  ['conv2d 3x3 forward + both grads TF32 through cuDNN, ms', num(results, 'conv_fwd_bwd_cudnn_tf32_ms'), num(torch, 'conv_fwd_bwd_tf32_ms'), ''],
  ['conv2d 3x3 forward fp32, cuDNN timed, ms', num(results, 'conv_fwd_cudnn_timed_fp32_ms'), num(torch, 'conv_fwd_fp32_ms'), 'cudnnBenchmark: true'],
  ['conv2d 3x3 forward TF32, cuDNN timed, ms', num(results, 'conv_fwd_cudnn_timed_tf32_ms'), num(torch, 'conv_fwd_tf32_ms'), ''],
  ['conv2d 3x3 forward + both grads fp32, cuDNN timed, ms', num(results, 'conv_fwd_bwd_cudnn_timed_fp32_ms'), num(torch, 'conv_fwd_bwd_fp32_ms'), ''],
  ['conv2d 3x3 forward + both grads TF32, cuDNN timed, ms', num(results, 'conv_fwd_bwd_cudnn_timed_tf32_ms'), num(torch, 'conv_fwd_bwd_tf32_ms'), ''],
  ['h2d GB/s, pinned peak', num(results, 'h2d_pinned_peak_gbps'), num(torch, 'h2d_pinned_gbps'), ''],
  [
    'h2d GB/s, pageable / plain array',
    num(results, 'h2d_plain_gbps'),
    num(torch, 'h2d_pageable_gbps'),
    `Data registered ${num(results, 'h2d_data_registered_gbps').toFixed(1)}`,
  ],
  ['small call, us', num(results, 'small_call_us'), num(torch, 'small_call_us'), ''],
];
log('\n| measure | synkhronos | PyTorch | ratio (torch/ours for times) | note |\n| --- | --- | --- | --- | --- |');
for (const [label, ours, theirs, note] of rows) {
  const isRate = label.includes('GB/s');
  const ratio = isRate ? ours / theirs : theirs / ours;
  log(`| ${label} | ${ours.toFixed(3)} | ${theirs.toFixed(3)} | ${Number.isFinite(ratio) ? ratio.toFixed(3) : '-'} | ${note} |`);
}
writeFileSync(join(outDir, 'cuda-bench.json'), JSON.stringify({ synkhronos: results, torch, quick }, null, 1));
