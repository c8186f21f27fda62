// T.fn: compiled functions with updates and givens, runnable on any Device, serialisable to JSON.
import { NDArray, describe, shapeToString } from '../tensor/ndarray.js';
import type { DType } from '../tensor/dtype.js';
import { conformValue, type ShapedArray } from '../tensor/conform.js';
import { refuseUnknownKeys } from '../tensor/options.js';
import type { ArrayInput, OutputsOf } from '../compile/fn-types.js';
import { SharedVariable, Variable, Constant } from '../tensor/variable.js';
import type { Device, DeviceArray, Executable } from '../devices/device.js';
import { StepError } from '../compile/step-error.js';
import { defaultDevice } from '../devices/default-device.js';
import { buildProgram, conformTo, substitute, type Givens } from '../compile/build-program.js';
import { optimize, type OptimizeOptions } from '../compile/optimize.js';
import { checkPrecision, programPrecision, type Precision } from '../compile/precision.js';
import { printProgram } from '../compile/print.js';
import type { FunctionDescription, Program, SerializedArray } from '../compile/program.js';

export type { FunctionDescription };
import { serializeArray } from '../compile/serialize-array.js';
import {
  bindShareds, checkBindings, fields, NO_DESCRIPTION_LIMITS, parseDescription, resolveLimits, type DescriptionLimits, type SharedBindings,
} from '../compile/validate-description.js';
import { inputAncestors } from '../compile/ancestry.js';
import { randomUpdatesFor } from '../build/random-streams.js';
import { residentCopy, residentValue } from '../devices/resident.js';

/** What {@link fn} compiles. */
export interface FnSpec {
  /** The free variables the function takes, in call order. */
  inputs?: readonly Variable[];
  /** One variable (the function returns one array) or a list (it returns a list); none for a function of updates only. */
  outputs?: Variable | readonly Variable[] | null;
  /** New values of shared variables, all computed from the old ones and then applied together after each call. */
  updates?: readonly (readonly [SharedVariable, unknown])[] | Map<SharedVariable, unknown>;
  /** Replacements of graph variables by other expressions (Theano's givens), applied before compiling. */
  givens?: Givens;
  /** Where it runs (default: {@link getDefaultDevice}). */
  device?: Device;
  name?: string;
  /** Graph rewrites to skip or keep (all run by default). */
  optimize?: OptimizeOptions;
  /**
   * The precision policy (default 'fp32'). 'bf16', as torch.autocast(dtype=torch.bfloat16): every float32
   * matmul and convolution (and their gradients) multiplies bfloat16 operands with float32 sums;
   * everything else, parameters, updates and gradients stay float32. See src/compile/precision.ts.
   */
  precision?: Precision;
}


export type { ShapedArray, ArrayInput };

export { defaultDevice, setDefaultDevice } from '../devices/default-device.js';
/** @deprecated use defaultDevice() */
export const getDefaultDevice = defaultDevice;

/**
 * A shared variable's new value: on the host, or (GPU devices) resident on the device, where it
 * stays until someone reads it, so training loops copy nothing back per step.
 */
export type UpdateValue =
  | { readonly shared: SharedVariable; readonly value: NDArray; readonly resident?: undefined }
  | { readonly shared: SharedVariable; readonly value?: undefined; readonly resident: DeviceArray };

export interface EvaluateResult {
  readonly outputs: NDArray[];
  readonly updates: UpdateValue[];
}

export interface EvaluateOptions {
  readonly outputSubset?: readonly number[];
  /** Bring update values to the host even on a GPU (e.g. to accumulate them across slices). */
  readonly updatesOnHost?: boolean;
  /**
   * The caller applies the updates right after and needs no old shared value (see
   * RunOptions.updatesInPlace): a device may update shared variables in place (CUDA graphs).
   * Default: true unless updatesOnHost.
   */
  readonly updatesInPlace?: boolean;
}

/** How a CompiledFunction binds shared variables and which size limits its description must keep. */
export interface CompiledFunctionOptions {
  /** Shared variables to bind (see FromDescriptionOptions.shareds). */
  readonly shareds?: SharedBindings;
  /** Size limits (DEFAULT_DESCRIPTION_LIMITS with these overrides); absent: none. */
  readonly limits?: Partial<DescriptionLimits>;
}

/** The graph's shared variables of each description describeFunction made in this thread (object identity, never ids). */
const graphShareds = new WeakMap<object, readonly SharedVariable[]>();

