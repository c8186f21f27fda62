// Complete validation of a function description before anything is built from it. A description
// is data from anywhere (a file, a socket, another thread): every field is checked against a
// closed schema, with size limits the caller may raise, and the result is a fresh copy made only
// of checked values (the caller's object, which may change or hold getters, is not used again).
// Beyond the schema: slots are defined once and used only after their definition (so no cycle and
// no dangling reference), every step type-checks with its op's own rule to exactly the slot's
// declared type, and the description's inputs and shared variables agree with the program's.
// Errors name the path inside the description, e.g. `description.program.steps[3].attrs.axes[0]`.
import { TensorType } from '../tensor/type.js';
import { assertDType, previewValue, type DType } from '../tensor/dtype.js';
import { getOpDef } from '../ops/apply.js';
import { NDArray } from '../tensor/ndarray.js';
import { SharedVariable } from '../tensor/variable.js';
import { deserializeArray } from './serialize-array.js';
import type { FunctionDescription, FusedStep, Program, ProgramStep, SerializedArray, SlotInfo } from './program.js';
import type { OpName } from '../ops/registry.js';
import { isElementwiseOpName } from '../ops/elementwise.js';

// ---- attributes ------------------------------------------------------------------------------
// Closed schemas of every op's attributes, for programs that arrive as data (descriptions, worker
// messages). Each parser accepts exactly the keys and value shapes the op builders produce and
// returns a fresh copy built from the checked values only, so nothing else (extra keys, getters,
// nesting of any depth, strings where numbers belong) ever reaches an op or a code generator.
// Semantic checks (axes in range, matching shapes) stay with each op's inferType, which the
// description validator runs afterwards on the copy.

/** A description that does not follow the schema; `path` locates the offending value inside it. */
export class DescriptionError extends TypeError {
  readonly path: string;
  /** The problem, without the path. */
  readonly detail: string;
  constructor(path: string, detail: string, caller?: string) {
    super(`${caller !== undefined ? `${caller}: ` : ''}${path}: ${detail}`);
    this.name = 'DescriptionError';
    this.path = path;
    this.detail = detail;
  }
}

/** What a parser may need beyond the value: the step's input count and the list-length limit. */
interface AttrContext {
  readonly nInputs: number;
  readonly maxListLength: number;
}

type Parser<T> = (value: unknown, path: string, ctx: AttrContext) => T;

const fail = (path: string, expected: string, value: unknown): never => {
  throw new DescriptionError(path, `expected ${expected}, got ${previewValue(value)}`);
};

/** An own, enumerable property of a plain (JSON-like) object, without running getters. */
function plainObject(value: unknown, path: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(path, 'an object', value);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return fail(path, 'a plain object', value);
  return value as Readonly<Record<string, unknown>>;
}

/** The object's fields, refusing keys outside `allowed` and accessors (their value could change between reads). */
export function fields(value: unknown, path: string, allowed: readonly string[]): Readonly<Record<string, unknown>> {
  const obj = plainObject(value, path);
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new DescriptionError(`${path}.${key.slice(0, 40)}`, `unknown field (expected ${allowed.length ? allowed.join(', ') : 'none'})`);
    }
    const d = Object.getOwnPropertyDescriptor(obj, key)!;
    if (!('value' in d)) throw new DescriptionError(`${path}.${key}`, 'must be a data property, not a getter');
    out[key] = d.value;
  }
  return out;
}

function required(obj: Readonly<Record<string, unknown>>, key: string, path: string): unknown {
  if (!(key in obj)) throw new DescriptionError(`${path}.${key}`, 'missing');
  return obj[key];
}

