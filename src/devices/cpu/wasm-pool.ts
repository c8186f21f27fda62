// 2x2 max pooling at stride 2 without padding, and its gradient, over float32 planes in
// WebAssembly. The JavaScript loops spend most of their time on mispredicted branches (which of
// four values is the largest is a coin toss on real activations); here every comparison feeds an
// i32 `select` (on the values' bits), which V8 compiles to a conditional move (a float select
// stays a branch: measured 4x slower on the CNN's planes). The rule is the reference's: the first maximum
// in row-major window order, a NaN winning over every number (the first NaN); the gradient goes to
// that one position. Planes are copied through fixed regions of the module's own memory, a block of
// whole planes at a time (the memory never grows, so the views on it stay valid). Rows of at least
// four windows run four windows a turn in SIMD (even and odd columns split by shuffles, the same
// rule as lane masks and bitselects); the last turn of a row overlaps the one before it instead of
// a scalar tail (each window's result depends only on its own inputs, so rewriting it is harmless).
import { Code, encodeModule } from './wasm-emit.js';
import { wasmApi } from './wasm-api.js';

/** Float32 values of the input region (128 KiB) and of the pooled region (a quarter of it). */
const IN_FLOATS = 32768;
const POOLED_AT = IN_FLOATS * 4;
const OUT_AT = POOLED_AT + IN_FLOATS;
const PAGES = Math.ceil((OUT_AT + IN_FLOATS * 4) / 65536);

/** Largest plane (h·w) the module takes; larger ones stay with the JavaScript loops. */
export const WASM_POOL_MAX_PLANE = IN_FLOATS;

const op = (c: Code, ...bytes: number[]): Code => {
  c.bytes.push(...bytes);
  return c;
};
const I32_FROM_F32 = 0xbc, F32_FROM_I32 = 0xbe;
const SELECT = 0x1b, F32_EQ = 0x5b, F32_NE = 0x5c, F32_GT = 0x5e, I32_EQ = 0x46, I32_AND = 0x71, I32_OR = 0x72;

// params: 0 planes, 1 h, 2 w, 3 oh, 4 ow; i32 locals: 5 rowBytes, 6 planeBytes, 7 plane, 8 end, 9 i,
// 10 row, 11 j, 12 a, 13 a2, 14 o, 15 best, 16 t; f32 locals: 17 bv, 18 v, 19 g.
const [H, W, OH, OW, ROWB, PLANEB, PLANE, END, I, ROW, J, A, A2, O, BEST, T, BV, V, G] =
  [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19] as const;

function emitPool(backward: boolean): Code {
  const c = new Code();
  c.get(W).i32(4).mul().set(ROWB);
  c.get(H).get(ROWB).mul().set(PLANEB);
  c.get(0).get(PLANEB).mul().set(END);
  c.i32(0).set(PLANE).i32(0).set(O);
  c.block().loop();
  c.get(PLANE).get(END).ltU().eqz().brIf(1);
  c.i32(0).set(I);
  c.block().loop();
  c.get(I).get(OH).ltU().eqz().brIf(1);
  c.get(PLANE).get(I).get(ROWB).mul().i32(2).mul().add().set(ROW);
  c.i32(0).set(J);
  c.block().loop();
  c.get(J).get(OW).ltU().eqz().brIf(1);
  c.get(ROW).get(J).i32(8).mul().add().tee(A).get(ROWB).add().set(A2);
  c.get(A).f32Load().set(BV);
  if (backward) c.i32(0).set(BEST);
  const taps: [number, number][] = [[A, 0], [A, 4], [A2, 0], [A2, 4]];
  taps.slice(1).forEach(([base, off], k) => {
    c.get(base).f32Load(off).set(V);
    // t = (v > bv || v is NaN) && bv is not NaN
    c.get(V).get(BV); op(c, F32_GT); c.get(V).get(V); op(c, F32_NE); op(c, I32_OR);
    c.get(BV).get(BV); op(c, F32_EQ); op(c, I32_AND); c.set(T);
    // The select on the values' bits: V8 compiles an i32 select to a conditional move.
    c.get(V); op(c, I32_FROM_F32); c.get(BV); op(c, I32_FROM_F32); c.get(T); op(c, SELECT); op(c, F32_FROM_I32); c.set(BV);
    if (backward) { c.i32(k + 1).get(BEST).get(T); op(c, SELECT); c.set(BEST); }
  });
  if (!backward) {
    c.get(O).get(BV).f32Store(POOLED_AT);
  } else {
    c.get(O).f32Load(POOLED_AT).set(G);
    taps.forEach(([base, off], k) => {
      c.get(base).get(G); op(c, I32_FROM_F32); c.i32(0).get(BEST).i32(k); op(c, I32_EQ); op(c, SELECT); op(c, F32_FROM_I32); c.f32Store(OUT_AT + off);
    });
  }
  c.get(O).i32(4).add().set(O);
  c.get(J).i32(1).add().set(J);
  c.br(0).end().end();
  c.get(I).i32(1).add().set(I);
  c.br(0).end().end();
  c.get(PLANE).get(PLANEB).add().set(PLANE);
  c.br(0).end().end();
  return c;
}

