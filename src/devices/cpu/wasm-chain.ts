// WebAssembly SIMD code for elementwise chains (the steps of a `fused` op, or of several grouped
// steps, see group-kernels.ts) over float32 (4 lanes) or float64 (2 lanes) values, with any number
// of stored step values and optionally one step's values summed over rows into float64
// accumulators (a bias gradient computed in the same pass as the values it sums).
//
// The function works on a block of `rows` rows of `vecs` vectors laid out by the driver
// (wasm-chain-driver.ts) in one shared memory: per input either a vector per position ('s') or one
// value per row splat over the row ('z'), each advancing from row to row or repeated (a broadcast
// row, a scalar). Values are computed as the reference stores them for the lane's dtype (a bool
// intermediate is the float 0 or 1), so a single op gives the bits of the JavaScript kernel; a
// float32 chain rounds every step to float32 where the JavaScript kernel keeps float64
// intermediates (both within float32 rounding of the float64 oracle).
import { previewValue, type DType } from '../../tensor/dtype.js';
import { Code, encodeModule, type FunctionDef, type ValType } from './wasm-emit.js';
import type { InnerKind, ScalarStep } from './fused-codegen.js';

export type Lane = 'f32' | 'f64';

export interface ChainSignature {
  readonly steps: readonly ScalarStep[];
  readonly lane: Lane;
  /** Per input: read as a vector per position ('s') or one value per row ('z'). */
  readonly inner: readonly InnerKind[];
  /** Per input: whether it moves on from one row to the next (else the same row/value repeats). */
  readonly advance: readonly boolean[];
  /** Step indices whose values are stored, one output region each, in this order. */
  readonly stores: readonly number[];
  /** The step whose values are summed over rows into the accumulators, or -1. */
  readonly colsum: number;
}

const ZERO_ONE: ReadonlySet<string> = new Set(['eq', 'neq', 'lt', 'le', 'gt', 'ge', 'not', 'and', 'or', 'xor', 'cast']);
const COMPARISONS = { eq: 0, neq: 1, lt: 2, gt: 3, le: 4, ge: 5 } as const;
const BINARY = { add: 0, sub: 1, mul: 2, div: 3 } as const;
const UNARY = { abs: 0, neg: 1, sqrt: 2, ceil: 3, floor: 4, round: 5 } as const;
const OTHER: ReadonlySet<string> = new Set(['relu', 'square', 'reciprocal', 'maximum', 'minimum', 'where', 'not', 'and', 'or', 'xor', 'cast']);

/** SIMD opcodes per lane type (WebAssembly SIMD spec numbering). */
const OPS = {
  f32: { cmp: [0x41, 0x42, 0x43, 0x44, 0x45, 0x46], bin: [0xe4, 0xe5, 0xe6, 0xe7], un: [0xe0, 0xe1, 0xe3, 0x67, 0x68, 0x6a], pmax: 0xeb, splat: 0x09 },
  f64: { cmp: [0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c], bin: [0xf0, 0xf1, 0xf2, 0xf3], un: [0xec, 0xed, 0xef, 0x74, 0x75, 0x94], pmax: 0xf7, splat: 0x0a },
} as const;
const V_AND = 0x4e, V_OR = 0x50, V_XOR = 0x51, V_BITSELECT = 0x52, F64X2_PROMOTE_LOW = 0x5f, I8X16_SHUFFLE = 0x0d;

const laneDtype = (lane: Lane): DType => (lane === 'f32' ? 'float32' : 'float64');

/**
 * The lane type a chain can run in, or null: every input of one float dtype, every step of that
 * dtype or bool, ops from the supported set, and logical ops on bool values only. `stores` must
 * name steps of the lane dtype (a bool result needs a Uint8Array).
 */
export function chainLane(steps: readonly ScalarStep[], inputDtypes: readonly DType[], stores: readonly number[]): Lane | null {
  const first = inputDtypes[0];
  const lane: Lane | null = first === 'float32' ? 'f32' : first === 'float64' ? 'f64' : null;
  if (lane === null || inputDtypes.some((d) => d !== first) || steps.length === 0) return null;
  const ld = laneDtype(lane);
  const nIn = inputDtypes.length;
  const dtypeOf = (a: number): DType => (a < nIn ? ld : steps[a - nIn]!.dtype);
  for (const s of steps) {
    if (s.dtype !== ld && s.dtype !== 'bool') return null;
    const known = s.op in COMPARISONS || s.op in BINARY || s.op in UNARY || OTHER.has(s.op);
    if (!known) return null;
    if ((s.op === 'and' || s.op === 'or' || s.op === 'xor') && !s.args.every((a) => dtypeOf(a) === 'bool')) return null;
    if (s.op === 'cast' && s.attrs['dtype'] !== ld && s.attrs['dtype'] !== 'bool') return null;
  }
  if (stores.some((k) => steps[k]?.dtype !== ld)) return null;
  return lane;
}

