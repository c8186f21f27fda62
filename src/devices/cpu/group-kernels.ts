// Group steps: several program steps run as one, where one pass over memory can do the work of
// several (group-rules.ts finds them):
//   - chain groups: consecutive elementwise steps (and reshapes), each reading an earlier one: the
//     bias add whose result the ReLU reads and the backward pass keeps, or an optimizer's update
//     (gradient scaling, then the new moments and parameter): one WebAssembly pass storing the
//     values read elsewhere;
//   - bias-gradient groups: an elementwise step (the ReLU mask times the incoming gradient) and the
//     sumToLike over its leading axes (the bias gradient), with an optional sumToLike between them
//     that has nothing to do: the column sums are accumulated in the same pass;
//   - concatenate groups: elementwise steps read only by a concatenate write straight into their
//     part of its result (the flat gradient's scaled parts), no intermediate arrays.
// A group checks its shapes at run time; whatever its fast path does not cover (other shapes,
// small sizes) runs the member steps one after the other with their own kernels, so results are
// always those of the steps alone.
import { NDArray, sizeOf, type Shape } from '../../tensor/ndarray.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import type { TensorType } from '../../tensor/type.js';
import type { Attrs } from '../../tensor/variable.js';
import { getOpDef, isOpName } from '../../ops/apply.js';
import { broadcastShapes } from '../../ops/broadcast.js';
import type { FusedAttrs } from '../../ops/fused.js';
import { StepError } from '../../compile/step-error.js';
import type { ScalarStep } from './fused-codegen.js';
import { KERNELS } from './kernels.js';
import type { CompileContext, GroupRunner, Kernel, RunContext, StepRunner } from './kernel-types.js';
import { collapseLayout, outerRowLayout, wasmPays } from './elementwise-kernel.js';
import { chainLane, type Lane } from './wasm-chain.js';
import { ChainKernel, type ChainInput } from './wasm-chain-driver.js';

/** One program step inside a group. */
export interface MemberStep {
  readonly op: string;
  readonly attrs: Attrs;
  readonly inputs: readonly number[];
  readonly output: number;
  /** The program step it is (errors are reported as raised there). */
  readonly index?: number;
}

/** Runs one member, reporting an error as raised by its own program step. */
export function runMember(m: MemberStep, runner: StepRunner, inputs: readonly NDArray[], rt: RunContext): NDArray {
  try {
    return runner(inputs, rt);
  } catch (e) {
    if (m.index === undefined || e instanceof StepError) throw e;
    throw new StepError(m.index, e instanceof Error ? e : new Error(String(e)));
  }
}

/** Slots the members read that no member writes, in first-use order: a group step's inputs. */
export function externalInputs(members: readonly MemberStep[]): number[] {
  const outputs = new Set(members.map((m) => m.output));
  const ext: number[] = [];
  for (const m of members) for (const i of m.inputs) if (!outputs.has(i) && !ext.includes(i)) ext.push(i);
  return ext;
}

/** The scalar steps of an elementwise or fused step (args: its inputs, then its earlier steps), or null. */
export function scalarStepsOf(m: MemberStep, types: readonly TensorType[]): ScalarStep[] | null {
  const dtype = types[m.output]!.dtype;
  if (m.op === 'fused') return (m.attrs as unknown as FusedAttrs).steps.map((s) => ({ op: s.op, attrs: s.attrs, args: s.args, dtype: s.dtype }));
  if (!isOpName(m.op) || getOpDef(m.op).elementwise === undefined) return null;
  return [{ op: m.op, attrs: m.attrs, args: m.inputs.map((_, i) => i), dtype }];
}

/** Members' chains joined into one over the group's external inputs. */
export interface CombinedChain {
  readonly steps: ScalarStep[];
  /** Slots read from outside the group, in first-use order (the chain's inputs). */
  readonly ext: number[];
  /** Per member, the index of its value's step. */
  readonly finals: number[];
}

/** A reshape to constant dims (a view of its input): a chain member that computes nothing. */
export function isStaticReshape(m: MemberStep): boolean {
  const dims = m.attrs['dims'];
  return m.op === 'reshape' && m.inputs.length === 1 && Array.isArray(dims) && dims.every((d) => Number.isInteger(d) && (d as number) >= 0);
}

