// Shape errors found before any work is sent: the given input shapes are pushed through the
// program's steps by the shape rules of the common ops (broadcasting, matmul, reductions,
// reshape, dimshuffle, concatenate, ...). A dimension may be unknown (null), e.g. the rows a worker
// will receive; an op without a rule here gives an unknown shape. Only a definite conflict is an
// error, so a program that can run is never refused; the message names the op, the operands'
// shapes and the inputs (and shared variables) the operands are computed from.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { getOpDef, isOpName } from '../ops/apply.js';
import type { SharedVariable } from '../tensor/variable.js';
import type { Program, ProgramStep } from './program.js';
import { deserializeArray } from './serialize-array.js';

/** A size, or null when it is not known before the call runs. */
export type Dim = number | null;
export type PartialShape = readonly Dim[];

export interface ShapeCheckArgs {
  /** One per program input: the shape its steps will see (null dims: unknown). */
  readonly inputs: readonly PartialShape[];
  /** The shape of a shared variable's value, or undefined when it is not known. */
  readonly sharedShape?: (sharedId: string) => PartialShape | undefined;
  /** How an input appears in errors, e.g. "input 0 'x' has shape (8, 4)" (default: from the program). */
  readonly describeInput?: (index: number) => string;
  /** Only these outputs are computed (a call's outputSubset): steps no kept output or update needs are not checked. */
  readonly outputSubset?: readonly number[];
}

/** A shape conflict that makes the call fail on every device. */
export class ShapeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

/** Constants with at most this many elements are kept as values, so steps reading them can be computed. */
const MAX_FOLDED_SIZE = 64;

export function formatShape(shape: PartialShape): string {
  return shapeToString(shape.map((d) => (d === null ? '?' : d)) as unknown as number[]);
}

/** Throws a ShapeError for the first step whose operands definitely do not fit; returns every slot's shape. */
export function checkShapes(program: Program, args: ShapeCheckArgs): PartialShape[] {
  const shapes: PartialShape[] = program.slots.map((s) => unknownShape(s.broadcastable));
  const values = new Map<number, NDArray>();
  // A given shape of the wrong ndim is ignored (the input checks refuse it); broadcastable axes are 1.
  const give = (slot: number, given: PartialShape | undefined) => {
    const flags = program.slots[slot]!.broadcastable;
    if (given !== undefined && given.length === flags.length) shapes[slot] = given.map((d, i) => (d === null && flags[i] ? 1 : d));
  };
  program.inputs.forEach((slot, i) => give(slot, args.inputs[i]));
  for (const s of program.shareds) give(s.slot, args.sharedShape?.(s.sharedId));
  for (const c of program.constants) {
    const value = deserializeArray(c.value);
    shapes[c.slot] = value.shape;
    if (value.size <= MAX_FOLDED_SIZE) values.set(c.slot, value);
  }
  const needed = neededSteps(program, args.outputSubset);
  program.steps.forEach((step, k) => {
    const operands = step.inputs.map((slot) => shapes[slot]!);
    const folded = fold(step, program, values);
    if (folded) {
      values.set(step.output, folded);
      shapes[step.output] = folded.shape;
      return;
    }
    const intArg = (arg: unknown): number | null => {
      if (typeof arg === 'number') return arg;
      const input = (arg as { input?: unknown } | null)?.input;
      const v = typeof input === 'number' ? values.get(step.inputs[input] ?? -1) : undefined;
      return v && v.size === 1 ? Math.trunc(v.data[0]!) : null;
    };
    let out: PartialShape | null;
    try {
      out = ruleFor(step.op)?.(operands, step.attrs, intArg) ?? null;
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      if (!needed[k]) return; // a device may skip this step, so its conflict need not stop the call
      const label = step.op === 'fused' ? `${fusedOps(step).join(', ')} (fused)` : step.op;
      throw new ShapeError(`${label}: ${e.message}${context(program, k, shapes, args)}`);
    }
    if (step.op === 'shapeI') {
      const d = operands[0]?.[step.attrs['axis'] as number];
      if (typeof d === 'number') values.set(step.output, NDArray.scalar(d, 'int32'));
    }
    const slot = program.slots[step.output]!;
    if (out && out.length === slot.broadcastable.length) shapes[step.output] = out.map((d, i) => (d === null && slot.broadcastable[i] ? 1 : d));
  });
  return shapes;
}