export function chainKey(sig: ChainSignature): string {
  const steps = sig.steps.map((s) => [s.op, s.attrs, s.args, s.dtype]);
  return JSON.stringify([steps, sig.lane, sig.inner.join(''), sig.advance.map(Number).join(''), sig.stores, sig.colsum]);
}

/** Parameter order of the emitted `chain` function. */
export function chainParams(sig: ChainSignature): string[] {
  return ['rows', 'vecs', ...sig.inner.map((_, j) => `in${j}`), ...sig.stores.map((_, k) => `out${k}`), ...(sig.colsum >= 0 ? ['acc'] : [])];
}

function splatConst(lane: Lane, value: number): Uint8Array {
  return new Uint8Array((lane === 'f32' ? new Float32Array(4).fill(value) : new Float64Array(2).fill(value)).buffer);
}

/** The module (memory imported as env.memory) exporting `chain`, see ChainSignature. */
export function emitChainModule(sig: ChainSignature): Uint8Array {
  return encodeModule([emitChain(sig)], { importFrom: 'env.memory', minPages: 1 });
}

function emitChain(sig: ChainSignature): FunctionDef {
  const { steps, lane, inner, advance, stores, colsum } = sig;
  const ops = OPS[lane];
  const elem = lane === 'f32' ? 4 : 8;
  const nIn = inner.length;
  const params = chainParams(sig);
  const locals: ValType[] = [];
  let next = params.length;
  const local = (t: ValType): number => {
    locals.push(t);
    return next++;
  };
  const ROWS = 0, VECS = 1;
  const inPtr = (j: number): number => 2 + j;
  const outPtr = (k: number): number => 2 + nIn + k;
  const ACC = 2 + nIn + stores.length;
  const r = local('i32'), v = local('i32'), rowBytes = local('i32'), accCur = local('i32');
  const cur = inner.map((kind) => (kind === 's' ? local('i32') : -1));
  const outCur = stores.map(() => local('i32'));
  const val = inner.map(() => local('v128'));
  const ONE = local('v128'), ZERO = local('v128');
  const t = steps.map(() => local('v128'));

  const c = new Code();
  c.v128Const(splatConst(lane, 1)).set(ONE).v128Const(splatConst(lane, 0)).set(ZERO);
  c.get(VECS).i32(16).mul().set(rowBytes);
  c.i32(0).set(r);
  c.loop(); // rows (the driver passes rows >= 1, vecs >= 1)
  inner.forEach((kind, j) => {
    if (kind === 'z') c.get(inPtr(j)).simdOp(ops.splat, ...memarg(elem)).set(val[j]!);
    else c.get(inPtr(j)).set(cur[j]!);
  });
  stores.forEach((_, k) => c.get(outPtr(k)).set(outCur[k]!));
  if (colsum >= 0) c.get(ACC).set(accCur);
  c.get(VECS).set(v);
  c.loop(); // vectors of the row
  inner.forEach((kind, j) => {
    if (kind === 's') c.get(cur[j]!).v128Load().set(val[j]!);
  });
  const arg = (a: number): number => (a < nIn ? val[a]! : t[a - nIn]!);
  steps.forEach((s, k) => {
    emitStep(c, s, s.args.map(arg), lane, ONE, ZERO);
    if (s.dtype === 'bool' && !ZERO_ONE.has(s.op)) {
      // As castLine: a bool is +(x !== 0) & +(x === x).
      c.set(t[k]!);
      c.get(t[k]!).get(ZERO).simdOp(ops.cmp[COMPARISONS.neq]).get(t[k]!).get(t[k]!).simdOp(ops.cmp[COMPARISONS.eq]).simdOp(V_AND);
      c.get(ONE).simdOp(V_AND);
    }
    c.set(t[k]!);
  });
  stores.forEach((step, k) => c.get(outCur[k]!).get(t[step]!).v128Store());
  if (colsum >= 0) {
    const x = t[colsum]!;
    if (lane === 'f64') {
      c.get(accCur).get(accCur).v128Load().get(x).simdOp(0xf0).v128Store();
    } else {
      c.get(accCur).get(accCur).v128Load().get(x).simdOp(F64X2_PROMOTE_LOW).simdOp(0xf0).v128Store();
      const high = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
      c.get(accCur).get(accCur).v128Load(16).get(x).get(x).simdOp(I8X16_SHUFFLE, ...high).simdOp(F64X2_PROMOTE_LOW).simdOp(0xf0).v128Store(16);
    }
    c.get(accCur).i32(lane === 'f32' ? 32 : 16).add().set(accCur);
  }
  inner.forEach((kind, j) => {
    if (kind === 's') c.get(cur[j]!).i32(16).add().set(cur[j]!);
  });
  stores.forEach((_, k) => c.get(outCur[k]!).i32(16).add().set(outCur[k]!));
  c.get(v).i32(1).sub().tee(v).brIf(0);
  c.end();
  inner.forEach((kind, j) => {
    if (!advance[j]) return;
    if (kind === 's') c.get(inPtr(j)).get(rowBytes).add().set(inPtr(j));
    else c.get(inPtr(j)).i32(elem).add().set(inPtr(j));
  });
  stores.forEach((_, k) => c.get(outPtr(k)).get(rowBytes).add().set(outPtr(k)));
  c.get(r).i32(1).add().tee(r).get(ROWS).ne().brIf(0);
  c.end();
  return { name: 'chain', params: params.map(() => 'i32' as const), results: [], locals, body: c };
}

