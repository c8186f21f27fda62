// Runners for elementwise work: `fused` steps and plain elementwise ops (a one-step kernel), both
// through the generated loops of fused-codegen.ts. At run time the output shape is broadcast from
// the inputs' shapes, size-1 output axes are dropped and neighbouring axes merged wherever every
// input is laid out contiguously across them, so same-shaped inputs (and scalars) give one flat
// loop and the common broadcasts (bias rows, per-row columns) a two-level one. Float chains over
// at most two collapsed axes run in WebAssembly SIMD (wasm-chain.ts) once they are large enough
// to repay the copies through wasm memory.
import { NDArray, sizeOf, type Shape } from '../../tensor/ndarray.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import type { Attrs } from '../../tensor/variable.js';
import { broadcastShapes, broadcastStrides } from '../../ops/broadcast.js';
import type { FusedAttrs } from '../../ops/fused.js';
import { getKernel, type GeneratedKernel, type InnerKind, type ScalarStep } from './fused-codegen.js';
import { reference, type Kernel, type StepInfo, type StepRunner } from './kernel-types.js';
import { WASM_F32_UNARY } from './wasm-tanh.js';
import { chainLane, type Lane } from './wasm-chain.js';
import { ChainKernel, type ChainInput } from './wasm-chain-driver.js';

/**
 * Below this many elements the generated JavaScript loop wins (a WebAssembly call and its copies
 * cost about a microsecond; bench/fused.ts, section kernels, measures the crossover).
 */
export const WASM_MIN_ELEMENTS = 1024;
/** Rows narrower than this that are not whole vectors are copied one by one: slower than JavaScript below it. */
export const WASM_MIN_PADDED_ROW = 256;

/** Whether a rows x inner pass pays in WebAssembly (lanes: values per vector). */
export function wasmPays(rows: number, inner: number, lanes: number): boolean {
  return rows * inner >= WASM_MIN_ELEMENTS && (rows === 1 || inner % lanes === 0 || inner >= WASM_MIN_PADDED_ROW);
}

/** The collapsed iteration space of one broadcast. */
export interface Layout {
  readonly ndim: number;
  readonly shape: number[];
  /** Per input, ndim strides (flat, input-major). */
  readonly strides: number[];
  readonly inner: InnerKind[];
}

/** Drops size-1 output axes and merges axes that every input walks contiguously (or not at all). */
export function collapseLayout(outShape: Shape, inputShapes: readonly Shape[]): Layout {
  const k = inputShapes.length;
  const full = inputShapes.map((s) => broadcastStrides(s, outShape));
  const dims: number[] = [];
  const st: number[][] = inputShapes.map(() => []);
  outShape.forEach((d, ax) => {
    if (d === 1) return;
    dims.push(d);
    for (let j = 0; j < k; j++) st[j]!.push(full[j]![ax]!);
  });
  if (dims.length === 0) {
    dims.push(1);
    for (let j = 0; j < k; j++) st[j]!.push(0);
  }
  // Merge from the innermost axis outwards: axis ax joins the group to its right when, for every
  // input, its stride equals the group's stride times the group's size.
  const gDims: number[] = [dims[dims.length - 1]!];
  const gSt: number[][] = st.map((s) => [s[s.length - 1]!]);
  for (let ax = dims.length - 2; ax >= 0; ax--) {
    const mergeable = st.every((s, j) => s[ax] === gSt[j]![0]! * gDims[0]!);
    if (mergeable) gDims[0]! *= dims[ax]!;
    else {
      gDims.unshift(dims[ax]!);
      for (let j = 0; j < k; j++) gSt[j]!.unshift(st[j]![ax]!);
    }
  }
  const inner: InnerKind[] = gSt.map((s) => {
    const last = s[s.length - 1]!;
    if (last === 1) return 's';
    if (last === 0) return 'z';
    throw new RangeError(`internal: inner stride ${last} of a contiguous input`);
  });
  return { ndim: gDims.length, shape: gDims, strides: gSt.flat(), inner };
}

const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** A layout as the WebAssembly driver walks it: rows x inner, each input advancing per row or not. */
export interface RowLayout {
  readonly rows: number;
  readonly inner: number;
  readonly kinds: readonly InnerKind[];
  readonly advance: readonly boolean[];
}

/**
 * The row form of a collapsed layout, or null when it has more than two axes. With two, an 's'
 * input advances by a whole row or repeats it (outer stride inner or 0), a 'z' one by one value
 * (a column) or not at all (a scalar); collapseLayout gives nothing else.
 */
