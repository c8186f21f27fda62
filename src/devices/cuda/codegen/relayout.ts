// The kernel that moves a rank-4 float32 array between the two layouts of storage.ts (NCHW and
// channels-last NHWC), converting its storage (float32 or bfloat16) on the way: the executable runs it
// at the edges of the channels-last region (lower/storage-plan.ts), and the convolutions use it for
// their operands (filters KCRS -> KRSC, images NCHW -> NHWC). Each image is a C x (H*W) matrix
// transposed through a 32 x 33 shared tile, so reads and writes are both coalesced.
import type { Storage } from '../storage.js';
import { ctype, dtag, storeFn } from './ctypes.js';
import type { ModuleBuilder } from './module.js';

/** The storages a relayout reads and writes (the activations' only ones). */
export type RelayoutStorage = 'float32' | 'bfloat16';

function checkedStorage(s: Storage): RelayoutStorage {
  if (s !== 'float32' && s !== 'bfloat16') throw new TypeError(`internal: a relayout of ${s} storage (float32 or bfloat16 only)`);
  return s;
}

/** Threads of one relayout block: 32 x 8, each moving four elements of a 32 x 32 tile. */
export const RELAYOUT_BLOCK: readonly [number, number, number] = [32, 8, 1];

/** The grid of a relayout of n images of c channels and hw pixels. */
export function relayoutGrid(n: number, c: number, hw: number): [number, number, number] {
  return [Math.ceil(hw / 32), Math.ceil(c / 32), n];
}

/**
 * out = in in the other layout: toNhwc 1 reads in[n][c][p] and writes out[n][p][c], toNhwc 0 the reverse,
 * with p = h * W + w: (out, in, C, HW, toNhwc); grid relayoutGrid(N, C, HW), block RELAYOUT_BLOCK.
 */
export function relayoutKernel(mb: ModuleBuilder, from: Storage, to: Storage): string {
  const ti = ctype(checkedStorage(from));
  const tout = ctype(checkedStorage(to));
  const name = `relayout_${dtag(from)}_${dtag(to)}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${tout}* __restrict__ out, const ${ti}* __restrict__ in, int C, int HW,
    int toNhwc) {
  __shared__ float tile[32][33];
  const i64 base = (i64)blockIdx.z * C * HW;
  const int c0 = blockIdx.y * 32, p0 = blockIdx.x * 32, tx = threadIdx.x;
  // Rows of the tile are the dimension read contiguously: pixels p when reading NCHW, channels c when reading NHWC.
  for (int j = threadIdx.y; j < 32; j += 8) {
    const int c = toNhwc ? c0 + j : c0 + tx, p = toNhwc ? p0 + tx : p0 + j;
    if (c < C && p < HW) tile[j][tx] = (float)in[base + (toNhwc ? (i64)c * HW + p : (i64)p * C + c)];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    const int c = toNhwc ? c0 + tx : c0 + j, p = toNhwc ? p0 + j : p0 + tx;
    if (c < C && p < HW) out[base + (toNhwc ? (i64)p * C + c : (i64)c * HW + p)] = ${storeFn(to)}(tile[tx][j]);
  }
}`);
  return name;
}