const int = (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Parser<number> => (v, path) =>
  (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? v : fail(path, `an integer in [${min}, ${max}]`, v));
const num: Parser<number> = (v, path) => (typeof v === 'number' ? v : fail(path, 'a number', v));
const finite: Parser<number> = (v, path) => (typeof v === 'number' && Number.isFinite(v) ? v : fail(path, 'a finite number', v));
const bool: Parser<boolean> = (v, path) => (typeof v === 'boolean' ? v : fail(path, 'true or false', v));
const dtype: Parser<DType> = (v, path) => {
  try {
    return assertDType(v, path);
  } catch (e) {
    throw new DescriptionError(path, (e as Error).message.slice(path.length + 2)); // assertDType's text after "path: "
  }
};

const list = <T>(item: Parser<T>, length?: number): Parser<T[]> => (v, path, ctx) => {
  if (!Array.isArray(v)) return fail(path, 'a list', v);
  if (length !== undefined && v.length !== length) return fail(path, `a list of ${length}`, v);
  if (v.length > ctx.maxListLength) throw new DescriptionError(path, `has ${v.length} entries, more than limits.maxListLength (${ctx.maxListLength})`);
  const out: T[] = [];
  for (let i = 0; i < v.length; i++) out.push(item(v[i], `${path}[${i}]`, ctx));
  return out;
};

/** A number, or a reference { input: k } to one of the step's inputs (IntArg, ParamArg). */
const arg: Parser<number | { readonly input: number }> = (v, path, ctx) => {
  if (typeof v === 'number') return finite(v, path, ctx);
  const o = fields(v, path, ['input']);
  return { input: int(0, ctx.nInputs - 1)(required(o, 'input', path), `${path}.input`, ctx) };
};
/** A product op's operand precision (ops/operand-precision.ts). */
const operandPrecision: Parser<string> = (v, path) => (v === 'bf16' ? v : fail(path, "'bf16'", v));
const nullable = <T>(p: Parser<T>): Parser<T | null> => (v, path, ctx) => (v === null ? null : p(v, path, ctx));

const indexEntry: Parser<unknown> = (v, path, ctx) => {
  const o = fields(v, path, ['kind', 'index', 'start', 'stop', 'step']);
  const kind = required(o, 'kind', path);
  const only = (keys: readonly string[]) => Object.keys(o).forEach((k) => {
    if (!keys.includes(k)) throw new DescriptionError(`${path}.${k}`, `not a field of a${kind === 'index' ? 'n index' : ' slice'} entry`);
  });
  if (kind === 'index') {
    only(['kind', 'index']);
    return { kind, index: arg(required(o, 'index', path), `${path}.index`, ctx) };
  }
  if (kind !== 'slice') return fail(`${path}.kind`, "'index' or 'slice'", kind);
  only(['kind', 'start', 'stop', 'step']);
  const part = (k: string) => nullable(arg)(required(o, k, path), `${path}.${k}`, ctx);
  return { kind, start: part('start'), stop: part('stop'), step: part('step') };
};
const patternEntry: Parser<number | 'x'> = (v, path, ctx) => (v === 'x' ? 'x' : int(0)(v, path, ctx));
const pair = (min: number) => list(int(min), 2);
const padding: Parser<unknown> = (v, path, ctx) => (v === 'same' ? 'same' : pair(0)(v, path, ctx));

type Shape = Readonly<Record<string, Parser<unknown>>>;

interface OpSchema {
  /** Fewest inputs; `max` absent: any number from `min` (ops with symbolic arguments or lists of tensors). */
  readonly min: number;
  readonly max?: number;
  readonly attrs: Shape;
  /** Attributes that may be left out (absent: copied as absent). */
  readonly optional?: Shape;
}

const none: Shape = {};
const fixed = (n: number, attrs: Shape = none): OpSchema => ({ min: n, max: n, attrs });
const atLeast = (n: number, attrs: Shape): OpSchema => ({ min: n, attrs });
const reduce: Shape = { axes: list(int(0)), keepdims: bool };
const axis: Shape = { axis: int() };
const conv: Shape = { stride: pair(1), padding, dilation: pair(1), groups: int(1) };
/** The optional attributes of the product ops. */
const product: Shape = { precision: operandPrecision };
const withOptional = (schema: OpSchema, optional: Shape): OpSchema => ({ ...schema, optional });
const pool: Shape = { kernel: pair(1), stride: pair(1), padding: pair(0) };
const avgPool: Shape = { ...pool, countIncludePad: bool };
const draw = (params: readonly string[]): OpSchema => atLeast(1, { dims: list(arg), dtype, ...Object.fromEntries(params.map((p) => [p, arg])) });

/** Every op's inputs and attributes; typed over OpName, so an op added to the table without a schema fails to compile. */
const SCHEMAS: { readonly [N in Exclude<OpName, 'fused'>]: OpSchema } = {
  neg: fixed(1), abs: fixed(1), sign: fixed(1), exp: fixed(1), expm1: fixed(1), log: fixed(1), log1p: fixed(1), sqrt: fixed(1),
  square: fixed(1), reciprocal: fixed(1), sin: fixed(1), cos: fixed(1), tanh: fixed(1), sigmoid: fixed(1), softplus: fixed(1),
  relu: fixed(1), erf: fixed(1), floor: fixed(1), ceil: fixed(1), round: fixed(1), not: fixed(1),
  add: fixed(2), sub: fixed(2), mul: fixed(2), div: fixed(2), intDiv: fixed(2), mod: fixed(2), pow: fixed(2), maximum: fixed(2),
  minimum: fixed(2), eq: fixed(2), neq: fixed(2), lt: fixed(2), le: fixed(2), gt: fixed(2), ge: fixed(2), and: fixed(2), or: fixed(2),
  xor: fixed(2), where: fixed(3), clip: fixed(3), cast: fixed(1, { dtype }),
  sum: fixed(1, reduce), prod: fixed(1, reduce), mean: fixed(1, reduce), max: fixed(1, reduce), min: fixed(1, reduce),
  all: fixed(1, reduce), any: fixed(1, reduce), argmax: fixed(1, reduce), argmin: fixed(1, reduce), logsumexp: fixed(1, reduce),
  var: fixed(1, { ...reduce, ddof: finite }),
  shapeI: fixed(1, axis), sumToLike: fixed(2), broadcastLike: fixed(2), fillLike: fixed(1, { value: num, dtype }),
  dimshuffle: fixed(1, { pattern: list(patternEntry) }), reshape: atLeast(1, { dims: list(arg) }),
  rebroadcast: fixed(1, { axes: list(int(0)), broadcastable: bool }), scalarFromNumber: fixed(0, { value: num, dtype }),
  concatenate: atLeast(1, axis), alloc: atLeast(1, { dims: list(arg) }), arange: atLeast(0, { start: arg, stop: arg, step: arg, dtype }),
  oneHot: atLeast(1, { n: arg, dtype }), repeat: fixed(1, { repeats: int(0), axis: int() }), tile: fixed(1, { reps: list(int(0)) }),
  subtensor: atLeast(1, { entries: list(indexEntry) }), incSubtensor: atLeast(2, { entries: list(indexEntry), set: bool }),
  take: fixed(2, axis), incTake: fixed(3, { axis: int(), set: bool }),
  matmul: withOptional(fixed(2, { transA: bool, transB: bool }), product), softmax: fixed(1, axis), logSoftmax: fixed(1, axis),
  takeRowwise: fixed(2), scatterRowwise: fixed(3),
  conv2d: withOptional(fixed(2, conv), product), conv2dInputGrad: withOptional(fixed(3, conv), product),
  conv2dFilterGrad: withOptional(fixed(3, conv), product),
  maxPool2d: fixed(1, pool), maxPool2dGrad: fixed(2, pool), maxPool2dGradGrad: fixed(2, pool), avgPool2d: fixed(1, avgPool), avgPool2dGrad: fixed(2, avgPool),
  bnStats: fixed(1), bnTrain: withOptional(fixed(4, { epsilon: finite }), { relu: bool }),
  bnGradStats: fixed(3, { epsilon: finite }), bnGradInput: fixed(5, { epsilon: finite }),
  randomUniform: draw(['low', 'high']), randomNormal: draw(['mean', 'std']), randomBernoulli: draw(['p']), randomAdvance: fixed(1),
};

/** Whether `name` is an op of the table other than 'fused' (whose steps the description validator checks itself). */
function isPlainOp(name: unknown): name is Exclude<OpName, 'fused'> {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(SCHEMAS, name);
}

/** Checks a step's input count and copies its attributes through the op's schema. */
function parseAttrs(op: Exclude<OpName, 'fused'>, attrs: unknown, nInputs: number, path: string, maxListLength: number): Readonly<Record<string, unknown>> {
  const schema = SCHEMAS[op];
  if (nInputs < schema.min || (schema.max !== undefined && nInputs > schema.max)) {
    const expected = schema.max === undefined ? `at least ${schema.min}` : schema.max === schema.min ? `${schema.min}` : `${schema.min} to ${schema.max}`;
    throw new DescriptionError(`${path}.inputs`, `${op} takes ${expected} input(s), got ${nInputs}`);
  }
  const keys = Object.keys(schema.attrs);
  const optional = schema.optional ?? none;
  const o = fields(attrs, `${path}.attrs`, [...keys, ...Object.keys(optional)]);
  const ctx: AttrContext = { nInputs, maxListLength };
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = schema.attrs[k]!(required(o, k, `${path}.attrs`), `${path}.attrs.${k}`, ctx);
  for (const [k, parse] of Object.entries(optional)) if (k in o) out[k] = parse(o[k], `${path}.attrs.${k}`, ctx);
  return out;
}

// ---- the description ---------------------------------------------------------------------------

/** Upper bounds on a description's size (the work and memory it may cost before it runs). */
export interface DescriptionLimits {
  /** Slots of the program: inputs, constants, shared values and step results. */
  readonly maxSlots: number;
  readonly maxSteps: number;
  /** Inner steps of one fused step. */
  readonly maxFusedSteps: number;
  /** Axes of a slot or of an array. */
  readonly maxNdim: number;
  /** Elements of all constant and shared-variable values together. */
  readonly maxElements: number;
  /** Characters of a name, sharedId or log line. */
  readonly maxStringLength: number;
  /** Entries of a list inside a step (its inputs, attribute lists) and of the log. */
  readonly maxListLength: number;
}

/** The limits fnFromDescription applies unless the caller raises them. */
export const DEFAULT_DESCRIPTION_LIMITS: DescriptionLimits = Object.freeze({
  maxSlots: 1 << 20, maxSteps: 1 << 20, maxFusedSteps: 4096, maxNdim: 32, maxElements: 1 << 26, maxStringLength: 4096, maxListLength: 1 << 16,
});

/** For descriptions this thread built itself (T.fn, the data-parallel runtime): the schema, no size limits. */
export const NO_DESCRIPTION_LIMITS: DescriptionLimits = Object.freeze({
  maxSlots: Infinity, maxSteps: Infinity, maxFusedSteps: Infinity, maxNdim: Infinity, maxElements: Infinity, maxStringLength: Infinity, maxListLength: Infinity,
});

const LIMIT_KEYS = Object.keys(DEFAULT_DESCRIPTION_LIMITS) as (keyof DescriptionLimits)[];

/** The defaults with the caller's overrides, each a positive integer or Infinity. */
export function resolveLimits(given: unknown, what: string): DescriptionLimits {
  if (given === undefined) return DEFAULT_DESCRIPTION_LIMITS;
  const o = fields(given, what, LIMIT_KEYS);
  const out: Record<string, number> = { ...DEFAULT_DESCRIPTION_LIMITS };
  for (const k of LIMIT_KEYS) {
    if (!(k in o)) continue;
    const v = o[k];
    if (v !== Infinity && !(typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) {
      throw new DescriptionError(`${what}.${k}`, `expected a positive integer or Infinity, got ${previewValue(v)}`);
    }
    out[k] = v;
  }
  return out as unknown as DescriptionLimits;
}

const NON_FINITE: ReadonlySet<unknown> = new Set(['NaN', 'Infinity', '-Infinity']);

class DescriptionParser {
  /** Elements of constant and shared values so far (limits.maxElements is for all of them). */
  private elements = 0;
  constructor(private readonly limits: DescriptionLimits) {}

  string(v: unknown, path: string, nonEmpty = false): string {
    if (typeof v !== 'string' || (nonEmpty && v.length === 0)) {
      throw new DescriptionError(path, `expected a${nonEmpty ? ' non-empty' : ''} string, got ${previewValue(v)}`);
    }
    if (v.length > this.limits.maxStringLength) {
      throw new DescriptionError(path, `has ${v.length} characters, more than limits.maxStringLength (${this.limits.maxStringLength})`);
    }
    return v;
  }

  list(v: unknown, path: string, max: number, limitName: keyof DescriptionLimits): readonly unknown[] {
    if (!Array.isArray(v)) throw new DescriptionError(path, `expected a list, got ${previewValue(v)}`);
    if (v.length > max) throw new DescriptionError(path, `has ${v.length} entries, more than limits.${limitName} (${max})`);
    return v;
  }

  broadcastable(v: unknown, path: string): boolean[] {
    return this.list(v, path, this.limits.maxNdim, 'maxNdim').map((b, i) => bool(b, `${path}[${i}]`, this.ctx()));
  }

  ctx() {
    return { nInputs: 0, maxListLength: this.limits.maxListLength };
  }

  optionalName(o: Readonly<Record<string, unknown>>, path: string): { name?: string } {
    return 'name' in o ? { name: this.string(o['name'], `${path}.name`) } : {};
  }

  /** A serialised array: dimensions, then exactly their product of values, each valid for the dtype. */
  array(v: unknown, path: string): SerializedArray {
    const o = fields(v, path, ['dtype', 'shape', 'values']);
    const d = dtype(required(o, 'dtype', path), `${path}.dtype`, this.ctx());
    const shape = this.list(required(o, 'shape', path), `${path}.shape`, this.limits.maxNdim, 'maxNdim')
      .map((n, i) => int(0)(n, `${path}.shape[${i}]`, this.ctx()));
    const budget = this.limits.maxElements - this.elements;
    let size = 1;
    for (const n of shape) {
      size *= n;
      if (size > budget) {
        throw new DescriptionError(`${path}.shape`, `has more elements than limits.maxElements (${this.limits.maxElements}) allows for all values together`);
      }
    }
    this.elements += size;
    const raw = required(o, 'values', path);
    if (!Array.isArray(raw)) throw new DescriptionError(`${path}.values`, `expected a list, got ${previewValue(raw)}`);
    if (raw.length !== size) throw new DescriptionError(`${path}.values`, `has ${raw.length} values, shape [${shape.join(', ')}] needs ${size}`);
    const values: (number | string)[] = new Array<number | string>(size);
    for (let i = 0; i < size; i++) values[i] = checkValue(raw[i], d, `${path}.values[${i}]`);
    return { dtype: d, shape, values };
  }

  slot(v: unknown, path: string): SlotInfo {
    const o = fields(v, path, ['dtype', 'broadcastable', 'kind', 'name']);
    const kind = required(o, 'kind', path);
    if (kind !== 'input' && kind !== 'constant' && kind !== 'shared' && kind !== 'step') {
      throw new DescriptionError(`${path}.kind`, `expected 'input', 'constant', 'shared' or 'step', got ${previewValue(kind)}`);
    }
    return { ...this.type(o, path), kind, ...this.optionalName(o, path) };
  }

  /** The dtype and broadcastable fields of an object. */
  type(o: Readonly<Record<string, unknown>>, path: string): { dtype: DType; broadcastable: boolean[] } {
    const d = dtype(required(o, 'dtype', path), `${path}.dtype`, this.ctx());
    return { dtype: d, broadcastable: this.broadcastable(required(o, 'broadcastable', path), `${path}.broadcastable`) };
  }

  /** A list of slot indices, each below `defined` (the slots defined so far). */
  slotRefs(v: unknown, path: string, defined: number, max: number, limitName: keyof DescriptionLimits): number[] {
    return this.list(v, path, max, limitName).map((s, i) => slotRef(s, `${path}[${i}]`, defined));
  }

  fusedSteps(v: unknown, path: string, inputs: readonly DType[]): FusedStep[] {
    const raw = this.list(v, path, this.limits.maxFusedSteps, 'maxFusedSteps');
    if (raw.length === 0) throw new DescriptionError(path, 'a fused step needs at least one inner step');
    const dtypes = [...inputs];
    return raw.map((s, k) => {
      const at = `${path}[${k}]`;
      const o = fields(s, at, ['op', 'attrs', 'args', 'dtype']);
      const op = required(o, 'op', at);
      if (op === 'fused') throw new DescriptionError(`${at}.op`, 'a fused step cannot contain another fused step');
      if (typeof op !== 'string' || !isElementwiseOpName(op)) {
        throw new DescriptionError(`${at}.op`, `expected an elementwise op, got ${previewValue(op)}`);
      }
      const args = this.list(required(o, 'args', at), `${at}.args`, this.limits.maxListLength, 'maxListLength')
        .map((a, i) => int(0, dtypes.length - 1)(a, `${at}.args[${i}]`, this.ctx()));
      const attrs = parseAttrs(op, required(o, 'attrs', at), args.length, at, this.limits.maxListLength);
      const d = dtype(required(o, 'dtype', at), `${at}.dtype`, this.ctx());
      const inferred = inferType(op, args.map((a) => TensorType.ofNdim(dtypes[a]!, 0)), attrs, at);
      if (inferred.dtype !== d) {
        throw new DescriptionError(`${at}.dtype`, `${op} of ${args.map((a) => dtypes[a]).join(', ')} gives ${inferred.dtype}, not ${d}`);
      }
      dtypes.push(d);
      return { op, attrs, args, dtype: d };
    });
  }
}

/** A value as stored by serializeArray: a number (integer dtypes: in range) or 'NaN' / 'Infinity' / '-Infinity'. */
function checkValue(v: unknown, d: DType, path: string): number | string {
  if (typeof v === 'string' && NON_FINITE.has(v)) {
    if (d === 'float32' || d === 'float64') return v;
    throw new DescriptionError(path, `${v} is not a valid ${d} value`);
  }
  if (typeof v !== 'number') throw new DescriptionError(path, `expected a number, got ${previewValue(v)}`);
  const ok = d === 'float32' || d === 'float64' ? true
    : d === 'bool' ? v === 0 || v === 1
      : d === 'uint8' ? Number.isInteger(v) && v >= 0 && v <= 255
        : Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
  if (!ok) throw new DescriptionError(path, `${v} is not a valid ${d} value`);
  return v;
}

function slotRef(v: unknown, path: string, defined: number): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < defined) return v;
  throw new DescriptionError(path, `expected a slot defined earlier (0 to ${defined - 1}), got ${previewValue(v)}`);
}