function memarg(elem: number): number[] {
  return [elem === 4 ? 2 : 3, 0];
}

/** Leaves the step's value on the stack. */
function emitStep(c: Code, s: ScalarStep, a: readonly number[], lane: Lane, ONE: number, ZERO: number): void {
  const ops = OPS[lane];
  const [x, y, z] = a as [number, number, number];
  const cmp = (which: number, p: number, q: number): Code => c.get(p).get(q).simdOp(ops.cmp[which]!);
  const op = s.op;
  if (op in BINARY) {
    c.get(x).get(y).simdOp(ops.bin[BINARY[op as keyof typeof BINARY]]);
    return;
  }
  if (op in UNARY) {
    c.get(x).simdOp(ops.un[UNARY[op as keyof typeof UNARY]]);
    return;
  }
  if (op in COMPARISONS) {
    cmp(COMPARISONS[op as keyof typeof COMPARISONS], x, y).get(ONE).simdOp(V_AND);
    return;
  }
  switch (op) {
    case 'relu': // pmax(x, 0) is x < 0 ? 0 : x (NaN stays), + 0 turns -0 into +0
      c.get(x).get(ZERO).simdOp(ops.pmax).get(ZERO).simdOp(ops.bin[BINARY.add]);
      return;
    case 'square':
      c.get(x).get(x).simdOp(ops.bin[BINARY.mul]);
      return;
    case 'reciprocal':
      c.get(ONE).get(x).simdOp(ops.bin[BINARY.div]);
      return;
    case 'maximum':
    case 'minimum': // nanMax / nanMin: NaN if either is, else a > b ? a : b (a < b ? a : b)
      c.get(x).get(y).simdOp(ops.bin[BINARY.add]);
      c.get(x).get(y);
      cmp(op === 'maximum' ? COMPARISONS.gt : COMPARISONS.lt, x, y).simdOp(V_BITSELECT);
      cmp(COMPARISONS.neq, x, x);
      cmp(COMPARISONS.neq, y, y).simdOp(V_OR).simdOp(V_BITSELECT);
      return;
    case 'where':
      c.get(y).get(z);
      cmp(COMPARISONS.neq, x, ZERO).simdOp(V_BITSELECT);
      return;
    case 'not':
      cmp(COMPARISONS.eq, x, ZERO).get(ONE).simdOp(V_AND);
      return;
    case 'and':
    case 'or':
    case 'xor': // on 0/1 floats the bitwise ops are the logical ones (0.0 has no bits set)
      c.get(x).get(y).simdOp(op === 'and' ? V_AND : op === 'or' ? V_OR : V_XOR);
      return;
    case 'cast':
      if (s.attrs['dtype'] === 'bool') cmp(COMPARISONS.neq, x, ZERO).get(ONE).simdOp(V_AND);
      else c.get(x);
      return;
    default:
      throw new TypeError(`cpu device: op ${previewValue(op)} has no WebAssembly form (chainLane should have refused it)`);
  }
}