export function rowLayout(layout: Layout): RowLayout | null {
  if (layout.ndim === 1) return { rows: 1, inner: layout.shape[0]!, kinds: layout.inner, advance: layout.inner.map((k) => k === 's') };
  if (layout.ndim !== 2) return null;
  const inner = layout.shape[1]!;
  const advance: boolean[] = [];
  for (let j = 0; j < layout.inner.length; j++) {
    const outer = layout.strides[j * 2]!;
    const step = layout.inner[j] === 's' ? inner : 1;
    if (outer !== 0 && outer !== step) return null;
    advance.push(outer !== 0);
  }
  return { rows: layout.shape[0]!, inner, kinds: layout.inner, advance };
}

/** A row layout, possibly repeated over an outer axis (each input's stride along it; 0: the same rows again). */
export interface OuterRowLayout {
  readonly rows: RowLayout;
  readonly outer: number;
  readonly outerStrides: readonly number[];
}

/** The row layout of `layout`, or of its inner two axes repeated over its first when it has three; null otherwise. */
export function outerRowLayout(layout: Layout): OuterRowLayout | null {
  const rl = rowLayout(layout);
  if (rl !== null) return { rows: rl, outer: 1, outerStrides: layout.inner.map(() => 0) };
  if (layout.ndim !== 3) return null;
  const n = layout.inner.length;
  const strides = Array.from({ length: n }, (_, j) => [layout.strides[j * 3 + 1]!, layout.strides[j * 3 + 2]!]).flat();
  const inner = rowLayout({ ndim: 2, shape: layout.shape.slice(1), strides, inner: layout.inner });
  if (inner === null) return null;
  return { rows: inner, outer: layout.shape[0]!, outerStrides: Array.from({ length: n }, (_, j) => layout.strides[j * 3]!) };
}

/**
 * The WebAssembly form of an elementwise chain with one result, once its row layout is known. A
 * layout of three axes whose inner two form a row layout (a per-channel bias on NCHW: images x
 * channels x pixels, the bias advancing per channel and repeating per image) runs as one row pass
 * per index of the outer axis, over views of the inputs that walk it.
 */
export class WasmChainRunner {
  private kernel: ChainKernel | null = null;
  private rows = 0;
  private inner = 0;
  /** Passes over the outer axis (1: a plain row layout), and each input's stride along it. */
  private outer = 1;
  private outerStrides: readonly number[] = [];
  private readonly ins: { data: TypedArray; kind: InnerKind; advance: boolean }[];
  private readonly outs: TypedArray[] = [];

  constructor(private readonly steps: readonly ScalarStep[], private readonly lane: Lane, nIn: number) {
    this.ins = Array.from({ length: nIn }, () => ({ data: new Float32Array(0), kind: 's' as InnerKind, advance: true }));
  }

  /** Adopts a layout; false (and no kernel) when the layout is not a row layout or too small to pay. */
  setLayout(layout: Layout): boolean {
    const split = outerRowLayout(layout);
    const rl = split?.rows ?? null;
    this.outer = split?.outer ?? 1;
    this.outerStrides = split?.outerStrides ?? [];
    if (rl === null || !wasmPays(rl.rows, rl.inner, this.lane === 'f32' ? 4 : 2)) {
      this.kernel = null;
      return false;
    }
    this.rows = rl.rows;
    this.inner = rl.inner;
    rl.kinds.forEach((k, j) => {
      this.ins[j]!.kind = k;
      this.ins[j]!.advance = rl.advance[j]!;
    });
    const last = this.steps.length - 1;
    this.kernel = new ChainKernel({ steps: this.steps, lane: this.lane, inner: rl.kinds, advance: rl.advance, stores: [last], colsum: -1 });
    return true;
  }

  get ready(): boolean {
    return this.kernel !== null;
  }

  run(inputs: readonly NDArray[], out: TypedArray): void {
    if (this.outer === 1) {
      for (let j = 0; j < inputs.length; j++) this.ins[j]!.data = inputs[j]!.data;
      this.outs[0] = out;
      this.kernel!.run(this.rows, this.inner, this.ins as readonly ChainInput[], this.outs, null);
      return;
    }
    const block = this.rows * this.inner;
    for (let o = 0; o < this.outer; o++) {
      for (let j = 0; j < inputs.length; j++) {
        const d = inputs[j]!.data, st = this.outerStrides[j]!;
        this.ins[j]!.data = st === 0 ? d : d.subarray(o * st);
      }
      this.outs[0] = out.subarray(o * block, (o + 1) * block);
      this.kernel!.run(this.rows, this.inner, this.ins as readonly ChainInput[], this.outs, null);
    }
  }
}