export function combineChain(members: readonly MemberStep[], types: readonly TensorType[]): CombinedChain | null {
  const produced = new Map<number, number>();
  const ext: number[] = [];
  members.forEach((m, k) => {
    for (const i of m.inputs) if (!produced.has(i) && !ext.includes(i)) ext.push(i);
    produced.set(m.output, k);
  });
  const nExt = ext.length;
  const steps: ScalarStep[] = [];
  const finals: number[] = [];
  for (const m of members) {
    if (isStaticReshape(m)) {
      // Same values, other shape: the member's value is its input member's.
      const from = produced.get(m.inputs[0]!);
      if (from === undefined || from >= finals.length) return null;
      finals.push(finals[from]!);
      continue;
    }
    const own = scalarStepsOf(m, types);
    if (own === null) return null;
    const base = steps.length;
    const argOf = (a: number): number => {
      if (a >= m.inputs.length) return nExt + base + (a - m.inputs.length);
      const slot = m.inputs[a]!;
      const from = produced.get(slot);
      return from !== undefined && from < finals.length ? nExt + finals[from]! : ext.indexOf(slot);
    };
    for (const s of own) steps.push({ ...s, args: s.args.map(argOf) });
    finals.push(steps.length - 1);
  }
  return { steps, ext, finals };
}

function memberRunner(m: MemberStep, types: readonly TensorType[], cx: CompileContext, escapes: boolean): StepRunner {
  if (!isOpName(m.op)) throw new TypeError(`cpu device: unknown op '${m.op}'`);
  const kernel = KERNELS[m.op] as unknown as Kernel<Attrs>;
  return kernel({ op: m.op, attrs: m.attrs, inputTypes: m.inputs.map((i) => types[i]!), outType: types[m.output]!, escapes }, cx);
}

/** Runs members one after the other (values kept by slot), each output through the group's output `which`. */
function sequential(members: readonly MemberStep[], runners: readonly StepRunner[], groupInputs: readonly number[], groupOutputs: readonly number[]) {
  const local = new Map<number, NDArray>();
  const results: (NDArray | undefined)[] = groupOutputs.map(() => undefined);
  return (inputs: readonly NDArray[], rt: RunContext): (NDArray | undefined)[] => {
    local.clear();
    groupInputs.forEach((slot, i) => local.set(slot, inputs[i]!));
    members.forEach((m, k) => {
      const which = groupOutputs.indexOf(m.output);
      // No member result takes over an input's buffer: a later member may still read it.
      const sub: RunContext = { output: (d, s) => rt.output(d, s, false, which), scratch: rt.scratch };
      const value = runMember(m, runners[k]!, m.inputs.map((i) => local.get(i)!), sub);
      local.set(m.output, value);
      results[which] = value;
    });
    return results;
  };
}

/** Per external input, its ChainInput (data filled in per call). */
function chainInputs(n: number): { data: TypedArray; kind: 's' | 'z'; advance: boolean }[] {
  return Array.from({ length: n }, () => ({ data: new Float32Array(0), kind: 's' as const, advance: true }));
}

const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Each member's output shape (broadcast, or a reshape's dims), or null when one does not broadcast or resize. */
function memberShapes(members: readonly MemberStep[], ext: readonly number[], inputs: readonly NDArray[]): number[][] | null {
  const shapes = new Map<number, Shape>();
  ext.forEach((slot, i) => shapes.set(slot, inputs[i]!.shape));
  const out: number[][] = [];
  for (const m of members) {
    let s: number[];
    if (isStaticReshape(m)) {
      s = [...(m.attrs['dims'] as number[])];
      if (sizeOf(s) !== sizeOf(shapes.get(m.inputs[0]!)!)) return null;
    } else {
      try {
        s = broadcastShapes('fused', m.inputs.map((i) => shapes.get(i)!));
      } catch {
        return null;
      }
    }
    shapes.set(m.output, s);
    out.push(s);
  }
  return out;
}

interface ChainPlan {
  readonly kernel: ChainKernel;
  readonly rows: number;
  readonly inner: number;
  readonly shapes: number[][];
  /** Row passes over an outer axis (1: one pass), and each input's stride along it. */
  readonly outer: number;
  readonly outerStrides: readonly number[];
}

/**
 * The pass of a chain group: over the members' common shape with its broadcasts (bias rows,
 * columns, scalars), or flat when reshapes change the shape along the way but every value has the
 * same number of elements (inputs of that size or scalars).
 */
