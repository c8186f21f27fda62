// Random draws on the GPU with the same Philox-4x32-10 mapping as the reference (src/ops/random.ts):
// element i reads block (i / perBlock, salt, counterLo, counterHi) under key (key0, key1), the
// state read from device memory (so a draw never waits for the host). Parameters are numbers
// (kernel arguments) or arrays broadcast to the draw's shape (pointer and strides).
import type { DType } from '../../../tensor/dtype.js';
import { ctype, dtag, storeFn } from './ctypes.js';
import { shortHash, type ModuleBuilder } from './module.js';

export type DrawKind = 'uniform' | 'normal' | 'bernoulli';

const PHILOX = String.raw`
#ifndef SK_PHILOX
#define SK_PHILOX
DEV void sk_philox(unsigned int x0, unsigned int x1, unsigned int x2, unsigned int x3, unsigned int k0, unsigned int k1, unsigned int* w) {
#pragma unroll
  for (int r = 0; r < 10; r++) {
    if (r > 0) { k0 += 0x9e3779b9u; k1 += 0xbb67ae85u; }
    const unsigned int hi0 = __umulhi(0xd2511f53u, x0), lo0 = 0xd2511f53u * x0;
    const unsigned int hi1 = __umulhi(0xcd9e8d57u, x2), lo1 = 0xcd9e8d57u * x2;
    x0 = hi1 ^ x1 ^ k0; x1 = lo1; x2 = hi0 ^ x3 ^ k1; x3 = lo0;
  }
  w[0] = x0; w[1] = x1; w[2] = x2; w[3] = x3;
}
#endif
`;

/**
 * A draw kernel: (out, const int* state, i64 n, unsigned salt, per parameter [double value] or
 * [const P* ptr, i64 strides x ndim], i64 d0..dN-1). `params` gives each parameter's array dtype,
 * or null for a number.
 */
export function drawKernel(mb: ModuleBuilder, kind: DrawKind, dtype: DType, ndim: number, params: readonly (DType | null)[]): string {
  const name = `rnd_${kind}_${dtag(dtype)}_${ndim}_${shortHash(JSON.stringify(params))}`;
  if (mb.has(name)) return name;
  const T = ctype(dtype);
  const st = storeFn(dtype);
  const args: string[] = [];
  const reads: string[] = [];
  params.forEach((p, k) => {
    if (p === null) {
      args.push(`double p${k}`);
      reads.push(`    const double v${k} = p${k};`);
    } else {
      args.push(`const ${ctype(p)}* p${k}`, ...Array.from({ length: ndim }, (_, a) => `i64 s${k}_${a}`));
      reads.push(`    const double v${k} = (double)p${k}[${Array.from({ length: ndim }, (_, a) => `c${a} * s${k}_${a}`).join(' + ') || '0'}];`);
    }
  });
  const dims = Array.from({ length: ndim }, (_, a) => `i64 d${a}`);
  const needIndex = params.some((p) => p !== null);
  const index: string[] = [];
  if (needIndex) {
    index.push('    i64 r = i;');
    for (let a = ndim - 1; a >= 0; a--) index.push(a > 0 ? `    const i64 c${a} = r % d${a}; r /= d${a};` : `    const i64 c${a} = r;`);
  }
  const perBlock = kind === 'normal' ? 2 : 4;
  let sample: string;
  if (kind === 'uniform') {
    const next = dtype === 'float32' ? 'nextafterf(v, -SK_INF_F)' : 'nextafter(v, -SK_INF_D)';
    sample = `    const double u = ((double)w[i & 3] + 0.5) * 2.3283064365386963e-10;
    ${T} v = ${st}(v0 + (v1 - v0) * u);
    if ((double)v >= v1 && v1 > v0) { v = (${T})v1; while ((double)v >= v1) v = ${next}; }
    out[i] = v;`;
  } else if (kind === 'normal') {
    sample = `    const int lane = 2 * (int)(i & 1);
    const double u1 = ((double)w[lane] + 0.5) * 2.3283064365386963e-10;
    const double u2 = (double)w[lane + 1] * 2.3283064365386963e-10;
    out[i] = ${st}(v0 + v1 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));`;
  } else {
    sample = `    out[i] = ${st}((double)w[i & 3] * 2.3283064365386963e-10 < v0 ? 1 : 0);`;
  }
  const body = `extern "C" __global__ void __launch_bounds__(256) ${name}(` +
    `${T}* out, const int* state, i64 n, unsigned int salt${[...args, ...dims].map((a) => `, ${a}`).join('')}) {
  const unsigned int k0 = (unsigned int)state[0], k1 = (unsigned int)state[1], c2 = (unsigned int)state[2], c3 = (unsigned int)state[3];
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
${index.join('\n')}
${reads.join('\n')}
    unsigned int w[4];
    sk_philox((unsigned int)(i / ${perBlock}), salt, c2, c3, k0, k1, w);
${sample}
  }
}`;
  mb.define(name, `${PHILOX}\n${body}`, [name]);
  return name;
}

/** The next state: the 64-bit counter (words 2, 3) plus one; the key kept: (out, in). */
export function advanceKernel(mb: ModuleBuilder): string {
  const name = 'rnd_advance';
  mb.define(name, `extern "C" __global__ void ${name}(int* out, const int* in) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    const unsigned int lo = (unsigned int)in[2] + 1u;
    out[0] = in[0]; out[1] = in[1]; out[2] = (int)lo; out[3] = (int)(lo == 0u ? (unsigned int)in[3] + 1u : (unsigned int)in[3]);
  }
}`);
  return name;
}