/**
 * A function compiled for one device, as {@link fn} wraps it (`f.compiled`): it converts and checks the inputs, runs the
 * program, applies the updates and keeps one executable per output subset.
 */
export class CompiledFunction {
  readonly description: FunctionDescription;
  readonly device: Device;
  readonly shareds: readonly SharedVariable[];
  private readonly executables = new Map<string, { exe: Executable; program: Program }>();

  /**
   * Validates the description completely (a DescriptionError names the path of the first problem)
   * and binds its shared variables: `options.shareds`, else, for a description T.fn built in this
   * thread, the variables of its graph; every other one is created fresh. Size limits apply only
   * when `options.limits` is given (fnFromDescription always gives them).
   */
  constructor(description: FunctionDescription, device: Device, options: CompiledFunctionOptions = {}) {
    const o = fields(options, 'CompiledFunction: options', ['shareds', 'limits']);
    const limits = o['limits'] === undefined ? NO_DESCRIPTION_LIMITS : resolveLimits(o['limits'], 'CompiledFunction: options.limits');
    const checked = parseDescription(description, limits, 'CompiledFunction');
    checkDevicePrecision(device, programPrecision(checked.program), 'CompiledFunction');
    const bound = bindShareds(checked, checkBindings(checked, o['shareds'] ?? graphShareds.get(description), 'CompiledFunction'));
    this.description = bound.description;
    this.device = device;
    this.shareds = bound.shareds;
  }

  get nInputs(): number {
    return this.description.inputs.length;
  }

  get nOutputs(): number {
    return this.description.program.outputs.length;
  }

  /** Converts a user value for input `i` to an NDArray of the declared type, or throws naming the input. */
  coerceInput(value: unknown, i: number): NDArray {
    const spec = this.description.inputs[i]!;
    const what = `input ${i}${spec.name !== undefined ? ` '${spec.name}'` : ''}`;
    const a = conformValue(value, spec.dtype, { what });
    if (a.ndim !== spec.broadcastable.length) {
      throw new TypeError(`${what}: expected ndim ${spec.broadcastable.length}, got shape ${shapeToString(a.shape)} (ndim ${a.ndim})`);
    }
    spec.broadcastable.forEach((b, ax) => {
      if (b && a.shape[ax] !== 1) throw new TypeError(`${what}: axis ${ax} is broadcastable and must have size 1, got ${a.shape[ax]}`);
    });
    return a;
  }

  private executable(outputSubset?: readonly number[]): { exe: Executable; program: Program } {
    const key = outputSubset ? outputSubset.join(',') : '*';
    let entry = this.executables.get(key);
    if (!entry) {
      const full = this.description.program;
      const program: Program = outputSubset ? { ...full, outputs: outputSubset.map((k) => full.outputs[k]!) } : full;
      entry = { exe: this.device.compile(program), program };
      this.executables.set(key, entry);
    }
    return entry;
  }

  private sharedArg(s: SharedVariable): DeviceArray {
    return this.device.keepsSharedResident === true ? residentValue(this.device, s) : s.getValue({ borrow: true });
  }

  /**
   * Runs the program on already-coerced inputs without applying updates. Inputs may be host arrays
   * (uploaded for the call) or arrays already on this device (the caller keeps ownership).
   */
  evaluate(inputs: readonly (NDArray | DeviceArray)[], options: EvaluateOptions = {}): EvaluateResult {
    const { exe, program } = this.executable(options.outputSubset);
    const onGpu = this.device.keepsSharedResident === true;
    const uploaded: DeviceArray[] = [];
    const args: DeviceArray[] = inputs.map((a) => {
      if (!(a instanceof NDArray)) return a;
      const d = this.device.upload(a);
      uploaded.push(d);
      return d;
    });
    for (const s of this.shareds) args.push(this.sharedArg(s));
    // Device memory (CUDA) is released as soon as it is not needed.
    const release = (values: readonly DeviceArray[]) => { if (onGpu) for (const v of values) this.device.free(v); };
    let results: DeviceArray[];
    try {
      results = exe.run(args, { updatesInPlace: options.updatesInPlace ?? options.updatesOnHost !== true });
    } catch (e) {
      release(uploaded);
      throw this.explain(e, program);
    }
    const nOut = program.outputs.length;
    const outputs = results.slice(0, nOut).map((r) => this.device.download(r));
    const keepResident = onGpu && options.updatesOnHost !== true;
    const done = [...uploaded, ...results.slice(0, nOut)]; // device values no longer needed
    const updates: UpdateValue[] = program.updates.map((u, k) => {
      const shared = this.sharedById(u.sharedId);
      const r = results[nOut + k]!;
      if (keepResident && r.dtype === shared.dtype) return { shared, resident: r };
      done.push(r);
      return { shared, value: this.device.download(r) };
    });
    release(done);
    return { outputs, updates };
  }

