// Enough of CUDA for generated kernels to compile and run as host C++ (tests on machines without a
// GPU): the host compiler, and a shim of the qualifiers, thread indices and bit casts the kernels use.
import { spawnSync } from 'node:child_process';

/** The host C++ compiler, or null when none is installed. */
export const HOST_CXX = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0) ?? null;

/**
 * The shim's C++ text. With `emulatedThreads`, threadIdx and blockDim can be set (several emulated
 * threads run one after the other); otherwise one thread covers each grid-stride loop.
 */
export function cudaHostShim(options: { readonly emulatedThreads: boolean }): string {
  const threads = options.emulatedThreads
    ? 'static sk_dim3 threadIdx = {0, 0, 0}, blockDim = {1, 1, 1};'
    : 'static const sk_dim3 threadIdx = {0, 0, 0}, blockDim = {1, 1, 1};';
  return String.raw`#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
struct sk_dim3 { unsigned int x, y, z; };
static const sk_dim3 blockIdx = {0, 0, 0}, gridDim = {1, 1, 1};
${threads}
struct float4 { float x, y, z, w; }; struct int4 { int x, y, z, w; }; struct double2 { double x, y; }; struct uint2 { unsigned int x, y; };
struct uchar4 { unsigned char x, y, z, w; };
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline float __uint_as_float(unsigned int i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int i; memcpy(&i, &f, 4); return i; }
static inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
`;
}