function chainPlan(chain: CombinedChain, lane: Lane, members: readonly MemberStep[], inputs: readonly NDArray[], stores: readonly number[]): ChainPlan | null {
  const shapes = memberShapes(members, chain.ext, inputs);
  if (shapes === null) return null;
  const lanes = lane === 'f32' ? 4 : 2;
  const first = shapes[0]!;
  let kinds: ('s' | 'z')[], advance: boolean[], rows: number, inner: number;
  let outer = 1, outerStrides: readonly number[] = [];
  if (shapes.every((s) => sameShape(s, first)) && !members.some(isStaticReshape)) {
    const split = outerRowLayout(collapseLayout(first, inputs.map((a) => a.shape)));
    if (split === null) return null;
    const rl = split.rows;
    ({ rows, inner } = rl);
    ({ outer, outerStrides } = split);
    kinds = [...rl.kinds];
    advance = [...rl.advance];
  } else {
    const n = sizeOf(first);
    if (shapes.some((s) => sizeOf(s) !== n) || inputs.some((a) => a.size !== n && a.size !== 1)) return null;
    [rows, inner] = [1, n];
    kinds = inputs.map((a) => (a.size === n ? 's' : 'z'));
    advance = kinds.map((k) => k === 's');
  }
  if (!wasmPays(rows, inner, lanes)) return null;
  const kernel = new ChainKernel({ steps: chain.steps, lane, inner: kinds, advance, stores: [...stores], colsum: -1 });
  return { kernel, rows, inner, shapes, outer, outerStrides };
}

/**
 * A chain group: members are consecutive elementwise steps (and reshapes to constant dims) in
 * program order, each reading an earlier one; `needed[k]` tells whether member k's value is read
 * outside the group (or returned): only those are materialised.
 */
export function chainGroupBuilder(members: readonly MemberStep[], needed: readonly boolean[]) {
  return (types: readonly TensorType[], cx: CompileContext, escapes: (slot: number) => boolean): GroupRunner => {
    const outputs = members.map((m) => m.output);
    const chain = combineChain(members, types)!;
    const runners = members.map((m) => memberRunner(m, types, cx, escapes(m.output)));
    const slow = sequential(members, runners, chain.ext, outputs);
    const lane = cx.simd === false ? null : chainLane(chain.steps, chain.ext.map((s) => types[s]!.dtype), chain.finals);
    // A needed reshape is a view of the member it reshapes, which must then be stored.
    const sourceOf = members.map((m, k) => (isStaticReshape(m) ? outputs.indexOf(m.inputs[0]!) : k));
    const root = (k: number): number => (sourceOf[k] === k ? k : root(sourceOf[k]!));
    const stored = members.map((_, k) => k).filter((k) => sourceOf[k] === k && needed.some((n, j) => n && root(j) === k));
    const stores = stored.map((k) => chain.finals[k]!);
    const dtypes = members.map((m) => types[m.output]!.dtype);
    const ins = chainInputs(chain.ext.length);
    const produced: (NDArray | undefined)[] = outputs.map(() => undefined);
    const outData: TypedArray[] = stored.map(() => new Float32Array(0));
    const outSlices: TypedArray[] = stored.map(() => new Float32Array(0));
    let lastShapes: Shape[] | null = null;
    let plan: ChainPlan | null = null;
    return (inputs, rt) => {
      if (lane === null) return slow(inputs, rt);
      if (lastShapes === null || !inputs.every((a, j) => sameShape(a.shape, lastShapes![j]!))) {
        lastShapes = inputs.map((a) => a.shape);
        plan = chainPlan(chain, lane, members, inputs, stores);
      }
      if (plan === null) return slow(inputs, rt);
      for (let j = 0; j < inputs.length; j++) ins[j]!.data = inputs[j]!.data;
      for (let k = 0; k < outputs.length; k++) produced[k] = undefined;
      stored.forEach((k, i) => {
        produced[k] = rt.output(dtypes[k]!, plan!.shapes[k]!, true, k);
        outData[i] = produced[k]!.data;
      });
      for (let k = 0; k < outputs.length; k++) {
        if (needed[k] && sourceOf[k] !== k) produced[k] = new NDArray(dtypes[k]!, plan.shapes[k]!, produced[root(k)]!.data);
      }
      if (plan.outer === 1) plan.kernel.run(plan.rows, plan.inner, layoutInputs(ins, plan.kernel), outData, null);
      else runPerOuter(plan, inputs, layoutInputs(ins, plan.kernel), outData, ins, outSlices);
      return produced;
    };
  };
}

