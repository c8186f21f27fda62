// Random draws from a counter-based generator (Philox-4x32-10, Salmon et al., SC'11), so every
// device and every worker computes the same numbers from the same state, with no sequential state.
//
// State: an int32 vector [key0, key1, counterLo, counterHi], one per draw site (a shared variable
// made by T.randomStreams). Element i of a draw reads Philox block (c0, c1, c2, c3) =
// (blockIndex, streamSalt, counterLo, counterHi) under key (key0, key1), all as uint32, where
// streamSalt is 0 on a single device and the rank in a data-parallel worker (so workers draw
// different numbers for their own rows, e.g. different dropout masks):
//   uniform, bernoulli: block i >> 2, word i & 3;  u = (word + 0.5) / 2^32 in (0, 1) for uniform,
//                       u = word / 2^32 in [0, 1) for bernoulli (x = u < p).
//   normal:             block i >> 1, words w1 = 2 (i & 1), w2 = w1 + 1 (Box-Muller, cosine branch):
//                       z = sqrt(-2 ln((w1 + 0.5) / 2^32)) cos(2 pi w2 / 2^32).
// Each call of a compiled function advances the counter by one ('randomAdvance'), so successive
// calls give fresh numbers. Draws are impure (never folded or merged) and disconnected in grad.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { castScalar, isFloat, type DType } from '../tensor/dtype.js';
import type { Attrs } from '../tensor/variable.js';
import { OpRuntimeError, OpTypeError, resolveIntArg, type IntArg, type OpDef } from './op.js';
import { broadcastShapes, forEachBroadcast } from './broadcast.js';

let streamSalt = 0;
/** Set by each data-parallel worker to its rank, so ranks draw independent numbers. */
export function setRandomStreamSalt(salt: number): void {
  streamSalt = salt >>> 0;
}
export function randomStreamSalt(): number {
  return streamSalt;
}

// ---- Philox-4x32-10 -------------------------------------------------------------------------

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 values. */
export function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16, bLo = b & 0xffff, bHi = b >>> 16;
  const lolo = aLo * bLo, hilo = aHi * bLo, lohi = aLo * bHi, hihi = aHi * bHi;
  const cross = (lolo >>> 16) + (hilo & 0xffff) + lohi; // < 2^33, exact in a double
  return (hihi + (hilo >>> 16) + Math.floor(cross / 65536)) >>> 0;
}

/** Philox-4x32-10 of counter (c0..c3) under key (k0, k1); writes four uint32 words into `out`. */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array | number[]): void {
  let x0 = c0 >>> 0, x1 = c1 >>> 0, x2 = c2 >>> 0, x3 = c3 >>> 0;
  let key0 = k0 >>> 0, key1 = k1 >>> 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) { key0 = (key0 + W0) >>> 0; key1 = (key1 + W1) >>> 0; }
    const hi0 = mulhi32(M0, x0), lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi32(M1, x2), lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ key0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ key1) >>> 0;
    x3 = lo0;
  }
  out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

const TWO_POW_M32 = 2 ** -32;

// ---- the draw ops ---------------------------------------------------------------------------

/** A real-valued parameter known at build time, or read (broadcast to the draw's shape) from an input. */
export type ParamArg = number | { readonly input: number };

export type DrawKind = 'uniform' | 'normal' | 'bernoulli';
export const DRAW_PARAMS = { uniform: ['low', 'high'], normal: ['mean', 'std'], bernoulli: ['p'] } as const satisfies Record<DrawKind, readonly string[]>;
export const DRAW_OPS = { uniform: 'randomUniform', normal: 'randomNormal', bernoulli: 'randomBernoulli' } as const satisfies Record<DrawKind, string>;

type DrawAttrs = { readonly dims: readonly IntArg[]; readonly dtype: DType } & Readonly<Record<string, unknown>>;
export type UniformAttrs = DrawAttrs & { readonly low: ParamArg; readonly high: ParamArg };
export type NormalAttrs = DrawAttrs & { readonly mean: ParamArg; readonly std: ParamArg };
export type BernoulliAttrs = DrawAttrs & { readonly p: ParamArg };