function inferType(op: OpName, inputs: readonly TensorType[], attrs: Readonly<Record<string, unknown>>, path: string): TensorType {
  try {
    return getOpDef(op).inferType(inputs, attrs);
  } catch (e) {
    throw new DescriptionError(path, `does not type-check: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const sameType = (a: { dtype: DType; broadcastable: readonly boolean[] }, b: { dtype: DType; broadcastable: readonly boolean[] }) =>
  a.dtype === b.dtype && a.broadcastable.length === b.broadcastable.length && a.broadcastable.every((x, i) => x === b.broadcastable[i]);
const typeName = (s: { dtype: DType; broadcastable: readonly boolean[] }) => String(new TensorType(s.dtype, s.broadcastable));

function parseProgram(p: DescriptionParser, v: unknown, path: string, limits: DescriptionLimits): Program {
  const o = fields(v, path, ['slots', 'inputs', 'shareds', 'constants', 'steps', 'outputs', 'updates']);
  const slots = p.list(required(o, 'slots', path), `${path}.slots`, limits.maxSlots, 'maxSlots').map((s, i) => p.slot(s, `${path}.slots[${i}]`));
  const n = slots.length;
  const definedBy: (string | undefined)[] = new Array<string | undefined>(n);
  const define = (slot: number, kind: SlotInfo['kind'], at: string) => {
    if (slots[slot]!.kind !== kind) throw new DescriptionError(at, `slot ${slot} is declared as ${slots[slot]!.kind}, not ${kind}`);
    if (definedBy[slot] !== undefined) throw new DescriptionError(at, `slot ${slot} is already defined by ${definedBy[slot]}`);
    definedBy[slot] = at;
  };
  const inputs = p.slotRefs(required(o, 'inputs', path), `${path}.inputs`, n, limits.maxSlots, 'maxSlots');
  inputs.forEach((s, i) => define(s, 'input', `${path}.inputs[${i}]`));
  const sharedIds = new Set<string>();
  const shareds = p.list(required(o, 'shareds', path), `${path}.shareds`, limits.maxSlots, 'maxSlots').map((e, i) => {
    const at = `${path}.shareds[${i}]`;
    const f = fields(e, at, ['slot', 'sharedId']);
    const slot = slotRef(required(f, 'slot', at), `${at}.slot`, n);
    const sharedId = p.string(required(f, 'sharedId', at), `${at}.sharedId`, true);
    if (sharedIds.has(sharedId)) throw new DescriptionError(`${at}.sharedId`, `${JSON.stringify(sharedId)} appears twice`);
    sharedIds.add(sharedId);
    define(slot, 'shared', at);
    return { slot, sharedId };
  });
  const constants = p.list(required(o, 'constants', path), `${path}.constants`, limits.maxSlots, 'maxSlots').map((e, i) => {
    const at = `${path}.constants[${i}]`;
    const f = fields(e, at, ['slot', 'value']);
    const slot = slotRef(required(f, 'slot', at), `${at}.slot`, n);
    define(slot, 'constant', at);
    const value = p.array(required(f, 'value', at), `${at}.value`);
    checkFits(value, slots[slot]!, `${at}.value`);
    return { slot, value };
  });
  const rawSteps = p.list(required(o, 'steps', path), `${path}.steps`, limits.maxSteps, 'maxSteps');
  const steps: ProgramStep[] = rawSteps.map((e, k) => {
    const at = `${path}.steps[${k}]`;
    const f = fields(e, at, ['op', 'attrs', 'inputs', 'output']);
    const op = required(f, 'op', at);
    if (op !== 'fused' && !isPlainOp(op)) throw new DescriptionError(`${at}.op`, `unknown op ${previewValue(op)}`);
    const stepInputs = p.slotRefs(required(f, 'inputs', at), `${at}.inputs`, n, limits.maxListLength, 'maxListLength');
    stepInputs.forEach((s, i) => {
      if (definedBy[s] === undefined) throw new DescriptionError(`${at}.inputs[${i}]`, `slot ${s} is used before any step or list defines it`);
    });
    const output = slotRef(required(f, 'output', at), `${at}.output`, n);
    const inputTypes = stepInputs.map((s) => new TensorType(slots[s]!.dtype, slots[s]!.broadcastable));
    let attrs: Readonly<Record<string, unknown>>;
    if (op === 'fused') {
      const a = fields(required(f, 'attrs', at), `${at}.attrs`, ['steps']);
      attrs = { steps: p.fusedSteps(required(a, 'steps', `${at}.attrs`), `${at}.attrs.steps`, inputTypes.map((t) => t.dtype)) };
    } else {
      attrs = parseAttrs(op, required(f, 'attrs', at), stepInputs.length, at, limits.maxListLength);
    }
    const inferred = inferType(op, inputTypes, attrs, at);
    if (!sameType(inferred, slots[output]!)) {
      throw new DescriptionError(`${at}.output`, `${op} gives ${inferred}, but slot ${output} is declared ${typeName(slots[output]!)}`);
    }
    define(output, 'step', at);
    return { op, attrs, inputs: stepInputs, output };
  });
  // A slot may stay undefined (the optimiser leaves the slots of fused-away steps and folded constants behind): nothing may read it.
  const isDefined = (s: number, at: string) => { if (definedBy[s] === undefined) throw new DescriptionError(at, `slot ${s} is defined by no list or step`); };
  const outputs = p.slotRefs(required(o, 'outputs', path), `${path}.outputs`, n, limits.maxSlots, 'maxSlots');
  outputs.forEach((s, i) => isDefined(s, `${path}.outputs[${i}]`));
  const updated = new Set<string>();
  const updates = p.list(required(o, 'updates', path), `${path}.updates`, limits.maxSlots, 'maxSlots').map((e, i) => {
    const at = `${path}.updates[${i}]`;
    const f = fields(e, at, ['sharedId', 'slot']);
    const sharedId = p.string(required(f, 'sharedId', at), `${at}.sharedId`, true);
    const target = shareds.find((s) => s.sharedId === sharedId);
    if (!target) throw new DescriptionError(`${at}.sharedId`, `${JSON.stringify(sharedId)} is not one of the program's shared variables`);
    if (updated.has(sharedId)) throw new DescriptionError(`${at}.sharedId`, `${JSON.stringify(sharedId)} is updated twice`);
    updated.add(sharedId);
    const slot = slotRef(required(f, 'slot', at), `${at}.slot`, n);
    isDefined(slot, `${at}.slot`);
    const want = slots[target.slot]!, got = slots[slot]!;
    if (got.dtype !== want.dtype || got.broadcastable.length !== want.broadcastable.length || want.broadcastable.some((b, ax) => b && !got.broadcastable[ax])) {
      throw new DescriptionError(`${at}.slot`, `slot ${slot} (${typeName(got)}) cannot be the new value of a ${typeName(want)}`);
    }
    return { sharedId, slot };
  });
  return { slots, inputs, shareds, constants, steps, outputs, updates };
}