  /**
   * Gives result arrays of `evaluate` that the caller no longer holds back to the executable, which
   * reuses their memory (the runtime does this with the flat gradient it copied away).
   */
  recycle(values: readonly (NDArray | DeviceArray)[], outputSubset?: readonly number[]): void {
    this.executable(outputSubset).exe.recycle?.(values);
  }

  /** Applies update values computed by `evaluate` (all were computed from the old values). */
  applyUpdates(updates: readonly UpdateValue[]): void {
    const device = this.device;
    for (const u of updates) {
      if (u.resident) {
        u.shared.assignOnDevice(device, residentCopy(device, u.resident));
      } else {
        u.shared.assignComputed(u.value.dtype === u.shared.dtype ? u.value : u.value.astype(u.shared.dtype));
      }
    }
  }

  /**
   * Runs the function on `args` (converted as the inputs' types require) and applies its updates; `outputSubset`
   * computes only the listed outputs.
   */
  call(args: readonly unknown[], options: { readonly outputSubset?: readonly number[] } = {}): NDArray | NDArray[] {
    if (args.length !== this.nInputs) {
      const names = this.description.inputs.map((s, i) => s.name ?? `#${i}`).join(', ');
      throw new TypeError(`${this.description.name ?? 'function'}: expected ${this.nInputs} input(s) (${names}), got ${args.length}`);
    }
    const inputs = args.map((a, i) => this.coerceInput(a, i));
    const { outputs, updates } = this.evaluate(inputs, options);
    this.applyUpdates(updates);
    return this.description.singleOutput && !options.outputSubset ? outputs[0]! : outputs;
  }

  private sharedById(id: string): SharedVariable {
    const s = this.shareds.find((x) => x.sharedId === id);
    if (!s) throw new Error(`internal: update of unknown shared variable ${id}`);
    return s;
  }

  private explain(e: unknown, program: Program): Error {
    if (!(e instanceof StepError)) return e instanceof Error ? e : new Error(String(e));
    const step = program.steps[e.stepIndex]!;
    const from = inputAncestors(program, e.stepIndex).map((k) => {
      const spec = this.description.inputs[k]!;
      return `input ${k}${spec.name !== undefined ? ` '${spec.name}'` : ''}`;
    });
    const err = new Error(`${e.message} (in step ${step.op} -> %${step.output}${from.length ? `, computed from ${from.join(', ')}` : ''})`);
    err.name = e.name;
    return err;
  }

  /** The optimised program, printed one op per line, with the rewrites that produced it. */
  graph(): string {
    return printProgram(this.description.program, this.description.log);
  }
}

/** The `outputs` of a spec: one variable, a list of them, or none. */
export type OutputsSpec = Variable | readonly Variable[] | null | undefined;

/** What a compiled function returns: one NDArray for one output variable, a tuple for a list. */
export type ResultOf<O> = OutputsOf<O>;

/** One argument per declared input, in order. */
export type ArgsOf<I> = I extends readonly Variable[] ? { -readonly [K in keyof I]: ArrayInput } : ArrayInput[];

/** A compiled function (`T.fn`): call it with one value per input. */
export type Fn<I extends readonly Variable[] = readonly Variable[], O extends OutputsSpec = OutputsSpec> = ((...args: ArgsOf<I>) => ResultOf<O>) & {
  readonly compiled: CompiledFunction;
  /** The optimised program, printed (folded constants, fused kernels). */
  graph(): string;
  /** The function as plain JSON (no code), rebuilt anywhere by `fnFromDescription`. */
  describe(options?: { includeValues?: boolean }): FunctionDescription;
};

function wrap<I extends readonly Variable[], O extends OutputsSpec>(compiled: CompiledFunction): Fn<I, O> {
  const f = (...args: ArgsOf<I>) => compiled.call(args) as ResultOf<O>;
  return Object.assign(f, {
    compiled,
    graph: () => compiled.graph(),
    describe: (options: { includeValues?: boolean } = {}) => describeWithValues(compiled, options.includeValues ?? true),
  });
}

