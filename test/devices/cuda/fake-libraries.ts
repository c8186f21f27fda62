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
static void *aborted[4]; static int n_aborted;
int ncclCommAbort(void *comm) { if (n_aborted < 4) aborted[n_aborted] = comm; n_aborted++; return 0; }
int fake_aborts(unsigned long long *out) { for (int i = 0; i < 4; i++) out[i] = (unsigned long long)aborted[i]; return n_aborted; }
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

/**
 * libcudnn stand-in: a settable version, numbered descriptors, and a record R[] of every number that
 * crossed the FFI (slots below). The heuristics return three algorithms laid out by the header's struct
 * (cudnn_cnn.h cudnnConvolution*AlgoPerf_t; the static assert checks the binding's 48 bytes): algorithm 7
 * unsupported, 1 needing 2^40 bytes of workspace, 2 needing 2048, all ranked under CUDNN_TENSOR_OP_MATH.
 * Slots: 0 stream is the fake driver's; 10+10i tensor descriptor i (dtype n c h w ns cs hs ws); 50 filter
 * (dtype format k c h w); 60 convolution (pads, strides, dilations, mode, compute), 68 groups, 69 last math
 * type, 70 heuristics (direction 1/2/3, handle ok, desc1, desc2, conv, desc4, requested), 80 workspace queries
 * (count, then algos), 90 run (direction, alpha, beta, d1, p1, d2, p2, conv, algo, ws, ws size, d3, p3),
 * 110 destroyed (tensors, filters, convolutions, handles). fake_set_run_status makes the convolutions fail.
 */