/**
 * The shape of a shared variable's value when the host holds the current value (no device or
 * rank-0 copy is newer), so reading it costs nothing; otherwise undefined (unknown).
 */
export function hostShapeOf(s: SharedVariable | undefined): readonly number[] | undefined {
  if (!s || s.deviceCopies.size > 0) return undefined;
  return s.getValue({ borrow: true }).shape;
}

/** Shape signatures a checker remembers as fine, so a loop calling with the same shapes checks once. */
const MAX_CACHED = 64;

/**
 * checkShapes for repeated calls of one program: each distinct set of shapes (inputs, then every
 * shared variable's) is checked once. For T.fn: `checker(inputs.map((a) => a.shape), (id) => hostShapeOf(findShared(id)))`.
 */
export type ShapeChecker = (
  inputs: readonly PartialShape[],
  sharedShape?: (sharedId: string) => PartialShape | undefined,
  describeInput?: (index: number) => string,
  outputSubset?: readonly number[],
) => void;

export function shapeChecker(program: Program): ShapeChecker {
  const fine = new Set<string>();
  return (inputs, sharedShape, describeInput, outputSubset) => {
    const shareds = program.shareds.map((p) => sharedShape?.(p.sharedId));
    const key = `${inputs.join(';')}|${shareds.map((s) => s?.join(',') ?? '?').join(';')}|${outputSubset?.join(',') ?? '*'}`;
    if (fine.has(key)) return;
    const byId = new Map(program.shareds.map((p, i) => [p.sharedId, shareds[i]] as const));
    checkShapes(program, { inputs, sharedShape: (id) => byId.get(id), ...(describeInput ? { describeInput } : {}), ...(outputSubset ? { outputSubset } : {}) });
    if (fine.size >= MAX_CACHED) fine.clear();
    fine.add(key);
  };
}

/** Which steps the kept outputs and the updates read, directly or through other steps. */
function neededSteps(program: Program, outputSubset: readonly number[] | undefined): boolean[] {
  if (outputSubset === undefined) return program.steps.map(() => true);
  const producer = new Map(program.steps.map((s, k) => [s.output, k] as const));
  const needed = program.steps.map(() => false);
  const stack = [...outputSubset.map((i) => program.outputs[i]!), ...program.updates.map((u) => u.slot)];
  while (stack.length) {
    const k = producer.get(stack.pop()!);
    if (k === undefined || needed[k]) continue;
    needed[k] = true;
    stack.push(...program.steps[k]!.inputs);
  }
  return needed;
}

function fusedOps(step: ProgramStep): string[] {
  const inner = step.attrs['steps'];
  return [...new Set(Array.isArray(inner) ? inner.map((s: { op?: unknown }) => String(s.op)) : [])];
}

function unknownShape(broadcastable: readonly boolean[]): PartialShape {
  return broadcastable.map((b) => (b ? 1 : null));
}

/**
 * Computes a scalar step whose operands are all known small values: x.shape[i] and arithmetic on it,
 * which reshape and alloc read their sizes from. Only scalars, so no large array is ever made here.
 */
function fold(step: ProgramStep, program: Program, values: ReadonlyMap<number, NDArray>): NDArray | null {
  const slot = program.slots[step.output]!;
  if (slot.broadcastable.length !== 0 || !isOpName(step.op)) return null;
  const inputs = step.inputs.map((s) => values.get(s));
  if (inputs.some((v) => v === undefined)) return null;
  const def = getOpDef(step.op);
  if (def.impure || (inputs.length === 0 && step.op !== 'scalarFromNumber')) return null;
  try {
    return def.perform(inputs as NDArray[], step.attrs, new TensorType(slot.dtype, slot.broadcastable));
  } catch {
    return null; // an error here is reported by the step's shape rule, or by the run itself
  }
}