/**
 * A runner evaluating `steps` elementwise over broadcast inputs into a `dtype` result. Broadcast
 * errors are raised by `explain` (the reference perform), so messages name the same op as there.
 */
export function elementwiseRunner(
  steps: readonly ScalarStep[], inputDtypes: readonly DType[], dtype: DType, opName: string, explain: (inputs: readonly NDArray[]) => NDArray,
  simd = true,
): StepRunner {
  let lastShapes: Shape[] | null = null;
  let outShape: number[] = [];
  let layout: Layout | null = null;
  let kernel: GeneratedKernel | null = null;
  let idx = new Int32Array(1);
  const datas: TypedArray[] = new Array<TypedArray>(inputDtypes.length);
  // A lone float32 op with a WebAssembly SIMD version (tanh) runs that over contiguous input.
  const only = steps.length === 1 ? steps[0]! : undefined;
  const wasm = only && dtype === 'float32' && inputDtypes.length === 1 && inputDtypes[0] === 'float32' ? WASM_F32_UNARY[only.op] : undefined;
  const lane = simd && (dtype === 'float32' || dtype === 'float64') ? chainLane(steps, inputDtypes, [steps.length - 1]) : null;
  const chain = lane === null ? null : new WasmChainRunner(steps, lane, inputDtypes.length);
  let useChain = false;
  return (inputs, rt) => {
    if (lastShapes === null || !inputs.every((a, j) => sameShape(a.shape, lastShapes![j]!))) {
      try {
        outShape = broadcastShapes(opName, inputs.map((a) => a.shape));
      } catch {
        return explain(inputs);
      }
      lastShapes = inputs.map((a) => a.shape);
      layout = collapseLayout(outShape, lastShapes);
      kernel = getKernel({ steps, inputDtypes, nd: layout.ndim > 1, inner: layout.inner });
      if (idx.length < layout.ndim) idx = new Int32Array(layout.ndim);
      useChain = chain !== null && chain.setLayout(layout);
    }
    const n = sizeOf(outShape);
    const out = rt.output(dtype, outShape, true);
    if (n === 0) return out;
    if (useChain) {
      chain!.run(inputs, out.data);
      return out;
    }
    const src = inputs[0]!.data;
    if (wasm !== undefined && layout!.inner[0] === 's' && src instanceof Float32Array && out.data instanceof Float32Array) {
      wasm(src, 0, out.data, 0, n);
      return out;
    }
    for (let j = 0; j < inputs.length; j++) datas[j] = inputs[j]!.data;
    kernel!(out.data, datas, n, layout!.ndim, layout!.shape, layout!.strides, idx);
    return out;
  };
}

/** Plain elementwise ops: a kernel of one step over the op's inputs. */
export const elementwiseKernel: Kernel<Attrs> = (step, cx) => {
  const steps: ScalarStep[] = [{ op: step.op, attrs: step.attrs, args: step.inputTypes.map((_, i) => i), dtype: step.outType.dtype }];
  return elementwiseRunner(steps, step.inputTypes.map((t) => t.dtype), step.outType.dtype, step.op, reference(step), cx.simd !== false);
};

/** A fused group: its recorded steps in one loop. */
export const fusedKernel: Kernel<FusedAttrs> = (step: StepInfo<FusedAttrs>, cx) => {
  const steps: ScalarStep[] = step.attrs.steps.map((s) => ({ op: s.op, attrs: s.attrs, args: s.args, dtype: s.dtype }));
  const inputDtypes = step.inputTypes.map((t) => t.dtype);
  return elementwiseRunner(steps, inputDtypes, step.outType.dtype, 'fused', reference(step as StepInfo), cx.simd !== false);
};

/** broadcastLike(g, like): g broadcast to like's shape (g itself when it already has that shape). */
export const broadcastLikeKernel: Kernel<Attrs> = (step, cx) => {
  const dtype = step.outType.dtype;
  const ref = reference(step);
  // One step reading input 0 only; `like` takes part in the broadcast, which gives like's shape.
  const castStep = [{ op: 'cast', attrs: { dtype }, args: [0], dtype }];
  const copy = elementwiseRunner(castStep, step.inputTypes.map((t) => t.dtype), dtype, 'broadcastLike', ref, cx.simd !== false);
  return (inputs, rt) => {
    const [g, like] = inputs as [NDArray, NDArray];
    if (g.ndim > like.ndim || g.dtype !== dtype || g.shape.some((d, i) => d !== 1 && d !== like.shape[i + like.ndim - g.ndim])) return ref(inputs);
    if (sameShape(g.shape, like.shape)) return g;
    return copy(inputs, rt);
  };
};
