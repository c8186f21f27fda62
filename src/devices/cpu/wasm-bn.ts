// WebAssembly SIMD loops of the CPU device's float32 batch-norm kernels (bn-kernels.ts), on the
// thread's heap (wasm-heap.ts). Each function walks `runs` consecutive runs of `inner` values (one
// (n, c) plane of NCHW each), starting at feature c0 and wrapping at `features`: four values a
// turn, then a scalar tail. The statistics accumulate in float64 (two f64x2 accumulators and the
// tail, added per run into a float64 slot per feature); the elementwise results are float32
// arithmetic on float32 parameters that the caller derived in float64. The mean is split in two
// float32 parts, m = mh + ml (mh its rounding, ml the rest), and x - m taken as (x - mh) - ml: x - mh
// is exact where x is near the mean (Sterbenz), so a feature far from zero keeps its small deviations.
//   sums:         out[c] += Σ x
//   centredSums:  out[c] += Σ (x - mean[c])²                      mean: float64 per feature
//   gradSums:     out[c] += Σ gy,  out[features + c] += Σ gy·(x - mean[c])
//   affine:       y = (x - m)·scale + shift  (affineRelu: then max(y, 0), NaN kept)   params mh, ml, scale, shift per c
//   gradInput:    dx = scale·(gy - g0 - (x - m)·k)                params mh, ml, k, scale, g0 per c
// Addresses are bytes; float64 arrays 8-byte aligned; parameters float32, 4 or 5 per feature.
import { Code, encodeModule, type FunctionDef, type ValType } from './wasm-emit.js';
import { wasmApi } from './wasm-api.js';
import type { WasmHeap } from './wasm-heap.js';

const V = {
  shuffle: 0x0d, f32Splat: 0x13, f64Splat: 0x14, f64Lane: 0x21, promoteLow: 0x5f,
  f32Add: 0xe4, f32Sub: 0xe5, f32Mul: 0xe6, f32Max: 0xe9, f64Add: 0xf0, f64Sub: 0xf1, f64Mul: 0xf2,
} as const;
const S = { f32Add: 0x92, f32Sub: 0x93, f32Mul: 0x94, f32Max: 0x97, f64Add: 0xa0, f64Sub: 0xa1, f64Mul: 0xa2, promote: 0xbb } as const;
const HIGH = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

const raw = (c: Code, ...bytes: number[]): Code => {
  c.bytes.push(...bytes);
  return c;
};

/** A function under construction: parameters first, then locals handed out by `local`. */
class Fn {
  readonly c = new Code();
  readonly locals: ValType[] = [];
  constructor(private readonly params: number) {}
  local(type: ValType): number {
    this.locals.push(type);
    return this.params + this.locals.length - 1;
  }
  def(name: string): FunctionDef {
    return { name, params: new Array<ValType>(this.params).fill('i32'), results: [], locals: this.locals, body: this.c };
  }
}

interface Loop { runs: number; inner: number; features: number; c0: number; ptrs: readonly number[] }

/**
 * The run loop: per run `start` (the feature index is in local `C`), `vec` per four values, `tail`
 * per remaining value (the pointer parameters `ptrs` advance by themselves), then `finish`.
 */
function emitRuns(f: Fn, p: Loop, C: number, start: () => void, vec: () => void, tail: () => void, finish: () => void): void {
  const c = f.c;
  const R = f.local('i32'), J = f.local('i32');
  c.get(p.c0).set(C).i32(0).set(R);
  c.block().loop();
  c.get(R).get(p.runs).ltU().eqz().brIf(1);
  start();
  c.i32(0).set(J);
  c.block().loop();
  c.get(p.inner).get(J).i32(4).add().ltU().brIf(1);
  vec();
  for (const q of p.ptrs) c.get(q).i32(16).add().set(q);
  c.get(J).i32(4).add().set(J);
  c.br(0).end().end();
  c.block().loop();
  c.get(J).get(p.inner).ltU().eqz().brIf(1);
  tail();
  for (const q of p.ptrs) c.get(q).i32(4).add().set(q);
  c.get(J).i32(1).add().set(J);
  c.br(0).end().end();
  finish();
  c.get(C).i32(1).add().tee(C).get(p.features).ne().eqz().if().i32(0).set(C).end(); // wraps at features
  c.get(R).i32(1).add().set(R);
  c.br(0).end().end();
}

/** The float32 at `ptr` as a float64 on the stack. */
const loadF64 = (c: Code, ptr: number): Code => raw(c.get(ptr).f32Load(), S.promote);

/** out[c] (float64 at out + c·8 + extra) += the f64x2 accumulators' lanes + the scalar s. */
function addInto(c: Code, out: number, C: number, extra: number, acc: readonly number[], s: number): void {
  c.get(out).get(C).i32(8).mul().add();
  c.get(out).get(C).i32(8).mul().add().f64Load(extra);
  for (const a of acc) for (const lane of [0, 1]) raw(c.get(a).simdOp(V.f64Lane, lane), S.f64Add);
  raw(c.get(s), S.f64Add).f64Store(extra);
}