/** One row pass per index of the plan's outer axis (per image of a per-channel bias on NCHW), over views. */
function runPerOuter(
  plan: ChainPlan, inputs: readonly NDArray[], layout: readonly ChainInput[], outData: readonly TypedArray[],
  ins: { data: TypedArray }[], outSlices: TypedArray[],
): void {
  const block = plan.rows * plan.inner;
  for (let o = 0; o < plan.outer; o++) {
    for (let j = 0; j < inputs.length; j++) {
      const d = inputs[j]!.data, st = plan.outerStrides[j]!;
      ins[j]!.data = st === 0 ? d : d.subarray(o * st);
    }
    for (let k = 0; k < outData.length; k++) outSlices[k] = outData[k]!.subarray(o * block, (o + 1) * block);
    plan.kernel.run(plan.rows, plan.inner, layout, outSlices, null);
  }
}

function layoutInputs(ins: { data: TypedArray; kind: 's' | 'z'; advance: boolean }[], kernel: ChainKernel): readonly ChainInput[] {
  kernel.sig.inner.forEach((k, j) => {
    ins[j]!.kind = k;
    ins[j]!.advance = kernel.sig.advance[j]!;
  });
  return ins;
}

/**
 * The row form of inputs broadcast to `shape` split after axis p (rows: the axes before, inner:
 * the rest), or null when an input is neither full nor all ones on either side of the split.
 */
export function splitLayout(shape: Shape, p: number, shapes: readonly Shape[]): { kinds: ('s' | 'z')[]; advance: boolean[] } | null {
  const kinds: ('s' | 'z')[] = [];
  const advance: boolean[] = [];
  for (const s of shapes) {
    const off = shape.length - s.length;
    const dim = (i: number): number => (i < off ? 1 : s[i - off]!);
    let innerFull = true, innerOnes = true, outerFull = true, outerOnes = true;
    for (let i = 0; i < shape.length; i++) {
      const d = dim(i);
      if (i >= p) { innerFull &&= d === shape[i]; innerOnes &&= d === 1; }
      else { outerFull &&= d === shape[i]; outerOnes &&= d === 1; }
    }
    if (!(innerFull || innerOnes) || !(outerFull || outerOnes)) return null;
    kinds.push(innerFull ? 's' : 'z');
    advance.push(outerFull);
  }
  return { kinds, advance };
}

/** The leading axes sumToLike(g of `shape`, like) sums over, as the count p of axes [0, p), or null. */
export function leadingReduction(shape: Shape, like: Shape): number | null {
  const lead = shape.length - like.length;
  if (lead < 0) return null;
  let p = 0;
  for (let i = 0; i < shape.length; i++) {
    const reduced = i < lead || (like[i - lead] === 1 && shape[i] !== 1);
    if (!reduced && i >= lead && like[i - lead] !== shape[i]) return null;
    if (reduced) p = i + 1;
  }
  for (let i = 0; i < p; i++) if (i >= lead && like[i - lead] !== 1) return null;
  return p;
}

/**
 * sumToLike(g of `shape`, like) over leading axes [0, p) and trailing axes (a convolution's bias
 * gradient: (N, C, H, W) to (1, C, 1, 1)), the axes between kept: p and the values per kept
 * element in the trailing axes, or null for any other pattern.
 */
export function leadAndTrailReduction(shape: Shape, like: Shape): { p: number; trail: number } | null {
  const lead = shape.length - like.length;
  if (lead < 0) return null;
  const reduced = shape.map((d, i) => i < lead || (like[i - lead] === 1 && d !== 1));
  if (shape.some((d, i) => !reduced[i] && like[i - lead] !== d)) return null;
  let p = 0;
  while (p < shape.length && (reduced[p] || shape[p] === 1)) p++;
  let q = shape.length;
  while (q > p && (reduced[q - 1] || shape[q - 1] === 1)) q--;
  for (let i = p; i < q; i++) if (reduced[i]) return null;
  if (q === p) return null;
  return { p, trail: sizeOf(shape.slice(q)) };
}

/**
 * A bias-gradient group: `e` elementwise, then optionally `alias` = sumToLike(e, like) expected to
 * be the identity, then `reduce` = sumToLike(e or alias, like) over leading axes, or over leading
 * and trailing axes: the column sums over the leading axes, then each kept element's trailing run
 * summed (in float64, in a different order from the reference's, so the last bit may differ). Outputs in the
 * order [e, alias?, reduce]; e's value is stored only when `storeE` (some other step reads it or
 * the alias).
 */