/** The array's dtype is the slot's, its ndim too, and the slot's broadcastable axes have size 1. */
function checkFits(value: SerializedArray, slot: { dtype: DType; broadcastable: readonly boolean[] }, path: string): void {
  if (value.dtype !== slot.dtype) throw new DescriptionError(`${path}.dtype`, `is ${value.dtype}, the slot is ${typeName(slot)}`);
  if (value.shape.length !== slot.broadcastable.length) {
    throw new DescriptionError(`${path}.shape`, `has ${value.shape.length} axes, the slot is ${typeName(slot)}`);
  }
  slot.broadcastable.forEach((b, ax) => {
    if (b && value.shape[ax] !== 1) throw new DescriptionError(`${path}.shape[${ax}]`, `is ${value.shape[ax]}, but axis ${ax} is broadcastable (size 1)`);
  });
}

/**
 * Validates `value` as a function description and returns a checked copy, or throws a
 * DescriptionError whose message starts with `caller` and names the path of the first problem.
 */
export function parseDescription(value: unknown, limits: DescriptionLimits, caller: string): FunctionDescription {
  try {
    return parse(value, limits);
  } catch (e) {
    if (e instanceof DescriptionError) throw new DescriptionError(e.path, e.detail, caller);
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw new DescriptionError('description', 'is nested too deeply', caller);
    throw e;
  }
}