/** A float32 vector's four values as two f64x2 halves, into locals lo and hi. */
function promote(c: Code, v: number, lo: number, hi: number): void {
  c.get(v).simdOp(V.promoteLow).set(lo);
  c.get(v).get(v).simdOp(V.shuffle, ...HIGH).simdOp(V.promoteLow).set(hi);
}

// sums / centredSums (x, runs, inner, features, c0, out, mean)
function emitSums(centred: boolean): Fn {
  const f = new Fn(7);
  const [X, RUNS, INNER, FEATURES, C0, OUT, MEAN] = [0, 1, 2, 3, 4, 5, 6];
  const c = f.c;
  const C = f.local('i32');
  const [a0, a1, v, lo, hi, mv] = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')];
  const [s, ms, t] = [f.local('f64'), f.local('f64'), f.local('f64')];
  emitRuns(f, { runs: RUNS, inner: INNER, features: FEATURES, c0: C0, ptrs: [X] }, C, () => {
    c.v128Zero().set(a0).v128Zero().set(a1).f64Const(0).set(s);
    if (centred) c.get(MEAN).get(C).i32(8).mul().add().f64Load().tee(ms).simdOp(V.f64Splat).set(mv);
  }, () => {
    c.get(X).v128Load().set(v);
    promote(c, v, lo, hi);
    for (const [h, a] of [[lo, a0], [hi, a1]] as const) {
      if (centred) c.get(h).get(mv).simdOp(V.f64Sub).tee(h).get(h).simdOp(V.f64Mul).set(h);
      c.get(a).get(h).simdOp(V.f64Add).set(a);
    }
  }, () => {
    loadF64(c, X);
    if (centred) { raw(c.get(ms), S.f64Sub).tee(t); raw(c.get(t), S.f64Mul); }
    raw(c.get(s), S.f64Add).set(s);
  }, () => addInto(c, OUT, C, 0, [a0, a1], s));
  return f;
}

// gradSums (x, gy, runs, inner, features, c0, out, mean)
function emitGradSums(): Fn {
  const f = new Fn(8);
  const [X, GY, RUNS, INNER, FEATURES, C0, OUT, MEAN] = [0, 1, 2, 3, 4, 5, 6, 7];
  const c = f.c;
  const C = f.local('i32');
  const vec = (): number => f.local('v128');
  const g0 = vec(), g1 = vec(), p0 = vec(), p1 = vec(), v = vec(), xlo = vec(), xhi = vec(), glo = vec(), ghi = vec(), mv = vec();
  const [sg, sp, ms, t] = [f.local('f64'), f.local('f64'), f.local('f64'), f.local('f64')];
  emitRuns(f, { runs: RUNS, inner: INNER, features: FEATURES, c0: C0, ptrs: [X, GY] }, C, () => {
    for (const a of [g0, g1, p0, p1]) c.v128Zero().set(a);
    c.f64Const(0).set(sg).f64Const(0).set(sp);
    c.get(MEAN).get(C).i32(8).mul().add().f64Load().tee(ms).simdOp(V.f64Splat).set(mv);
  }, () => {
    c.get(X).v128Load().set(v);
    promote(c, v, xlo, xhi);
    c.get(GY).v128Load().set(v);
    promote(c, v, glo, ghi);
    for (const [x, g, ag, ap] of [[xlo, glo, g0, p0], [xhi, ghi, g1, p1]] as const) {
      c.get(ag).get(g).simdOp(V.f64Add).set(ag);
      c.get(ap).get(g).get(x).get(mv).simdOp(V.f64Sub).simdOp(V.f64Mul).simdOp(V.f64Add).set(ap);
    }
  }, () => {
    loadF64(c, GY).tee(t);
    raw(c.get(sg), S.f64Add).set(sg);
    loadF64(c, X);
    raw(c.get(ms), S.f64Sub);
    raw(c.get(t), S.f64Mul);
    raw(c.get(sp), S.f64Add).set(sp);
  }, () => {
    addInto(c, OUT, C, 0, [g0, g1], sg);
    // out[features + c]: the same slot one feature-array further on.
    c.get(OUT).get(FEATURES).i32(8).mul().add().set(OUT);
    addInto(c, OUT, C, 0, [p0, p1], sp);
    c.get(OUT).get(FEATURES).i32(8).mul().sub().set(OUT);
  });
  return f;
}

/** Splats the float32 parameter k of feature C (params: `count` float32 per feature) into v128 local `into`, its scalar into f32 local `scalar`. */
function param(c: Code, params: number, C: number, count: number, k: number, into: number, scalar: number): void {
  c.get(params).get(C).i32(4 * count).mul().add().f32Load(4 * k).tee(scalar).simdOp(V.f32Splat).set(into);
}