// SIMD variant. i32 locals: 5 rowBytes, 6 planeBytes, 7 end, 8 plane, 9 i, 10 row, 11 j, 12 jj, 13 a, 14 a2,
// 15 outBase (the plane's first window, bytes), 16 orow; v128 locals: 17-20 loads, 21-23 taps 1-3, 24 best, 25 take, 26 idx, 27 g.
const S = {
  ROWB: 5, PLANEB: 6, END: 7, PLANE: 8, I: 9, ROW: 10, J: 11, JJ: 12, A: 13, A2: 14, OBASE: 15, OROW: 16, V0: 17, T1: 21, BEST: 24, TAKE: 25, IDX: 26, G: 27,
};
const SHUFFLE = 0x0d, SPLAT_I32 = 0x11, I32X4_EQ = 0x37, F32X4_EQ = 0x41, F32X4_NE = 0x42, F32X4_GT = 0x44;
const V128_AND = 0x4e, V128_OR = 0x50, BITSELECT = 0x52;
/** Byte lanes of i8x16.shuffle picking float lanes `f` (0-3 of the first operand, 4-7 of the second). */
const lanes = (...f: number[]): number[] => f.flatMap((k) => [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3]);
const EVEN = lanes(0, 2, 4, 6), ODD = lanes(1, 3, 5, 7), LO = lanes(0, 4, 1, 5), HI = lanes(2, 6, 3, 7);

function emitPoolSimd(backward: boolean): Code {
  const c = new Code();
  c.get(W).i32(4).mul().set(S.ROWB);
  c.get(H).get(S.ROWB).mul().set(S.PLANEB);
  c.get(0).get(S.PLANEB).mul().set(S.END);
  c.i32(0).set(S.PLANE).i32(0).set(S.OBASE);
  c.block().loop();
  c.get(S.PLANE).get(S.END).ltU().eqz().brIf(1);
  c.i32(0).set(S.I);
  c.block().loop();
  c.get(S.I).get(OH).ltU().eqz().brIf(1);
  c.get(S.PLANE).get(S.I).get(S.ROWB).mul().i32(2).mul().add().set(S.ROW);
  c.get(S.OBASE).get(S.I).get(OW).mul().i32(4).mul().add().set(S.OROW);
  c.i32(0).set(S.J);
  c.block().loop();
  c.get(S.J).get(OW).ltU().eqz().brIf(1);
  // jj = min(j, ow - 4): the last turn overlaps the one before.
  c.get(S.J).get(OW).i32(4).sub().get(S.J).get(OW).i32(4).sub().ltU(); op(c, SELECT); c.set(S.JJ);
  c.get(S.ROW).get(S.JJ).i32(8).mul().add().tee(S.A).get(S.ROWB).add().set(S.A2);
  [[S.A, 0], [S.A, 16], [S.A2, 0], [S.A2, 16]].forEach(([base, off], k) => c.get(base!).v128Load(off).set(S.V0 + k));
  // Taps in window order: top-left (best), top-right, bottom-left, bottom-right.
  c.get(S.V0).get(S.V0 + 1).simdOp(SHUFFLE, ...EVEN).set(S.BEST);
  c.get(S.V0).get(S.V0 + 1).simdOp(SHUFFLE, ...ODD).set(S.T1);
  c.get(S.V0 + 2).get(S.V0 + 3).simdOp(SHUFFLE, ...EVEN).set(S.T1 + 1);
  c.get(S.V0 + 2).get(S.V0 + 3).simdOp(SHUFFLE, ...ODD).set(S.T1 + 2);
  if (backward) c.v128Zero().set(S.IDX);
  for (let k = 0; k < 3; k++) {
    const t = S.T1 + k;
    // take = (t > best || t is NaN) && best is not NaN
    c.get(t).get(S.BEST).simdOp(F32X4_GT).get(t).get(t).simdOp(F32X4_NE).simdOp(V128_OR);
    c.get(S.BEST).get(S.BEST).simdOp(F32X4_EQ).simdOp(V128_AND).set(S.TAKE);
    c.get(t).get(S.BEST).get(S.TAKE).simdOp(BITSELECT).set(S.BEST);
    if (backward) c.i32(k + 1).simdOp(SPLAT_I32).get(S.IDX).get(S.TAKE).simdOp(BITSELECT).set(S.IDX);
  }
  if (!backward) {
    c.get(S.OROW).get(S.JJ).i32(4).mul().add().get(S.BEST).v128Store(POOLED_AT);
  } else {
    c.get(S.OROW).get(S.JJ).i32(4).mul().add().v128Load(POOLED_AT).set(S.G);
    // out_k = g where the window's maximum is tap k, else 0 (reusing the load locals).
    for (let k = 0; k < 4; k++) c.get(S.G).get(S.IDX).i32(k).simdOp(SPLAT_I32).simdOp(I32X4_EQ).simdOp(V128_AND).set(S.V0 + k);
    // Interleave back: top row = taps 0, 1; bottom row = taps 2, 3.
    [[S.A, 0, LO], [S.A, 16, HI], [S.A2, 0, LO], [S.A2, 16, HI]].forEach(([base, off, pick], k) => {
      const first = S.V0 + (k < 2 ? 0 : 2);
      c.get(base as number).get(first).get(first + 1).simdOp(SHUFFLE, ...(pick as number[])).v128Store(OUT_AT + (off as number));
    });
  }
  c.get(S.J).i32(4).add().set(S.J);
  c.br(0).end().end();
  c.get(S.I).i32(1).add().set(S.I);
  c.br(0).end().end();
  c.get(S.PLANE).get(S.PLANEB).add().set(S.PLANE);
  c.get(S.OBASE).get(OH).get(OW).mul().i32(4).mul().add().set(S.OBASE);
  c.br(0).end().end();
  return c;
}