function isParamArg(a: unknown): a is ParamArg {
  return typeof a === 'number' || (typeof a === 'object' && a !== null && Number.isInteger((a as { input?: unknown }).input));
}

function checkStateType(op: string, inputs: readonly TensorType[]): void {
  const s = inputs[0];
  if (!s || s.dtype !== 'int32' || s.ndim !== 1)
    throw new OpTypeError(op, inputs, 'input 0 must be the generator state, an int32 vector [key0, key1, counterLo, counterHi]');
}

/** The four state words as uint32, or an error naming the shape. */
function readState(op: string, state: NDArray): [number, number, number, number] {
  if (state.size !== 4) throw new OpRuntimeError(op, `generator state must have shape (4,), got ${shapeToString(state.shape)}`);
  const d = state.data;
  return [d[0]! >>> 0, d[1]! >>> 0, d[2]! >>> 0, d[3]! >>> 0];
}

const f32 = new Float32Array(1), i32 = new Int32Array(f32.buffer);
const f64 = new Float64Array(1), i64 = new BigInt64Array(f64.buffer);
/** The largest float of `dtype` strictly below x (x representable in dtype). */
function nextDown(x: number, dtype: DType): number {
  if (x === 0) return dtype === 'float32' ? -(2 ** -149) : -Number.MIN_VALUE;
  if (dtype === 'float32') { f32[0] = x; i32[0] = x > 0 ? i32[0]! - 1 : i32[0]! + 1; return f32[0]!; }
  f64[0] = x; i64[0] = x > 0 ? i64[0]! - 1n : i64[0]! + 1n; return f64[0]!;
}

type Sampler = (word: (lane: number) => number, params: readonly number[], dtype: DType, i: number) => number;