function describeWithValues(compiled: CompiledFunction, includeValues: boolean): FunctionDescription {
  const d = compiled.description;
  return {
    ...d,
    shareds: d.shareds.map((s, i) => {
      const { value: _drop, ...rest } = s;
      return includeValues ? { ...rest, value: serializeArray(compiled.shareds[i]!.getValue({ borrow: true })) } : rest;
    }),
  };
}

/** Builds the description of a function (shared by T.fn and the data-parallel synk.fn). */
/** A list option: an array (or a Map where `maps` allows it), else a clear TypeError naming it. */
function listOption<T>(value: unknown, what: string, expected: string): T[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value) || value instanceof Map) return [...(value as Iterable<T>)];
  throw new TypeError(`fn: ${what} must be ${expected}, got ${describe(value)}`);
}

function pairOf(entry: unknown, what: string): readonly [unknown, unknown] {
  if (!Array.isArray(entry) || entry.length < 2) throw new TypeError(`fn: ${what} must be a pair [variable, expression], got ${describe(entry)}`);
  return [entry[0], entry[1]];
}

export function describeFunction(spec: FnSpec): FunctionDescription {
  const precision = checkPrecision(spec.precision, 'fn: precision');
  if (spec.inputs !== undefined && spec.inputs !== null && !Array.isArray(spec.inputs)) {
    throw new TypeError(`fn: inputs must be an array of symbolic variables, got ${describe(spec.inputs)}`);
  }
  const inputs = [...(spec.inputs ?? [])];
  inputs.forEach((v, i) => {
    if (!(v instanceof Variable)) throw new TypeError(`fn: inputs[${i}] must be a symbolic variable, got ${describe(v)}`);
    if (v instanceof Constant || v instanceof SharedVariable || v.owner) {
      throw new TypeError(
        `fn: inputs[${i}] (${v.label()}) must be a free variable (made by T.scalar, T.matrix, ...), not a constant, shared variable or computed value`,
      );
    }
  });
  if (new Set(inputs).size !== inputs.length) throw new TypeError('fn: the same variable is given twice in inputs');
  const single = spec.outputs instanceof Variable;
  if (!single && spec.outputs !== undefined && spec.outputs !== null && !Array.isArray(spec.outputs)) {
    throw new TypeError(`fn: outputs must be a symbolic variable or an array of them, got ${describe(spec.outputs)}`);
  }
  const outputs = spec.outputs === undefined || spec.outputs === null ? [] : single ? [spec.outputs as Variable] : [...(spec.outputs as readonly Variable[])];
  outputs.forEach((o, i) => { if (!(o instanceof Variable)) throw new TypeError(`fn: outputs[${i}] must be a symbolic variable, got ${describe(o)}`); });
  const updateList = listOption<unknown>(spec.updates, 'updates', 'an array of [shared variable, expression] pairs or a Map')
    .map((u, i) => pairOf(u, `updates[${i}]`));
  const seen = new Set<SharedVariable>();
  const updates: (readonly [SharedVariable, Variable])[] = updateList.map((u, i) => {
    const [s, e] = u;
    if (!(s instanceof SharedVariable)) throw new TypeError(`fn: updates[${i}][0] must be a shared variable, got ${describe(s)}`);
    if (seen.has(s)) throw new TypeError(`fn: shared variable ${s.label()} is updated twice`);
    seen.add(s);
    return [s, conformTo(s, e, `fn: updates[${i}] (new value of ${s.label()})`)] as const;
  });
  const givenList = listOption<unknown>(spec.givens, 'givens', 'an array of [variable, replacement] pairs or a Map')
    .map((g, i) => pairOf(g, `givens[${i}]`));
  const givens = new Map<Variable, Variable>();
  givenList.forEach(([v, r], i) => {
    if (!(v instanceof Variable)) throw new TypeError(`fn: givens[${i}][0] must be a symbolic variable, got ${describe(v)}`);
    givens.set(v, conformTo(v, r, `fn: givens[${i}] (replacement for ${v.label()})`));
  });
  // Random draws advance their streams' states; updates the user gave explicitly win.
  for (const [sv, e] of randomUpdatesFor([...outputs, ...updates.map(([, u]) => u), ...givens.values()])) {
    if (!seen.has(sv)) { seen.add(sv); updates.push([sv, e] as const); }
  }
  const roots = substitute([...outputs, ...updates.map(([, e]) => e)], givens);
  const built = buildProgram(inputs, roots.slice(0, outputs.length), updates.map(([s], k) => [s, roots[outputs.length + k]!] as const));
  const { program, log } = optimize(built.program, spec.optimize, precision);
  const shareds = program.shareds.map((ps) => built.shareds.find((s) => s.sharedId === ps.sharedId)!);
  const description: FunctionDescription = {
    format: 'synkhronos.function/1',
    ...(spec.name !== undefined ? { name: spec.name } : {}),
    program,
    inputs: inputs.map((v) => ({ ...(v.name !== undefined ? { name: v.name } : {}), dtype: v.dtype, broadcastable: v.broadcastable })),
    singleOutput: single,
    shareds: shareds.map((s) => ({ sharedId: s.sharedId, ...(s.name !== undefined ? { name: s.name } : {}), dtype: s.dtype, broadcastable: s.broadcastable })),
    log,
  };
  graphShareds.set(description, shareds);
  return description;
}