/** " (input 0 'x' has shape (8, 4), shared 'W' has shape (3, 2))": where the step's operands come from. */
function context(program: Program, stepIndex: number, shapes: readonly PartialShape[], args: ShapeCheckArgs): string {
  const producer = new Map<number, ProgramStep>();
  for (const s of program.steps) producer.set(s.output, s);
  const inputIndex = new Map(program.inputs.map((slot, i) => [slot, i] as const));
  const sharedSlots = new Set(program.shareds.map((s) => s.slot));
  const seen = new Set<number>();
  const found: number[] = [];
  const stack = [...program.steps[stepIndex]!.inputs];
  while (stack.length) {
    const slot = stack.pop()!;
    if (seen.has(slot)) continue;
    seen.add(slot);
    if (inputIndex.has(slot) || sharedSlots.has(slot)) found.push(slot);
    const p = producer.get(slot);
    if (p) stack.push(...p.inputs);
  }
  const parts = found.sort((a, b) => a - b).map((slot) => {
    const i = inputIndex.get(slot);
    const name = program.slots[slot]!.name;
    if (i !== undefined) return args.describeInput?.(i) ?? `input ${i}${name !== undefined ? ` '${name}'` : ''} has shape ${formatShape(shapes[slot]!)}`;
    return `shared variable${name !== undefined ? ` '${name}'` : ''} has shape ${formatShape(shapes[slot]!)}`;
  });
  return parts.length ? ` (${parts.join('; ')})` : '';
}

/** A broken shape rule, reported with the step's context. */
class RuleError extends Error {}

type IntArgOf = (arg: unknown) => number | null;
type Rule = (shapes: readonly PartialShape[], attrs: Readonly<Record<string, unknown>>, intArg: IntArgOf) => PartialShape | null;

function ruleFor(op: string): Rule | undefined {
  if (Object.hasOwn(RULES, op)) return RULES[op];
  return isOpName(op) && getOpDef(op).elementwise ? (shapes) => broadcast(shapes) : undefined;
}

/** NumPy broadcasting over partly known shapes: only two known sizes, both not 1 and different, conflict. */
function broadcast(shapes: readonly PartialShape[]): PartialShape {
  const ndim = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let ax = 0; ax < ndim; ax++) {
    let known: number | null = null;
    let allOne = true;
    for (const s of shapes) {
      const d = ax - (ndim - s.length) >= 0 ? s[ax - (ndim - s.length)]! : 1;
      if (d !== 1) allOne = false;
      if (d === null || d === 1) continue;
      if (known !== null && known !== d) throw new RuleError(`shapes ${shapes.map(formatShape).join(', ')} do not broadcast (axis ${ax}: ${known} vs ${d})`);
      known = d;
    }
    out.push(known ?? (allOne ? 1 : null));
  }
  return out;
}

const reduce: Rule = ([x], attrs) => {
  const axes = attrs['axes'] as readonly number[];
  const keep = attrs['keepdims'] === true;
  return x!.flatMap((d, i) => (!axes.includes(i) ? [d] : keep ? [1] : []));
};

const same = (index: number): Rule => (shapes) => shapes[index] ?? null;

function matmul([a, b]: readonly PartialShape[], attrs: Readonly<Record<string, unknown>>): PartialShape {
  const dims = (s: PartialShape, trans: boolean): [Dim, Dim] => {
    const r = s[s.length - 2]!;
    const c = s[s.length - 1]!;
    return trans ? [c, r] : [r, c];
  };
  const [m, k] = dims(a!, attrs['transA'] === true);
  const [k2, n] = dims(b!, attrs['transB'] === true);
  const shapes = `${formatShape(a!)}${attrs['transA'] === true ? 'ᵀ' : ''} and ${formatShape(b!)}${attrs['transB'] === true ? 'ᵀ' : ''}`;
  if (k !== null && k2 !== null && k !== k2) throw new RuleError(`inner dimensions differ: ${shapes} (${k} vs ${k2})`);
  let batch: PartialShape;
  try {
    batch = broadcast([a!.slice(0, -2), b!.slice(0, -2)]);
  } catch {
    throw new RuleError(`batch axes of ${shapes} do not broadcast`);
  }
  return [...batch, m, n];
}