interface PoolExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  pool(planes: number, h: number, w: number, oh: number, ow: number): void;
  poolGrad(planes: number, h: number, w: number, oh: number, ow: number): void;
  poolSimd(planes: number, h: number, w: number, oh: number, ow: number): void;
  poolGradSimd(planes: number, h: number, w: number, oh: number, ow: number): void;
}

interface PoolModule {
  readonly exports: PoolExports;
  readonly input: Float32Array;
  readonly pooled: Float32Array;
  readonly out: Float32Array;
}

let instance: PoolModule | null = null;

function poolModule(): PoolModule {
  if (instance === null) {
    const params = ['i32', 'i32', 'i32', 'i32', 'i32'] as const;
    const locals = [...new Array<'i32'>(12).fill('i32'), 'f32', 'f32', 'f32'] as ('i32' | 'f32')[];
    const simdLocals = [...new Array<'i32'>(12).fill('i32'), ...new Array<'v128'>(11).fill('v128')] as ('i32' | 'v128')[];
    const bytes = encodeModule([
      { name: 'pool', params: [...params], results: [], locals, body: emitPool(false) },
      { name: 'poolGrad', params: [...params], results: [], locals, body: emitPool(true) },
      { name: 'poolSimd', params: [...params], results: [], locals: simdLocals, body: emitPoolSimd(false) },
      { name: 'poolGradSimd', params: [...params], results: [], locals: simdLocals, body: emitPoolSimd(true) },
    ], PAGES);
    const exports = new wasmApi.Instance(new wasmApi.Module(bytes), {}).exports as unknown as PoolExports;
    const buf = exports.memory.buffer;
    instance = {
      exports, input: new Float32Array(buf, 0, IN_FLOATS), pooled: new Float32Array(buf, POOLED_AT, IN_FLOATS / 4),
      out: new Float32Array(buf, OUT_AT, IN_FLOATS),
    };
  }
  return instance;
}

/** y (planes, h/2, w/2) = the 2x2 maxima of x (planes, h, w); h·w at most WASM_POOL_MAX_PLANE. */
export function maxPool2x2F32(x: Float32Array, y: Float32Array, planes: number, h: number, w: number, simd = true): void {
  const m = poolModule();
  const oh = h >> 1, ow = w >> 1, hw = h * w, ohw = oh * ow;
  const pool = simd && ow >= 4 ? m.exports.poolSimd : m.exports.pool;
  const block = Math.floor(IN_FLOATS / hw);
  for (let p = 0; p < planes; p += block) {
    const n = Math.min(block, planes - p);
    m.input.set(x.subarray(p * hw, (p + n) * hw));
    pool(n, h, w, oh, ow);
    y.set(m.pooled.subarray(0, n * ohw), p * ohw);
  }
}

/** gx (planes, h, w) = gy (planes, h/2, w/2) routed to each window's first maximum of x, zeros elsewhere. */
export function maxPool2x2GradF32(x: Float32Array, gy: Float32Array, gx: Float32Array, planes: number, h: number, w: number, simd = true): void {
  const m = poolModule();
  const oh = h >> 1, ow = w >> 1, hw = h * w, ohw = oh * ow;
  const poolGrad = simd && ow >= 4 ? m.exports.poolGradSimd : m.exports.poolGrad;
  const block = Math.floor(IN_FLOATS / hw);
  // An odd last row or column belongs to no window: its zeros are written once here and kept.
  const ragged = (h & 1) === 1 || (w & 1) === 1;
  for (let p = 0; p < planes; p += block) {
    const n = Math.min(block, planes - p);
    m.input.set(x.subarray(p * hw, (p + n) * hw));
    m.pooled.set(gy.subarray(p * ohw, (p + n) * ohw));
    if (ragged) m.out.fill(0, 0, n * hw);
    poolGrad(n, h, w, oh, ow);
    gx.set(m.out.subarray(0, n * hw), p * hw);
  }
}