// affine / affineRelu (x, y, runs, inner, features, c0, params)
function emitAffine(relu: boolean): Fn {
  const f = new Fn(7);
  const [X, Y, RUNS, INNER, FEATURES, C0, PARAMS] = [0, 1, 2, 3, 4, 5, 6];
  const c = f.c;
  const C = f.local('i32');
  const [mh, ml, sc, sh, zero] = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')];
  const [mhs, mls, scs, shs] = [f.local('f32'), f.local('f32'), f.local('f32'), f.local('f32')];
  c.v128Zero().set(zero);
  emitRuns(f, { runs: RUNS, inner: INNER, features: FEATURES, c0: C0, ptrs: [X, Y] }, C, () => {
    [mh, ml, sc, sh].forEach((into, i) => param(c, PARAMS, C, 4, i, into, [mhs, mls, scs, shs][i]!));
  }, () => {
    c.get(Y).get(X).v128Load().get(mh).simdOp(V.f32Sub).get(ml).simdOp(V.f32Sub).get(sc).simdOp(V.f32Mul).get(sh).simdOp(V.f32Add);
    if (relu) c.get(zero).simdOp(V.f32Max);
    c.v128Store();
  }, () => {
    c.get(Y).get(X).f32Load();
    raw(c.get(mhs), S.f32Sub); raw(c.get(mls), S.f32Sub); raw(c.get(scs), S.f32Mul); raw(c.get(shs), S.f32Add);
    if (relu) raw(c.f32Const(0), S.f32Max);
    c.f32Store();
  }, () => undefined);
  return f;
}

// gradInput (x, gy, dx, runs, inner, features, c0, params)
function emitGradInput(): Fn {
  const f = new Fn(8);
  const [X, GY, DX, RUNS, INNER, FEATURES, C0, PARAMS] = [0, 1, 2, 3, 4, 5, 6, 7];
  const c = f.c;
  const C = f.local('i32');
  const [mh, ml, k, sc, g0] = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')];
  const [mhs, mls, ks, scs, g0s] = [f.local('f32'), f.local('f32'), f.local('f32'), f.local('f32'), f.local('f32')];
  emitRuns(f, { runs: RUNS, inner: INNER, features: FEATURES, c0: C0, ptrs: [X, GY, DX] }, C, () => {
    [mh, ml, k, sc, g0].forEach((into, i) => param(c, PARAMS, C, 5, i, into, [mhs, mls, ks, scs, g0s][i]!));
  }, () => {
    c.get(DX).get(GY).v128Load().get(g0).simdOp(V.f32Sub);
    c.get(X).v128Load().get(mh).simdOp(V.f32Sub).get(ml).simdOp(V.f32Sub).get(k).simdOp(V.f32Mul).simdOp(V.f32Sub);
    c.get(sc).simdOp(V.f32Mul).v128Store();
  }, () => {
    c.get(DX).get(GY).f32Load();
    raw(c.get(g0s), S.f32Sub);
    c.get(X).f32Load();
    raw(c.get(mhs), S.f32Sub); raw(c.get(mls), S.f32Sub); raw(c.get(ks), S.f32Mul); raw(c, S.f32Sub); raw(c.get(scs), S.f32Mul);
    c.f32Store();
  }, () => undefined);
  return f;
}

export interface BnExports {
  sums(x: number, runs: number, inner: number, features: number, c0: number, out: number, mean: number): void;
  centredSums(x: number, runs: number, inner: number, features: number, c0: number, out: number, mean: number): void;
  gradSums(x: number, gy: number, runs: number, inner: number, features: number, c0: number, out: number, mean: number): void;
  affine(x: number, y: number, runs: number, inner: number, features: number, c0: number, params: number): void;
  affineRelu(x: number, y: number, runs: number, inner: number, features: number, c0: number, params: number): void;
  gradInput(x: number, gy: number, dx: number, runs: number, inner: number, features: number, c0: number, params: number): void;
}

const modules = new WeakMap<WasmHeap, BnExports>();

/** The batch-norm functions on `heap`'s memory (compiled once per heap). */
export function bnKernels(heap: WasmHeap): BnExports {
  let m = modules.get(heap);
  if (m === undefined) {
    const bytes = encodeModule([
      emitSums(false).def('sums'), emitSums(true).def('centredSums'), emitGradSums().def('gradSums'),
      emitAffine(false).def('affine'), emitAffine(true).def('affineRelu'), emitGradInput().def('gradInput'),
    ], { importFrom: 'env.memory', minPages: 1 });
    m = new wasmApi.Instance(new wasmApi.Module(bytes), { env: { memory: heap.memoryObject } }).exports as unknown as BnExports;
    modules.set(heap, m);
  }
  return m;
}