function parse(value: unknown, limits: DescriptionLimits): FunctionDescription {
  const root = 'description';
  const p = new DescriptionParser(limits);
  const o = fields(value, root, ['format', 'name', 'program', 'inputs', 'singleOutput', 'shareds', 'log']);
  const format = required(o, 'format', root);
  if (format !== 'synkhronos.function/1') throw new DescriptionError(`${root}.format`, `expected 'synkhronos.function/1', got ${previewValue(format)}`);
  const program = parseProgram(p, required(o, 'program', root), `${root}.program`, limits);
  const rawInputs = p.list(required(o, 'inputs', root), `${root}.inputs`, limits.maxSlots, 'maxSlots');
  if (rawInputs.length !== program.inputs.length) {
    throw new DescriptionError(`${root}.inputs`, `has ${rawInputs.length} entries, the program has ${program.inputs.length} inputs`);
  }
  const inputs = rawInputs.map((e, i) => {
    const at = `${root}.inputs[${i}]`;
    const f = fields(e, at, ['name', 'dtype', 'broadcastable']);
    const spec = { ...p.optionalName(f, at), ...p.type(f, at) };
    const slot = program.slots[program.inputs[i]!]!;
    if (!sameType(spec, slot)) throw new DescriptionError(at, `is ${typeName(spec)}, the program's input slot is ${typeName(slot)}`);
    return spec;
  });
  const singleOutput = bool(required(o, 'singleOutput', root), `${root}.singleOutput`, p.ctx());
  if (singleOutput && program.outputs.length !== 1) {
    throw new DescriptionError(`${root}.singleOutput`, `is true, but the program has ${program.outputs.length} outputs`);
  }
  const rawShareds = p.list(required(o, 'shareds', root), `${root}.shareds`, limits.maxSlots, 'maxSlots');
  if (rawShareds.length !== program.shareds.length) {
    throw new DescriptionError(`${root}.shareds`, `has ${rawShareds.length} entries, the program has ${program.shareds.length} shared variables`);
  }
  const shareds = rawShareds.map((e, i) => {
    const at = `${root}.shareds[${i}]`;
    const f = fields(e, at, ['sharedId', 'name', 'dtype', 'broadcastable', 'value']);
    const sharedId = p.string(required(f, 'sharedId', at), `${at}.sharedId`, true);
    if (sharedId !== program.shareds[i]!.sharedId) {
      throw new DescriptionError(`${at}.sharedId`,
        `is ${JSON.stringify(sharedId)}, the program's shared variable ${i} is ${JSON.stringify(program.shareds[i]!.sharedId)}`);
    }
    const spec = p.type(f, at);
    const slot = program.slots[program.shareds[i]!.slot]!;
    if (!sameType(spec, slot)) throw new DescriptionError(at, `is ${typeName(spec)}, the program's slot is ${typeName(slot)}`);
    let val: SerializedArray | undefined;
    if ('value' in f) {
      val = p.array(f['value'], `${at}.value`);
      checkFits(val, spec, `${at}.value`);
    }
    return { sharedId, ...p.optionalName(f, at), ...spec, ...(val ? { value: val } : {}) };
  });
  const log = p.list(required(o, 'log', root), `${root}.log`, limits.maxListLength, 'maxListLength').map((l, i) => p.string(l, `${root}.log[${i}]`));
  return { format, ...('name' in o ? { name: p.string(o['name'], `${root}.name`) } : {}), program, inputs, singleOutput, shareds, log };
}