const FN_SPEC_KEYS = ['inputs', 'outputs', 'updates', 'givens', 'device', 'name', 'optimize', 'precision'] as const;

/** Refuses a precision policy (other than 'fp32') that `device` does not run, naming the device and its reason. */
export function checkDevicePrecision(device: Device, precision: Precision, what: string): void {
  if (precision === 'fp32') return;
  const answer = device.supportsPrecision?.(precision) ?? 'it runs float32 only';
  if (answer !== true) throw new RangeError(`${what}: precision '${precision}' is not supported by device ${device.name}: ${answer}`);
}


/**
 * Compiles a function (Theano's theano.function) for `spec.device`, else the default device (the
 * fast CPU device). With one output variable it returns one NDArray; with a list, a tuple.
 *
 * @example
 * const x = T.vector('x');
 * const f = T.fn({ inputs: [x], outputs: x.mul(2) });
 * f([1, 2, 3]).toArray(); // [2, 4, 6]
 */
export function fn<const I extends readonly Variable[] = [], const O extends OutputsSpec = undefined>(
  spec: FnSpec & { readonly inputs?: I; readonly outputs?: O },
): Fn<I, O> {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new TypeError(`fn: expected an options object { inputs, outputs, updates, givens }, got ${describe(spec)}`);
  }
  refuseUnknownKeys(spec, FN_SPEC_KEYS, 'fn');
  if (spec.device !== undefined && (typeof spec.device !== 'object' || spec.device === null || typeof spec.device.compile !== 'function')) {
    throw new TypeError(`fn: device must be a Device (CpuDevice, ReferenceDevice, CudaDevice), got ${describe(spec.device)}`);
  }
  if (spec.name !== undefined && typeof spec.name !== 'string') throw new TypeError(`fn: name must be a string, got ${describe(spec.name)}`);
  const device = spec.device ?? defaultDevice();
  checkDevicePrecision(device, checkPrecision(spec.precision, 'fn: precision'), 'fn');
  return wrap<I, O>(new CompiledFunction(describeFunction(spec), device));
}

/** Options of {@link fnFromDescription}: the device, the shared variables to bind, and size limits. */
export interface FromDescriptionOptions {
  readonly device?: Device;
  /**
   * The application's shared variables the function may read and update: a Map from the
   * description's sharedId, or a list (each bound by its own sharedId). Every other shared variable
   * of the description is created fresh, from the description's value; none is found by id.
   */
  readonly shareds?: SharedBindings;
  /** Raises (or lowers) DEFAULT_DESCRIPTION_LIMITS. */
  readonly limits?: Partial<DescriptionLimits>;
}

/**
 * Rebuilds a function from its JSON description (in this or another thread), after validating
 * all of it against the schema and the size limits. The second argument is a device or options.
 */
export function fnFromDescription(description: unknown, options: Device | FromDescriptionOptions = {}): Fn {
  const isDevice = (d: unknown): d is Device => typeof (d as Partial<Device> | null)?.compile === 'function';
  const o = isDevice(options) ? { device: options } : fields(options, 'fnFromDescription: options', ['device', 'shareds', 'limits']);
  if (o['device'] !== undefined && !isDevice(o['device'])) {
    throw new TypeError(`fnFromDescription: options.device must be a device, got ${describe(o['device'])}`);
  }
  const limits = resolveLimits(o['limits'] ?? {}, 'fnFromDescription: options.limits');
  const checked = parseDescription(description, limits, 'fnFromDescription');
  const device = o['device'] ?? defaultDevice();
  const shareds = checkBindings(checked, o['shareds'] ?? [], 'fnFromDescription');
  // The constructor checks the copy again (without limits) and binds only these.
  return wrap(new CompiledFunction(checked, device, { shareds }));
}