export const FAKE_CUDNN_C = `
typedef struct { int algo; int status; float time; size_t memory; int determinism; int mathType; int reserved[3]; } perf_t;
_Static_assert(sizeof(perf_t) == 48, "cudnnConvolution*AlgoPerf_t is 48 bytes");
static double R[128]; static size_t version = 92200; static int ntensors, run_status;
int fake_set_run_status(int s) { run_status = s; return 0; }
int fake_set_version(size_t v) { version = v; return 0; }
int fake_get_record(double *out) { memcpy(out, R, sizeof R); return 0; }
int fake_reset(void) { memset(R, 0, sizeof R); ntensors = 0; run_status = 0; return 0; }
size_t cudnnGetVersion(void) { return version; }
const char *cudnnGetErrorString(int s) { return s == 3002 ? "shape not supported (fake)" : "fake cudnn error"; }
int cudnnCreate(void **h) { *h = (void *)0xd00; return 0; }
int cudnnDestroy(void *h) { R[113] += 1; return h == (void *)0xd00 ? 0 : 2000; }
int cudnnSetStream(void *h, void *s) { R[0] = s == (void *)0x5000; return h == (void *)0xd00 ? 0 : 2000; }
int cudnnCreateTensorDescriptor(void **d) { *d = (void *)(0x1000L + 0x10L * (ntensors++ % 4)); return 0; }
int cudnnSetTensor4dDescriptorEx(void *d, int dt, int n, int c, int h, int w, int ns, int cs, int hs, int ws) {
  int i = (int)(((long)d - 0x1000L) / 0x10L); double v[9] = { dt, n, c, h, w, ns, cs, hs, ws };
  if (i < 0 || i > 3) return 2000; memcpy(R + 10 + 10 * i, v, sizeof v); return 0; }
int cudnnDestroyTensorDescriptor(void *d) { R[110] += 1; return 0; }
int cudnnCreateFilterDescriptor(void **d) { *d = (void *)0x2000; return 0; }
int cudnnSetFilter4dDescriptor(void *d, int dt, int format, int k, int c, int h, int w) {
  double v[6] = { dt, format, k, c, h, w }; memcpy(R + 50, v, sizeof v); return d == (void *)0x2000 ? 0 : 2000; }
int cudnnDestroyFilterDescriptor(void *d) { R[111] += 1; return 0; }
int cudnnCreateConvolutionDescriptor(void **d) { *d = (void *)0x3000; return 0; }
int cudnnSetConvolution2dDescriptor(void *d, int ph, int pw, int u, int v, int dh, int dw, int mode, int compute) {
  double r[8] = { ph, pw, u, v, dh, dw, mode, compute }; memcpy(R + 60, r, sizeof r); return d == (void *)0x3000 ? 0 : 2000; }
int cudnnSetConvolutionGroupCount(void *d, int g) { R[68] = g; return 0; }
int cudnnSetConvolutionMathType(void *d, int m) { R[69] = m; return 0; }
int cudnnDestroyConvolutionDescriptor(void *d) { R[112] += 1; return 0; }
static int heuristics(int dir, void *h, void *a, void *b, void *conv, void *c, int requested, int *returned, perf_t *out) {
  double r[7] = { dir, h == (void *)0xd00, (double)(long)a, (double)(long)b, (double)(long)conv, (double)(long)c, requested };
  memcpy(R + 70, r, sizeof r);
  perf_t p[3] = { { 7, 3000, -1, 0, 1, 1, { 0 } }, { 1, 0, -1, 1ULL << 40, 1, 1, { 0 } }, { 2, 0, -1, 2048, 0, 1, { 0 } } };
  memcpy(out, p, sizeof p); *returned = 3; return 0; }
int cudnnGetConvolutionForwardAlgorithm_v7(void *h, void *a, void *b, void *conv, void *c, int n, int *r, perf_t *o) {
  return heuristics(1, h, a, b, conv, c, n, r, o); }
int cudnnGetConvolutionBackwardDataAlgorithm_v7(void *h, void *a, void *b, void *conv, void *c, int n, int *r, perf_t *o) {
  return heuristics(2, h, a, b, conv, c, n, r, o); }
int cudnnGetConvolutionBackwardFilterAlgorithm_v7(void *h, void *a, void *b, void *conv, void *c, int n, int *r, perf_t *o) {
  return heuristics(3, h, a, b, conv, c, n, r, o); }
static int timed(int dir, void *h, void *a, void *b, void *conv, void *c, int requested, int *returned, perf_t *out) {
  double r[7] = { dir, h == (void *)0xd00, (double)(long)a, (double)(long)b, (double)(long)conv, (double)(long)c, requested };
  memcpy(R + 70, r, sizeof r);
  perf_t p[3] = { { 1, 0, 0.2f, 1ULL << 40, 1, 1, { 0 } }, { 0, 0, 0.5f, 0, 1, 0, { 0 } }, { 2, 0, 0.9f, 2048, 0, 1, { 0 } } };
  memcpy(out, p, sizeof p); *returned = 3; return 0; }
int cudnnFindConvolutionForwardAlgorithm(void *h, void *a, void *b, void *conv, void *c, int n, int *r, perf_t *o) {
  return timed(4, h, a, b, conv, c, n, r, o); }
int cudnnFindConvolutionBackwardDataAlgorithm(void *h, void *a, void *b, void *conv, void *c, int n, int *r, perf_t *o) {
  return timed(5, h, a, b, conv, c, n, r, o); }
int cudnnFindConvolutionBackwardFilterAlgorithm(void *h, void *a, void *b, void *conv, void *c, int n, int *r, perf_t *o) {
  return timed(6, h, a, b, conv, c, n, r, o); }
static int workspace(int algo, size_t *size) {
  int k = (int)R[80]; if (k < 4) R[81 + k] = algo; R[80] = k + 1;
  *size = algo == 1 ? 1ULL << 40 : algo == 2 ? 2048 : 0; return 0; }
int cudnnGetConvolutionForwardWorkspaceSize(void *h, void *a, void *b, void *c, void *d, int algo, size_t *s) { return workspace(algo, s); }
int cudnnGetConvolutionBackwardDataWorkspaceSize(void *h, void *a, void *b, void *c, void *d, int algo, size_t *s) { return workspace(algo, s); }
int cudnnGetConvolutionBackwardFilterWorkspaceSize(void *h, void *a, void *b, void *c, void *d, int algo, size_t *s) { return workspace(algo, s); }
static int run(int dir, const void *alpha, void *d1, unsigned long long p1, void *d2, unsigned long long p2, void *conv, int algo,
               unsigned long long ws, size_t wsize, const void *beta, void *d3, unsigned long long p3) {
  int dbl = R[67] == 1;
  double r[13] = { dir, dbl ? *(const double *)alpha : *(const float *)alpha, dbl ? *(const double *)beta : *(const float *)beta,
                   (double)(long)d1, (double)p1, (double)(long)d2, (double)p2, (double)(long)conv, algo, (double)ws, (double)wsize,
                   (double)(long)d3, (double)p3 };
  memcpy(R + 90, r, sizeof r); return run_status; }
int cudnnConvolutionForward(void *h, const void *al, void *d1, unsigned long long p1, void *d2, unsigned long long p2, void *conv, int algo,
    unsigned long long ws, size_t wsize, const void *be, void *d3, unsigned long long p3) {
  return run(1, al, d1, p1, d2, p2, conv, algo, ws, wsize, be, d3, p3); }
int cudnnConvolutionBackwardData(void *h, const void *al, void *d1, unsigned long long p1, void *d2, unsigned long long p2, void *conv, int algo,
    unsigned long long ws, size_t wsize, const void *be, void *d3, unsigned long long p3) {
  return run(2, al, d1, p1, d2, p2, conv, algo, ws, wsize, be, d3, p3); }
int cudnnConvolutionBackwardFilter(void *h, const void *al, void *d1, unsigned long long p1, void *d2, unsigned long long p2, void *conv, int algo,
    unsigned long long ws, size_t wsize, const void *be, void *d3, unsigned long long p3) {
  return run(3, al, d1, p1, d2, p2, conv, algo, ws, wsize, be, d3, p3); }
`;