// ---- binding shared variables ----------------------------------------------------------------

/** Shared variables a caller binds: by the description's sharedId (a Map) or each by its own sharedId (a list). */
export type SharedBindings = ReadonlyMap<string, SharedVariable> | readonly SharedVariable[];

/**
 * The caller's bindings checked against a checked description: a Map from the description's
 * sharedIds to variables of the same type, each id and each variable at most once.
 */
export function checkBindings(description: FunctionDescription, given: unknown, caller: string): Map<string, SharedVariable> {
  const ids = description.shareds.map((s) => s.sharedId);
  const byId = new Map<string, SharedVariable>();
  const bindOne = (id: unknown, v: unknown, what: string) => {
    if (!(v instanceof SharedVariable)) throw new TypeError(`${caller}: ${what} must be a shared variable, got ${previewValue(v)}`);
    if (typeof id !== 'string' || !ids.includes(id)) {
      const known = ids.map((i) => JSON.stringify(i)).join(', ') || 'none';
      throw new TypeError(`${caller}: ${what} names sharedId ${previewValue(id)}, which the description does not have (it has ${known})`);
    }
    if (byId.has(id)) throw new TypeError(`${caller}: ${what}: sharedId ${JSON.stringify(id)} is bound twice`);
    const spec = description.shareds[ids.indexOf(id)]!;
    if (!sameType(v, spec)) {
      throw new TypeError(`${caller}: ${what} (${v.label()}) does not match the description's ${typeName(spec)} for sharedId ${JSON.stringify(id)}`);
    }
    if ([...byId.values()].includes(v)) throw new TypeError(`${caller}: ${what}: the same shared variable is bound to two of the description's sharedIds`);
    byId.set(id, v);
  };
  if (given instanceof Map) {
    for (const [id, v] of given as Map<unknown, unknown>) bindOne(id, v, `shareds.get(${previewValue(id)})`);
  } else if (Array.isArray(given)) {
    given.forEach((v: unknown, i) => bindOne(v instanceof SharedVariable ? v.sharedId : undefined, v, `shareds[${i}]`));
  } else if (given !== undefined) {
    throw new TypeError(`${caller}: shareds must be a Map from sharedId to shared variable or a list of shared variables, got ${previewValue(given)}`);
  }
  return byId;
}

