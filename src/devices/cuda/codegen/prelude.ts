// CUDA C++ shared by generated kernels. It compiles under NVRTC (no headers: NAN, INFINITY and
// isfinite are spelled out here) and under nvcc (the compile check in the tests). Generated code
// includes only the parts it uses, to keep NVRTC's parse time small.

/**
 * Types, NaN-aware helpers and the store conversions that give castScalar's results (bool: x != 0, so
 * NaN is true; integers wrap modulo 2^32 as JS's ToInt32, without the undefined float-to-integer
 * conversion of out-of-range values). int32 arithmetic (sk_iadd ... sk_ipow) works in unsigned, where
 * C++ defines wrap-around, and converts back (two's complement); negative integer powers give what
 * the reference's truncated float power gives: 1 for base 1, +-1 for base -1, else 0.
 */
export const COMMON = String.raw`
typedef long long i64;
#define DEV static __device__ __forceinline__
#define DEVM __device__ __forceinline__
#define SK_INF_F __int_as_float(0x7f800000)
#define SK_NAN_F __int_as_float(0x7fffffff)
#define SK_INF_D __longlong_as_double(0x7ff0000000000000LL)
#define SK_NAN_D __longlong_as_double(0x7ff8000000000000LL)
template<class X> DEV bool sk_finite(X x) { return x - x == 0; }
template<class T> DEV T sk_max(T a, T b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
template<class T> DEV T sk_min(T a, T b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }
DEV float sk_exp(float x) { return expf(x); }
DEV double sk_exp(double x) { return exp(x); }
DEV float sk_log(float x) { return logf(x); }
DEV double sk_log(double x) { return log(x); }
template<class X> DEV float st_float32(X v) { return (float)v; }
template<class X> DEV double st_float64(X v) { return (double)v; }
DEV unsigned int sk_wrap32(double v) {
  if (!sk_finite(v)) return 0u;
  if (v > -9.2e18 && v < 9.2e18) return (unsigned int)(unsigned long long)(i64)v;
  const double m = fmod(trunc(v), 4294967296.0);
  return (unsigned int)(m < 0 ? m + 4294967296.0 : m);
}
template<class X> DEV int st_int32(X v) { return (int)v; }
DEV int st_int32(float v) { return (int)sk_wrap32((double)v); }
DEV int st_int32(double v) { return (int)sk_wrap32(v); }
template<class X> DEV unsigned char st_uint8(X v) { return (unsigned char)v; }
DEV unsigned char st_uint8(float v) { return (unsigned char)sk_wrap32((double)v); }
DEV unsigned char st_uint8(double v) { return (unsigned char)sk_wrap32(v); }
template<class X> DEV unsigned char st_bool(X v) { return v != 0 ? 1 : 0; }
DEV int sk_iadd(int a, int b) { return (int)((unsigned int)a + (unsigned int)b); }
DEV int sk_isub(int a, int b) { return (int)((unsigned int)a - (unsigned int)b); }
DEV int sk_imul(int a, int b) { return (int)((unsigned int)a * (unsigned int)b); }
DEV int sk_ineg(int a) { return (int)(0u - (unsigned int)a); }
DEV int sk_iabs(int a) { return a < 0 ? sk_ineg(a) : a; }
DEV unsigned int sk_upow(unsigned int x, unsigned int e) { unsigned int r = 1u; for (; e != 0u; e >>= 1) { if (e & 1u) r *= x; x *= x; } return r; }
DEV int sk_ipow(int a, int b) { return b >= 0 ? (int)sk_upow((unsigned int)a, (unsigned int)b) : (a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0); }
DEV unsigned char sk_u8pow(unsigned char a, unsigned char b) { return (unsigned char)sk_upow(a, b); }
// bfloat16 storage: read as float (exact), assigned from float with rounding to nearest, ties to even (NaN kept quiet).
struct sk_bf16 {
  unsigned short bits;
  sk_bf16() = default;
  DEVM sk_bf16(float f) {
    const unsigned int u = __float_as_uint(f);
    bits = (unsigned short)((u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16));
  }
  DEVM operator float() const { return __uint_as_float((unsigned int)bits << 16); }
};
template<class X> DEV sk_bf16 st_bfloat16(X v) { return sk_bf16((float)v); }
DEV float sk_pymod(float a, float b) { const float m = fmodf(a, b); return (m != 0 && ((m < 0) != (b < 0))) ? m + b : m; }
DEV double sk_pymod(double a, double b) { const double m = fmod(a, b); return (m != 0 && ((m < 0) != (b < 0))) ? m + b : m; }
`;