export function biasGradGroupBuilder(e: MemberStep, alias: MemberStep | null, reduce: MemberStep, storeE: boolean) {
  const members = alias === null ? [e, reduce] : [e, alias, reduce];
  return (types: readonly TensorType[], cx: CompileContext, escapes: (slot: number) => boolean): GroupRunner => {
    const outputs = members.map((m) => m.output);
    const ext = externalInputs(members);
    const runners = members.map((m) => memberRunner(m, types, cx, escapes(m.output)));
    const slow = sequential(members, runners, ext, outputs);
    const eSteps = scalarStepsOf(e, types)!;
    const eDtype: DType = types[e.output]!.dtype;
    const rDtype: DType = types[reduce.output]!.dtype;
    const lane = rDtype === eDtype && cx.simd !== false ? chainLane(eSteps, e.inputs.map((s) => types[s]!.dtype), [eSteps.length - 1]) : null;
    const eAt = e.inputs.map((s) => ext.indexOf(s));
    const aliasLikeAt = alias === null ? -1 : ext.indexOf(alias.inputs[1]!);
    const reduceLikeAt = ext.indexOf(reduce.inputs[1]!);
    const ins = chainInputs(e.inputs.length);
    const eInputs: NDArray[] = [];
    const produced: (NDArray | undefined)[] = outputs.map(() => undefined);
    const outData: TypedArray[] = [];
    let lastShapes: Shape[] | null = null;
    let plan: { kernel: ChainKernel; rows: number; inner: number; shape: number[]; trail: number } | null = null;
    return (inputs, rt) => {
      if (lane === null) return slow(inputs, rt);
      for (let j = 0; j < eAt.length; j++) eInputs[j] = inputs[eAt[j]!]!;
      const like = inputs[reduceLikeAt]!.shape;
      const aliasLike = aliasLikeAt < 0 ? null : inputs[aliasLikeAt]!.shape;
      if (lastShapes === null || !inputs.every((a, j) => sameShape(a.shape, lastShapes![j]!))) {
        lastShapes = inputs.map((a) => a.shape);
        plan = biasGradPlan(eSteps, lane, eInputs, like, aliasLike, storeE);
      }
      if (plan === null) return slow(inputs, rt);
      for (let j = 0; j < eInputs.length; j++) ins[j]!.data = eInputs[j]!.data;
      const value = storeE ? rt.output(eDtype, plan.shape, true, 0) : undefined;
      outData.length = 0;
      if (value !== undefined) outData.push(value.data);
      const acc = rt.scratch('float64', plan.inner) as Float64Array;
      plan.kernel.run(plan.rows, plan.inner, layoutInputs(ins, plan.kernel), outData, acc);
      const sums = rt.output(rDtype, like, false, outputs.length - 1);
      const trail = plan.trail;
      if (trail === 1) sums.data.set(acc.subarray(0, plan.inner));
      else {
        const out = sums.data;
        for (let c = 0, at = 0; c < out.length; c++) {
          let sum = 0;
          for (let t = 0; t < trail; t++, at++) sum += acc[at]!;
          out[c] = sum;
        }
      }
      produced[0] = value;
      if (alias !== null) produced[1] = value;
      produced[outputs.length - 1] = sums;
      return produced;
    };
  };
}

function biasGradPlan(steps: ScalarStep[], lane: Lane, eInputs: readonly NDArray[], like: Shape, aliasLike: Shape | null, storeE: boolean) {
  let shape: number[];
  try {
    shape = broadcastShapes('fused', eInputs.map((a) => a.shape));
  } catch {
    return null;
  }
  if (aliasLike !== null && !sameShape(aliasLike, shape)) return null;
  let p = leadingReduction(shape, like), trail = 1;
  if (p === null) {
    const both = leadAndTrailReduction(shape, like);
    if (both === null) return null;
    ({ p, trail } = both);
  }
  if ((p === 0 && trail === 1) || !wasmPays(sizeOf(shape.slice(0, p)), sizeOf(shape.slice(p)), lane === 'f32' ? 4 : 2)) return null;
  const split = splitLayout(shape, p, eInputs.map((a) => a.shape));
  if (split === null) return null;
  const last = steps.length - 1;
  const kernel = new ChainKernel({ steps, lane, inner: split.kinds, advance: split.advance, stores: storeE ? [last] : [], colsum: last });
  return { kernel, rows: sizeOf(shape.slice(0, p)), inner: sizeOf(shape.slice(p)), shape, trail };
}