/**
 * libcublasLt stand-in (without cublasLtGetStatusName: the binding's table names statuses). Every number that
 * crosses the FFI goes into a log read (and cleared) by fake_log: a tag, then the call's values (tags: 100
 * matmul descriptor create compute scale, 101 descriptor attribute attr size value, 200 layout create type rows
 * cols ld, 201 layout attribute attr size value, 300 preference create, 301 preference attribute attr size value,
 * 400 heuristic requested, 500 matmul alpha*1000 beta*1000 A Adesc B Bdesc C Cdesc D Ddesc algo[0] algo[63] ws
 * wsSize stream). Descriptors are numbered slots (their number is logged); fake_live counts those not destroyed.
 * The heuristic returns one algorithm (bytes 1..64, 4096 bytes of workspace), NOT_SUPPORTED in mode 1, none in
 * mode 2, one with a failed state in mode 3; cublasLtMatmul returns fake_set_matmul_status's status.
 */
export const FAKE_CUBLASLT_C = `
static long long L[4096]; static int nl, live, mode, matmul_status; static int slots[256]; static int nslots;
static void put(long long v) { if (nl < 4096) L[nl++] = v; }
static long long id(const void *p) { return (long long)((const int *)p - slots); }
static void *fresh(void) { live++; return &slots[nslots++ % 256]; }
static long long bytes(const void *buf, size_t n) { long long v = 0; memcpy(&v, buf, n < 8 ? n : 8); return v; }
int fake_log(long long *out, int max) { int k = nl < max ? nl : max; memcpy(out, L, k * sizeof(long long)); nl = 0; return k; }
int fake_live(void) { return live; }
int fake_set_mode(int m) { mode = m; return 0; }
int fake_set_matmul_status(int s) { matmul_status = s; return 0; }
size_t cublasLtGetVersion(void) { return 130001; }
int cublasLtCreate(void **h) { *h = (void *)0x17; return 0; }
int cublasLtDestroy(void *h) { return h == (void *)0x17 ? 0 : 7; }
int cublasLtMatmulDescCreate(void **d, int compute, int scale) { put(100); put(compute); put(scale); *d = fresh(); return 0; }
int cublasLtMatmulDescDestroy(void *d) { live--; return 0; }
int cublasLtMatmulDescSetAttribute(void *d, int attr, const void *buf, size_t n) { put(101); put(attr); put(n); put(bytes(buf, n)); return 0; }
int cublasLtMatrixLayoutCreate(void **l, int type, unsigned long long rows, unsigned long long cols, long long ld) {
  put(200); put(type); put(rows); put(cols); put(ld); *l = fresh(); return 0; }
int cublasLtMatrixLayoutDestroy(void *l) { live--; return 0; }
int cublasLtMatrixLayoutSetAttribute(void *l, int attr, const void *buf, size_t n) { put(201); put(attr); put(n); put(bytes(buf, n)); return 0; }
int cublasLtMatmulPreferenceCreate(void **p) { put(300); *p = fresh(); return 0; }
int cublasLtMatmulPreferenceDestroy(void *p) { live--; return 0; }
int cublasLtMatmulPreferenceSetAttribute(void *p, int attr, const void *buf, size_t n) { put(301); put(attr); put(n); put(bytes(buf, n)); return 0; }
typedef struct { unsigned char algo[64]; size_t workspaceSize; int state; float waves; int reserved[4]; } result_t;
_Static_assert(sizeof(result_t) == 96, "cublasLtMatmulHeuristicResult_t is 96 bytes");
int cublasLtMatmulAlgoGetHeuristic(void *h, void *op, void *a, void *b, void *c, void *d, void *pref, int requested, result_t *r, int *ret) {
  put(400); put(requested);
  if (mode == 1) return 15;
  if (mode == 2) { *ret = 0; return 0; }
  for (int i = 0; i < 64; i++) r[0].algo[i] = (unsigned char)(i + 1);
  r[0].workspaceSize = 4096; r[0].state = mode == 3 ? 15 : 0; r[0].waves = 1.5f; *ret = 1; return 0; }
int cublasLtMatmul(void *h, void *desc, const float *alpha, unsigned long long A, void *ad, unsigned long long B, void *bd,
    const float *beta, unsigned long long C, void *cd, unsigned long long D, void *dd, const unsigned char *algo,
    unsigned long long ws, size_t wsSize, void *stream) {
  put(500); put((long long)(*alpha * 1000)); put((long long)(*beta * 1000)); put(A); put(id(ad)); put(B); put(id(bd)); put(C); put(id(cd));
  put(D); put(id(dd)); put(algo[0]); put(algo[63]); put(ws); put(wsSize); put((long long)stream); return matmul_status; }
`;
