// 2x2 max pooling at stride 2 without padding, and its gradient, over float32 planes in
// WebAssembly. The JavaScript loops spend most of their time on mispredicted branches (which of
// four values is the largest is a coin toss on real activations); here every comparison feeds an
// i32 `select` (on the values' bits), which V8 compiles to a conditional move (a float select
// stays a branch: measured 4x slower on the CNN's planes). The rule is the reference's: the first maximum
// in row-major window order, a NaN winning over every number (the first NaN); the gradient goes to
// that one position. Planes are copied through fixed regions of the module's own memory, a block of
// whole planes at a time (the memory never grows, so the views on it stay valid).
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

interface PoolExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  pool(planes: number, h: number, w: number, oh: number, ow: number): void;
  poolGrad(planes: number, h: number, w: number, oh: number, ow: number): void;
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
    const bytes = encodeModule([
      { name: 'pool', params: [...params], results: [], locals, body: emitPool(false) },
      { name: 'poolGrad', params: [...params], results: [], locals, body: emitPool(true) },
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
export function maxPool2x2F32(x: Float32Array, y: Float32Array, planes: number, h: number, w: number): void {
  const m = poolModule();
  const oh = h >> 1, ow = w >> 1, hw = h * w, ohw = oh * ow;
  const block = Math.floor(IN_FLOATS / hw);
  for (let p = 0; p < planes; p += block) {
    const n = Math.min(block, planes - p);
    m.input.set(x.subarray(p * hw, (p + n) * hw));
    m.exports.pool(n, h, w, oh, ow);
    y.set(m.pooled.subarray(0, n * ohw), p * ohw);
  }
}

/** gx (planes, h, w) = gy (planes, h/2, w/2) routed to each window's first maximum of x, zeros elsewhere. */
export function maxPool2x2GradF32(x: Float32Array, gy: Float32Array, gx: Float32Array, planes: number, h: number, w: number): void {
  const m = poolModule();
  const oh = h >> 1, ow = w >> 1, hw = h * w, ohw = oh * ow;
  const block = Math.floor(IN_FLOATS / hw);
  // An odd last row or column belongs to no window: its zeros are written once here and kept.
  const ragged = (h & 1) === 1 || (w & 1) === 1;
  for (let p = 0; p < planes; p += block) {
    const n = Math.min(block, planes - p);
    m.input.set(x.subarray(p * hw, (p + n) * hw));
    m.pooled.set(gy.subarray(p * ohw, (p + n) * ohw));
    if (ragged) m.out.fill(0, 0, n * hw);
    m.exports.poolGrad(n, h, w, oh, ow);
    gx.set(m.out.subarray(0, n * hw), p * hw);
  }
}
