// Builds stand-in shared libraries with the C compiler so the koffi bindings can be
// exercised without a GPU: every symbol a binding declares exists (returning 0), and a few
// hand-written functions record what they received, so a test can check the bytes that
// crossed the FFI boundary (struct by value, void** arrays, int64 on the stack, handles).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { symbolOf } from '../../../src/devices/cuda/ffi/types.js';

let ccChecked: string | null | undefined;

/** The C compiler, or null when there is none. */
export function findCompiler(): string | null {
  if (ccChecked !== undefined) return ccChecked;
  ccChecked = null;
  for (const cc of ['cc', 'gcc', 'clang']) {
    try {
      execFileSync(cc, ['--version'], { stdio: 'ignore' });
      ccChecked = cc;
      break;
    } catch {
      // try the next one
    }
  }
  return ccChecked;
}

/**
 * Compiles `customC` plus a `return 0` stub for every other symbol in `signatures` into a
 * shared library under `fileName`; returns its path, or a reason when no compiler exists.
 */
export function buildFakeLibrary(
  fileName: string,
  signatures: Record<string, string | readonly string[]>,
  customC: string,
): { path: string } | { skip: string } {
  const cc = findCompiler();
  if (cc === null) return { skip: 'no C compiler (cc, gcc, clang) to build the stand-in library' };
  const stubs: string[] = [];
  for (const entry of Object.values(signatures)) {
    const prototype = typeof entry === 'string' ? entry : entry[0];
    if (prototype === undefined) continue;
    const symbol = symbolOf(prototype);
    if (new RegExp(`\\b${symbol}\\s*\\(`).test(customC)) continue;
    stubs.push(/^\s*const char \*/.test(prototype) ? `const char *${symbol}() { return "stub"; }` : `int ${symbol}() { return 0; }`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'synk-fake-'));
  const source = join(dir, `${fileName}.c`);
  const path = join(dir, fileName);
  writeFileSync(source, `#include <stddef.h>\n#include <string.h>\n${customC}\n${stubs.join('\n')}\n`);
  execFileSync(cc, ['-shared', '-fPIC', '-std=gnu11', '-O1', '-o', path, source], { stdio: 'pipe' });
  return { path };
}

/** libcuda stand-in: a 64 KiB "device", a recording cuLaunchKernel, fixed device facts. */
export const FAKE_DRIVER_C = `
static unsigned char mem[1 << 16];
#define BASE 0x7f0000000000ULL
static unsigned long long next_free = BASE;
static unsigned int dims[9]; static unsigned char params[64]; static int nparams;
int cuMemAlloc_v2(unsigned long long *p, size_t n) {
  if (next_free - BASE + n > sizeof mem) return 2;
  *p = next_free; next_free += (n + 255) & ~255ULL; return 0; }
static int range(unsigned long long d, size_t n) { return d >= BASE && d - BASE + n <= sizeof mem; }
int cuMemcpyHtoD_v2(unsigned long long d, const void *s, size_t n) { if (!range(d, n)) return 1; memcpy(mem + (d - BASE), s, n); return 0; }
int cuMemcpyDtoH_v2(void *d, unsigned long long s, size_t n) { if (!range(s, n)) return 1; memcpy(d, mem + (s - BASE), n); return 0; }
int cuMemsetD32_v2(unsigned long long d, unsigned int v, size_t n) {
  if (!range(d, 4 * n)) return 1; for (size_t i = 0; i < n; i++) memcpy(mem + (d - BASE) + 4 * i, &v, 4); return 0; }
int cuGetErrorName(int e, const char **s) { *s = e == 1 ? "CUDA_ERROR_INVALID_VALUE" : e == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : "CUDA_ERROR_UNKNOWN"; return 0; }
int cuGetErrorString(int e, const char **s) { *s = e == 1 ? "invalid argument" : e == 2 ? "out of memory" : "unknown error"; return 0; }
int cuDriverGetVersion(int *v) { *v = 13000; return 0; }
int cuDeviceGetCount(int *c) { *c = 2; return 0; }
int cuDeviceGet(int *d, int ordinal) { *d = ordinal; return ordinal < 2 ? 0 : 101; }
int cuDeviceGetName(char *name, int len, int dev) { strncpy(name, dev ? "Fake GPU 1" : "Fake GPU 0", len); return 0; }
int cuDeviceGetAttribute(int *pi, int a, int dev) { *pi = a == 75 ? 9 : a == 76 ? 0 : a == 16 ? 132 : -1; return *pi < 0; }
int cuDeviceTotalMem_v2(size_t *b, int dev) { *b = 150012345678ULL; return 0; }
int cuMemGetInfo_v2(size_t *f, size_t *t) { *f = 1000; *t = 150012345678ULL; return 0; }
int fake_set_param_count(int n) { nparams = n; return 0; }
int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shared, void *stream, void **kp, void **extra) {
  unsigned int d[9] = { gx, gy, gz, bx, by, bz, shared, stream == (void *)0x5000, extra == 0 };
  memcpy(dims, d, sizeof d);
  for (int i = 0; i < nparams; i++) memcpy(params + 8 * i, kp[i], 8);
  return f == (void *)0xf00 ? 0 : 400; }
int fake_get_launch(unsigned int *d, unsigned char *p) { memcpy(d, dims, sizeof dims); memcpy(p, params, sizeof params); return 0; }
int cuModuleLoadData(void **m, const void *image) { *m = (void *)0xa00; return ((const char *)image)[0] == 0x7f ? 0 : 200; }
int cuModuleGetFunction(void **f, void *m, const char *name) { *f = (void *)0xf00; return m == (void *)0xa00 && !strcmp(name, "scale") ? 0 : 500; }
int cuStreamCreate(void **s, unsigned flags) { *s = (void *)0x5000; return 0; }
int cuStreamSynchronize(void *s) { return s == (void *)0x5000 || s == 0 ? 0 : 400; }
int cuEventElapsedTime_v2(float *ms, void *a, void *b) { *ms = 1.25f; return 0; }
`;