const SAMPLERS: Record<DrawKind, { perBlock: number; sample: Sampler }> = {
  uniform: {
    perBlock: 4,
    sample(word, [low, high], dtype, i) {
      const u = (word(i & 3) + 0.5) * TWO_POW_M32;
      let v = castScalar(low! + (high! - low!) * u, dtype);
      // Keep the half-open interval [low, high) after rounding to the result dtype.
      if (v >= high! && high! > low!) {
        v = castScalar(high!, dtype);
        while (v >= high!) v = nextDown(v, dtype);
      }
      return v;
    },
  },
  normal: {
    perBlock: 2,
    sample(word, [mean, std], _dtype, i) {
      const lane = 2 * (i & 1);
      const u1 = (word(lane) + 0.5) * TWO_POW_M32;
      const u2 = word(lane + 1) * TWO_POW_M32;
      return mean! + std! * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
  },
  bernoulli: {
    perBlock: 4,
    sample(word, [p], _dtype, i) {
      return word(i & 3) * TWO_POW_M32 < p! ? 1 : 0;
    },
  },
};

function drawOp<A extends DrawAttrs>(kind: DrawKind): OpDef<A> {
  const name = DRAW_OPS[kind];
  const paramNames: readonly string[] = DRAW_PARAMS[kind];
  const { perBlock, sample } = SAMPLERS[kind];
  return {
    name,
    impure: true,
    inferType(inputs, attrs) {
      checkStateType(name, inputs);
      if (!Array.isArray(attrs.dims)) throw new OpTypeError(name, inputs, 'attrs.dims must be a list of dimensions');
      const ndim = attrs.dims.length;
      for (const d of attrs.dims) {
        if (typeof d === 'number') {
          if (!Number.isInteger(d) || d < 0) throw new OpTypeError(name, inputs, `dimension ${d} must be a non-negative integer`);
        } else {
          const t = inputs[d.input];
          if (!t || t.ndim !== 0 || (t.dtype !== 'int32' && t.dtype !== 'uint8'))
            throw new OpTypeError(name, inputs, `dimension input ${d.input} must be an integer scalar`);
        }
      }
      for (const p of paramNames) {
        const a = attrs[p];
        if (!isParamArg(a)) throw new OpTypeError(name, inputs, `parameter ${p} must be a number or an input reference`);
        if (typeof a === 'number') continue;
        const t = inputs[a.input];
        if (!t || a.input === 0) throw new OpTypeError(name, inputs, `parameter ${p} refers to missing input ${a.input}`);
        if (t.ndim > ndim) throw new OpTypeError(name, inputs, `parameter ${p} (${t}) has more axes than the draw (ndim ${ndim})`);
      }
      if (kind !== 'bernoulli' && !isFloat(attrs.dtype))
        throw new OpTypeError(name, inputs, `${kind} draws floats; dtype must be float32 or float64, got ${attrs.dtype}`);
      return new TensorType(attrs.dtype, attrs.dims.map((d) => d === 1));
    },
    perform(inputs, attrs, out) {
      const [k0, k1, cLo, cHi] = readState(name, inputs[0]!);
      const shape = attrs.dims.map((d) => resolveIntArg(d, inputs));
      if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new OpRuntimeError(name, `negative or fractional dimension in shape ${shapeToString(shape)}`);
      const fixed: number[] = [];
      const arrays: NDArray[] = [];
      const slotOf: number[] = []; // per param: -1 for a number, else index into arrays
      for (const p of paramNames) {
        const a = attrs[p] as ParamArg;
        if (typeof a === 'number') { fixed.push(a); slotOf.push(-1); continue; }
        const arr = inputs[a.input]!;
        const b = broadcastShapes(name, [arr.shape, shape]);
        if (b.length !== shape.length || b.some((d, i) => d !== shape[i])) {
          throw new OpRuntimeError(name, `parameter ${p} of shape ${shapeToString(arr.shape)} does not broadcast to the draw's shape ${shapeToString(shape)}`);
        }
        fixed.push(0);
        slotOf.push(arrays.length);
        arrays.push(arr);
      }
      const result = new NDArray(out.dtype, shape);
      const dst = result.data;
      const block = new Uint32Array(4);
      let current = -1;
      const word = (lane: number) => block[lane]!;
      const params = [...fixed];
      forEachBroadcast(shape, arrays.map((a) => a.shape), (i, offsets) => {
        const b = Math.floor(i / perBlock);
        if (b !== current) { philox4x32(b, streamSalt, cLo, cHi, k0, k1, block); current = b; }
        for (let j = 0; j < slotOf.length; j++) { const s = slotOf[j]!; if (s >= 0) params[j] = arrays[s]!.data[offsets[s]!]!; }
        dst[i] = castScalar(sample(word, params, out.dtype, i), out.dtype);
      });
      return result;
    },
    // Draws are disconnected: no gradient to the state, the parameters or the shape.
  } satisfies OpDef<A>;
}

export const randomOps = {
  randomUniform: drawOp<UniformAttrs>('uniform'),
  randomNormal: drawOp<NormalAttrs>('normal'),
  randomBernoulli: drawOp<BernoulliAttrs>('bernoulli'),

  /** The next state: the 64-bit counter (words 2, 3) plus one; the key is kept. */
  randomAdvance: {
    name: 'randomAdvance',
    inferType(inputs) {
      checkStateType('randomAdvance', inputs);
      return inputs[0]!;
    },
    perform(inputs) {
      const [k0, k1, lo, hi] = readState('randomAdvance', inputs[0]!);
      const nextLo = (lo + 1) >>> 0;
      const nextHi = nextLo === 0 ? (hi + 1) >>> 0 : hi;
      return new NDArray('int32', [4], Int32Array.from([k0 | 0, k1 | 0, nextLo | 0, nextHi | 0]));
    },
  } satisfies OpDef<Attrs>,
};