/**
 * The shared variables a checked description runs with: the bound ones, fresh ones (the
 * description's value, else zeros) for the others; and the description with its sharedIds renamed
 * to the variables' own, so each id means the variable it is bound to. A description never
 * reaches a variable by id: only `bindings` (from checkBindings) is consulted.
 */
export function bindShareds(description: FunctionDescription, bindings: ReadonlyMap<string, SharedVariable>)
  : { description: FunctionDescription; shareds: SharedVariable[] } {
  const ids = description.shareds.map((s) => s.sharedId);
  const shareds = description.shareds.map((s) => bindings.get(s.sharedId) ?? new SharedVariable(
    s.value ? deserializeArray(s.value) : NDArray.zeros(s.broadcastable.map((b) => (b ? 1 : 0)), s.dtype),
    { broadcastable: s.broadcastable, ...(s.name !== undefined ? { name: s.name } : {}) },
  ));
  const rename = new Map(ids.map((id, i) => [id, shareds[i]!.sharedId]));
  if (new Set(rename.values()).size !== ids.length) throw new TypeError('two bound shared variables have the same sharedId');
  if (ids.every((id) => rename.get(id) === id)) return { description, shareds };
  const to = (id: string) => rename.get(id)!;
  const p = description.program;
  return {
    description: {
      ...description,
      program: {
        ...p,
        shareds: p.shareds.map((s) => ({ ...s, sharedId: to(s.sharedId) })),
        updates: p.updates.map((u) => ({ ...u, sharedId: to(u.sharedId) })),
      },
      shareds: description.shareds.map((s) => ({ ...s, sharedId: to(s.sharedId) })),
    },
    shareds,
  };
}