/** libnccl stand-in: records the unique id it receives by value and the last all-reduce. */
export const FAKE_NCCL_C = `
typedef struct { char internal[128]; } ncclUniqueId;
static unsigned long long last_sum, coll[7];
int ncclGetVersion(int *v) { *v = 23007; return 0; }
const char *ncclGetErrorString(int r) { return r == 4 ? "invalid argument (fake)" : "fake error"; }
int ncclGetUniqueId(ncclUniqueId *id) { for (int i = 0; i < 128; i++) id->internal[i] = (char)(i * 7 + 1); return 0; }
int ncclCommInitRank(void **comm, int nranks, ncclUniqueId id, int rank) {
  if (rank >= nranks) return 4;
  unsigned long long s = 0; for (int i = 0; i < 128; i++) s = s * 31 + (unsigned char)id.internal[i];
  last_sum = s; *comm = (void *)(0x7700L + rank); return 0; }
unsigned long long fake_last_sum(void) { return last_sum; }
int ncclCommInitAll(void **comms, int n, const int *devlist) {
  for (int i = 0; i < n; i++) comms[i] = (void *)(0x7700L + (devlist ? devlist[i] : i));
  return 0; }
int ncclCommUserRank(void *comm, int *rank) { *rank = (int)((long)comm - 0x7700L); return 0; }
int ncclAllReduce(unsigned long long s, unsigned long long r, size_t count, int dt, int op, void *comm, void *stream) {
  unsigned long long c[7] = { s, r, count, dt, op, (unsigned long long)comm, (unsigned long long)stream };
  memcpy(coll, c, sizeof c); return 0; }
int fake_last_collective(unsigned long long *out) { memcpy(out, coll, sizeof coll); return 0; }
int ncclGroupEnd(void) { return 5; }
`;

/** libcublas stand-in (without cublasGetStatusName, so the binding's own table is used). */
export const FAKE_CUBLAS_C = `
static double rec[24]; static int fail_code;
int fake_set_fail(int c) { fail_code = c; return 0; }
int fake_get_record(double *out) { memcpy(out, rec, sizeof rec); return 0; }
int cublasCreate_v2(void **h) { if (fail_code) { int c = fail_code; fail_code = 0; return c; } *h = (void *)0xb1a5; return 0; }
int cublasSetStream_v2(void *h, void *s) { rec[0] = 99; rec[1] = s == (void *)0x5000; return h == (void *)0xb1a5 ? 0 : 7; }
int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k, const float *alpha, unsigned long long A, int lda,
                   unsigned long long B, int ldb, const float *beta, unsigned long long C, int ldc) {
  double r[14] = { 1, ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc };
  memset(rec, 0, sizeof rec); memcpy(rec, r, sizeof r); return 0; }
int cublasGemmStridedBatchedEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha, unsigned long long A,
    int at, int lda, long long sA, unsigned long long B, int bt, int ldb, long long sB, const void *beta,
    unsigned long long C, int ct, int ldc, long long sC, int batch, int compute, int algo) {
  double r[24] = { 2, ta, tb, m, n, k, *(const float *)alpha, A, at, lda, sA, B, bt, ldb, sB, *(const float *)beta,
                   C, ct, ldc, sC, batch, compute, algo, 0 };
  memcpy(rec, r, sizeof r); return 0; }
`;