/** Four consecutive elements, loaded and stored with one 16-byte (or 4-byte for bytes) access. */
export const VEC = String.raw`
template<class T> struct V4 { T v[4]; };
template<class T> DEV V4<T> sk_splat4(T x) { V4<T> r; r.v[0] = x; r.v[1] = x; r.v[2] = x; r.v[3] = x; return r; }
DEV V4<float> sk_ld4(const float* p) { float4 q = *reinterpret_cast<const float4*>(p); V4<float> r; ` +
  String.raw`r.v[0] = q.x; r.v[1] = q.y; r.v[2] = q.z; r.v[3] = q.w; return r; }
DEV V4<int> sk_ld4(const int* p) { int4 q = *reinterpret_cast<const int4*>(p); V4<int> r; r.v[0] = q.x; r.v[1] = q.y; r.v[2] = q.z; r.v[3] = q.w; return r; }
DEV V4<double> sk_ld4(const double* p) { double2 a = reinterpret_cast<const double2*>(p)[0]; ` +
  String.raw`double2 b = reinterpret_cast<const double2*>(p)[1]; V4<double> r; r.v[0] = a.x; r.v[1] = a.y; r.v[2] = b.x; r.v[3] = b.y; return r; }
DEV V4<unsigned char> sk_ld4(const unsigned char* p) { uchar4 q = *reinterpret_cast<const uchar4*>(p); V4<unsigned char> r; ` +
  String.raw`r.v[0] = q.x; r.v[1] = q.y; r.v[2] = q.z; r.v[3] = q.w; return r; }
DEV void sk_st4(float* p, V4<float> r) { float4 q; q.x = r.v[0]; q.y = r.v[1]; q.z = r.v[2]; q.w = r.v[3]; *reinterpret_cast<float4*>(p) = q; }
DEV void sk_st4(int* p, V4<int> r) { int4 q; q.x = r.v[0]; q.y = r.v[1]; q.z = r.v[2]; q.w = r.v[3]; *reinterpret_cast<int4*>(p) = q; }
DEV void sk_st4(double* p, V4<double> r) { double2 a, b; a.x = r.v[0]; a.y = r.v[1]; b.x = r.v[2]; b.y = r.v[3]; ` +
  String.raw`reinterpret_cast<double2*>(p)[0] = a; reinterpret_cast<double2*>(p)[1] = b; }
DEV V4<sk_bf16> sk_ld4(const sk_bf16* p) { uint2 q = *reinterpret_cast<const uint2*>(p); V4<sk_bf16> r; ` +
  String.raw`r.v[0].bits = (unsigned short)q.x; r.v[1].bits = (unsigned short)(q.x >> 16); r.v[2].bits = (unsigned short)q.y; ` +
  String.raw`r.v[3].bits = (unsigned short)(q.y >> 16); return r; }
DEV void sk_st4(sk_bf16* p, V4<sk_bf16> r) { uint2 q; q.x = r.v[0].bits | ((unsigned int)r.v[1].bits << 16); ` +
  String.raw`q.y = r.v[2].bits | ((unsigned int)r.v[3].bits << 16); *reinterpret_cast<uint2*>(p) = q; }
DEV void sk_st4(unsigned char* p, V4<unsigned char> r) { uchar4 q; q.x = r.v[0]; q.y = r.v[1]; q.z = r.v[2]; q.w = r.v[3]; *reinterpret_cast<uchar4*>(p) = q; }
`;

/**
 * Reductions over [rows, n] (sk_rows: a group of G = 32 or 256 threads per row) and over
 * [outer, n, inner] (sk_cols: 32 columns x 8 slices of n per block). R is a functor struct with
 * Acc, Aux, Out, init(), map(x, j, aux), comb(a, b) and fin(acc, count, aux). With splits > 1 a
 * first pass (final = 0) writes Acc partials laid out [rows][splits] / [outer][splits][inner],
 * and a second pass (FIRST false, reading Acc) reduces them with n = splits.
 */
