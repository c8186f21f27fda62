// Parameter initialisation from a seeded generator: Glorot (Xavier) and He (Kaiming), uniform and
// normal, with Lasagne's fan rules: a matrix (nIn, nOut) has fanIn = nIn, fanOut = nOut; conv filters
// (O, C, KH, KW) have fanIn = C·KH·KW and fanOut = O·KH·KW.
import { NDArray, describe, type Shape } from '../tensor/ndarray.js';
import type { DType } from '../tensor/dtype.js';

/** A small seeded generator (mulberry32 for uniforms, Box-Muller for normals): same seed, same numbers. */
export class Rng {
  private s: number;
  private spare: number | null = null;

  constructor(seed = 0) {
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) throw new TypeError(`Rng: seed must be a safe integer, got ${describe(seed)}`);
    this.s = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.next();
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u = 1 - this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A shuffled copy of 0..n-1 (Fisher-Yates), as an Int32Array ready for `batch`. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** A new generator seeded from this one (for handing independent streams to layers). */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 2 ** 32));
  }
}

/** Options of the initialisers. */
export interface InitOptions {
  /** Seed of a fresh generator, or a generator to draw from (default: seed 0). */
  seed?: number;
  rng?: Rng;
  /** Multiplies the scale (e.g. Math.SQRT2 for Glorot before ReLU). Default 1. */
  gain?: number;
  dtype?: DType;
}

/** fanIn and fanOut of a weight shape (Lasagne's convention). */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new RangeError(`init: a weight needs at least 2 axes to have fans, got shape (${shape.join(', ')})`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return shape.length === 2 ? { fanIn: shape[0]!, fanOut: shape[1]! } : { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

function fill(shape: Shape, options: InitOptions, draw: (r: Rng) => number): NDArray {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new TypeError(`init: shape must be a list of non-negative integers, got ${describe(shape)}`);
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') throw new TypeError(`init: dtype must be float32 or float64, got ${String(dtype)}`);
  const r = options.rng ?? new Rng(options.seed ?? 0);
  const a = new NDArray(dtype, shape);
  for (let i = 0; i < a.size; i++) a.data[i] = draw(r);
  return a;
}

function gainOf(options: InitOptions, fallback: number): number {
  const g = options.gain ?? fallback;
  if (typeof g !== 'number' || !(g > 0) || !Number.isFinite(g)) throw new RangeError(`init: gain must be a positive number, got ${describe(g)}`);
  return g;
}

/** U(-a, a) with a = gain·sqrt(6 / (fanIn + fanOut)). */
export function glorotUniform(shape: Shape, options: InitOptions = {}): NDArray {
  const { fanIn, fanOut } = fans(shape);
  const a = gainOf(options, 1) * Math.sqrt(6 / Math.max(1, fanIn + fanOut));
  return fill(shape, options, (r) => r.uniform(-a, a));
}

/** N(0, s²) with s = gain·sqrt(2 / (fanIn + fanOut)). */
export function glorotNormal(shape: Shape, options: InitOptions = {}): NDArray {
  const { fanIn, fanOut } = fans(shape);
  const s = gainOf(options, 1) * Math.sqrt(2 / Math.max(1, fanIn + fanOut));
  return fill(shape, options, (r) => s * r.normal());
}

/** U(-a, a) with a = gain·sqrt(3 / fanIn), gain sqrt(2) by default (ReLU). */
export function heUniform(shape: Shape, options: InitOptions = {}): NDArray {
  const { fanIn } = fans(shape);
  const a = gainOf(options, Math.SQRT2) * Math.sqrt(3 / Math.max(1, fanIn));
  return fill(shape, options, (r) => r.uniform(-a, a));
}

/** N(0, s²) with s = gain·sqrt(1 / fanIn), gain sqrt(2) by default (ReLU). */
export function heNormal(shape: Shape, options: InitOptions = {}): NDArray {
  const { fanIn } = fans(shape);
  const s = gainOf(options, Math.SQRT2) * Math.sqrt(1 / Math.max(1, fanIn));
  return fill(shape, options, (r) => s * r.normal());
}

/**
 * N(0, s²) with s = gain·sqrt(1 / fanOut), gain sqrt(2) by default: PyTorch's kaiming_normal_(mode='fan_out',
 * nonlinearity='relu'), which torchvision's ResNets use for every convolution.
 */
export function heNormalFanOut(shape: Shape, options: InitOptions = {}): NDArray {
  const { fanOut } = fans(shape);
  const s = gainOf(options, Math.SQRT2) * Math.sqrt(1 / Math.max(1, fanOut));
  return fill(shape, options, (r) => s * r.normal());
}

/** A constant array (biases, batch-norm scales). */
export function constantInit(shape: Shape, value: number, dtype: DType = 'float32'): NDArray {
  return NDArray.full(shape, value, dtype);
}

/** A weight initialiser: an array of `shape` drawn as `options` say. */
export type Initializer = (shape: Shape, options: InitOptions) => NDArray;
/** The initialisers by name, for the `init` option of the layers. */
export const initializers = { glorotUniform, glorotNormal, heUniform, heNormal, heNormalFanOut } as const satisfies Record<string, Initializer>;
/** The name of an initialiser in {@link initializers}. */
export type InitName = keyof typeof initializers;