function reshape([x]: readonly PartialShape[], attrs: Readonly<Record<string, unknown>>, intArg: IntArgOf): PartialShape {
  const dims = (attrs['dims'] as readonly unknown[]).map(intArg);
  const size = x!.every((d) => d !== null) ? (x as number[]).reduce((p, q) => p * q, 1) : null;
  const rest = dims.filter((d) => d !== -1);
  const restKnown = rest.every((d) => d !== null) ? (rest as number[]).reduce((p, q) => p * q, 1) : null;
  const bad = () => new RuleError(`cannot reshape array of shape ${formatShape(x!)} (size ${size}) into ${formatShape(dims)}`);
  if (size === null || restKnown === null) return dims.map((d) => (d === -1 ? null : d));
  if (dims.includes(-1)) {
    const missing = restKnown === 0 ? 0 : size / restKnown;
    if (!Number.isInteger(missing)) throw bad();
    return dims.map((d) => (d === -1 ? missing : d));
  }
  if (restKnown !== size) throw bad();
  return dims;
}

function dimshuffle([x]: readonly PartialShape[], attrs: Readonly<Record<string, unknown>>): PartialShape {
  const pattern = attrs['pattern'] as readonly (number | 'x')[];
  x!.forEach((d, i) => {
    if (!pattern.includes(i) && d !== null && d !== 1) throw new RuleError(`dropped axis ${i} of ${formatShape(x!)} has size ${d}, not 1`);
  });
  return pattern.map((p) => (p === 'x' ? 1 : x![p]!));
}

function concatenate(shapes: readonly PartialShape[], attrs: Readonly<Record<string, unknown>>): PartialShape {
  const axis = attrs['axis'] as number;
  const first = shapes[0]!;
  return first.map((_, i) => {
    const dims = shapes.map((s) => s[i]!);
    if (i === axis) return dims.every((d) => d !== null) ? (dims as number[]).reduce((p, q) => p + q, 0) : null;
    const known = dims.filter((d): d is number => d !== null);
    if (known.some((d) => d !== known[0])) throw new RuleError(`shapes ${shapes.map(formatShape).join(', ')} differ outside axis ${axis}`);
    return known[0] ?? null;
  });
}

/** `g` summed to the shape of `like` (axes where like has size 1 are summed). */
function sumToLike([g, like]: readonly PartialShape[]): PartialShape {
  const lead = g!.length - like!.length;
  like!.forEach((d, i) => {
    const gd = g![lead + i]!;
    if (d !== null && d !== 1 && gd !== null && gd !== d) throw new RuleError(`cannot reduce ${formatShape(g!)} to ${formatShape(like!)}`);
  });
  return like!;
}

function broadcastTo(value: PartialShape, target: PartialShape, what: string): void {
  const lead = target.length - value.length;
  value.forEach((d, i) => {
    const t = target[lead + i]!;
    if (d !== null && d !== 1 && t !== null && t !== d) {
      throw new RuleError(`cannot broadcast ${what} of shape ${formatShape(value)} to ${formatShape(target)}`);
    }
  });
}

function alloc([v]: readonly PartialShape[], attrs: Readonly<Record<string, unknown>>, intArg: IntArgOf): PartialShape {
  const dims = (attrs['dims'] as readonly unknown[]).map(intArg);
  broadcastTo(v!, dims, 'a value');
  return dims;
}

function rebroadcast([x]: readonly PartialShape[], attrs: Readonly<Record<string, unknown>>): PartialShape {
  const axes = attrs['axes'] as readonly number[];
  if (attrs['broadcastable'] !== true) return x!;
  return x!.map((d, i) => {
    if (!axes.includes(i)) return d;
    if (d !== null && d !== 1) throw new RuleError(`axis ${i} of ${formatShape(x!)} was marked broadcastable but has size ${d}`);
    return 1;
  });
}

const RULES: Readonly<Record<string, Rule>> = {
  sum: reduce, prod: reduce, mean: reduce, max: reduce, min: reduce, all: reduce, any: reduce,
  argmax: reduce, argmin: reduce, var: reduce, logsumexp: reduce,
  matmul,
  reshape,
  dimshuffle,
  concatenate,
  alloc,
  rebroadcast,
  sumToLike,
  broadcastLike: ([g, like]) => { broadcastTo(g!, like!, 'the value'); return like!; },
  fillLike: same(0),
  shapeI: () => [],
  softmax: same(0),
  logSoftmax: same(0),
  incSubtensor: same(0),
  incTake: same(0),
  takeRowwise: same(1),
  scatterRowwise: same(2),
  fused: (shapes) => broadcast(shapes),
};