export const REDUCE = String.raw`
template<class R, bool FIRST, class TI>
DEV void sk_rows(const TI* __restrict__ x, const typename R::Aux* __restrict__ aux, void* __restrict__ out,
                 i64 rows, i64 n, i64 count, i64 splits, int G, int final) {
  typedef typename R::Acc Acc;
  __shared__ Acc sh[256];
  const int lane = threadIdx.x % G;
  const i64 groups = blockDim.x / G;
  const i64 units = rows * splits;
  const i64 chunk = (n + splits - 1) / splits;
  for (i64 base = (i64)blockIdx.x * groups; base < units; base += (i64)gridDim.x * groups) {
    const i64 u = base + threadIdx.x / G;
    Acc acc = R::init();
    typename R::Aux a = typename R::Aux();
    if (u < units) {
      const i64 row = u / splits, s = u % splits;
      if (aux) a = aux[row];
      const i64 lo = s * chunk;
      const i64 hi = lo + chunk < n ? lo + chunk : n;
      const TI* xr = x + row * n;
#pragma unroll 4
      for (i64 j = lo + lane; j < hi; j += G) {
        if constexpr (FIRST) acc = R::comb(acc, R::map(xr[j], j, a)); else acc = R::comb(acc, xr[j]);
      }
    }
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int w = G / 2; w > 0; w >>= 1) {
      if (lane < w) sh[threadIdx.x] = R::comb(sh[threadIdx.x], sh[threadIdx.x + w]);
      __syncthreads();
    }
    if (lane == 0 && u < units) {
      if (final) ((typename R::Out*)out)[u] = R::fin(sh[threadIdx.x], count, a);
      else ((Acc*)out)[u] = sh[threadIdx.x];
    }
    __syncthreads();
  }
}

template<class R, bool FIRST, class TI>
DEV void sk_cols(const TI* __restrict__ x, const typename R::Aux* __restrict__ aux, void* __restrict__ out,
                 i64 outer, i64 n, i64 inner, i64 count, i64 splits, int final) {
  typedef typename R::Acc Acc;
  __shared__ Acc sh[8][33];
  const int tx = threadIdx.x % 32, ty = threadIdx.x / 32;
  const i64 tiles = (inner + 31) / 32;
  const i64 units = outer * tiles * splits;
  const i64 chunk = (n + splits - 1) / splits;
  for (i64 u = blockIdx.x; u < units; u += gridDim.x) {
    const i64 s = u % splits, rest = u / splits;
    const i64 o = rest / tiles, i = (rest % tiles) * 32 + tx;
    Acc acc = R::init();
    typename R::Aux a = typename R::Aux();
    if (i < inner) {
      if (aux) a = aux[o * inner + i];
      const i64 lo = s * chunk;
      const i64 hi = lo + chunk < n ? lo + chunk : n;
      const TI* xp = x + o * n * inner + i;
#pragma unroll 4
      for (i64 j = lo + ty; j < hi; j += 8) {
        if constexpr (FIRST) acc = R::comb(acc, R::map(xp[j * inner], j, a)); else acc = R::comb(acc, xp[j * inner]);
      }
    }
    sh[ty][tx] = acc;
    __syncthreads();
    for (int w = 4; w > 0; w >>= 1) {
      if (ty < w) sh[ty][tx] = R::comb(sh[ty][tx], sh[ty + w][tx]);
      __syncthreads();
    }
    if (ty == 0 && i < inner) {
      if (final) ((typename R::Out*)out)[o * inner + i] = R::fin(sh[0][tx], count, a);
      else ((Acc*)out)[(o * splits + s) * inner + i] = sh[0][tx];
    }
    __syncthreads();
  }
}
`;

/** Softmax / logSoftmax along the last axis (a group per row) or a middle axis (a thread per column). */
export const SOFTMAX = String.raw`
struct SkMaxOp { template<class T> DEVM T operator()(T a, T b) const { return b > a ? b : a; } };
struct SkSumOp { template<class T> DEVM T operator()(T a, T b) const { return a + b; } };
template<class T, class F> DEV T sk_group(T* sh, T v, F f, int G) {
  const int lane = threadIdx.x % G;
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int w = G / 2; w > 0; w >>= 1) {
    if (lane < w) sh[threadIdx.x] = f(sh[threadIdx.x], sh[threadIdx.x + w]);
    __syncthreads();
  }
  T r = sh[threadIdx.x - lane];
  __syncthreads();
  return r;
}
template<class TC, bool LOG, class TI, class TO>
DEV void sk_softmax_rows(const TI* __restrict__ x, TO* __restrict__ out, i64 rows, i64 n, int G) {
  __shared__ TC sh[256];
  const int lane = threadIdx.x % G;
  const i64 groups = blockDim.x / G;
  for (i64 base = (i64)blockIdx.x * groups; base < rows; base += (i64)gridDim.x * groups) {
    const i64 r = base + threadIdx.x / G;
    const bool on = r < rows;
    const TI* xr = x + (on ? r : 0) * n;
    TO* orow = out + (on ? r : 0) * n;
    TC m = -(TC)SK_INF_D;
    if (on) for (i64 j = lane; j < n; j += G) { TC v = (TC)xr[j]; if (v > m) m = v; }
    m = sk_group(sh, m, SkMaxOp(), G);
    const TC shift = sk_finite(m) ? m : (TC)0;
    TC s = 0;
    if (on) for (i64 j = lane; j < n; j += G) s += sk_exp((TC)xr[j] - shift);
    s = sk_group(sh, s, SkSumOp(), G);
    const TC ls = sk_log(s);
    if (on) for (i64 j = lane; j < n; j += G) {
      const TC d = (TC)xr[j] - shift;
      if constexpr (LOG) orow[j] = (TO)(d - ls); else orow[j] = (TO)(sk_exp(d) / s);
    }
  }
}
template<class TC, bool LOG, class TI, class TO>
DEV void sk_softmax_cols(const TI* __restrict__ x, TO* __restrict__ out, i64 outer, i64 n, i64 inner) {
  const i64 total = outer * inner;
  for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (i64)gridDim.x * blockDim.x) {
    const i64 base = (t / inner) * n * inner + t % inner;
    TC m = -(TC)SK_INF_D;
    for (i64 j = 0; j < n; j++) { TC v = (TC)x[base + j * inner]; if (v > m) m = v; }
    const TC shift = sk_finite(m) ? m : (TC)0;
    TC s = 0;
    for (i64 j = 0; j < n; j++) s += sk_exp((TC)x[base + j * inner] - shift);
    const TC ls = sk_log(s);
    for (i64 j = 0; j < n; j++) {
      const TC d = (TC)x[base + j * inner] - shift;
      if constexpr (LOG) out[base + j * inner] = (TO)(d - ls); else out[base + j * inner] = (TO)(sk_exp(d) / s);
    }
  }
}
`;
