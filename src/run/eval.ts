// x.eval({ x: value }): the value of a symbolic expression, for a quick look (Theano's eval).
// It compiles through T.fn, and src/tensor may not import the compiler that sits above it, so this
// module, loaded by the public T entry point (tensor/index.ts), installs the method on Variable.
// The method is declared by module augmentation, as methods.ts does, rather than as a stub in
// variable.ts: the tensor layer then knows nothing of compilation.
import { Constant, SharedVariable, Variable } from '../tensor/variable.js';
import { type NDArray, describe, shapeToString } from '../tensor/ndarray.js';
import { conformValue } from '../tensor/conform.js';
import { fn, getDefaultDevice, type Fn } from './function.js';
import type { Device } from '../devices/device.js';

/** Values for an expression's free inputs: by name, or by the variables themselves. */
export type EvalInputs = Readonly<Record<string, unknown>> | ReadonlyMap<Variable, unknown>;

declare module '../tensor/variable.js' {
  interface Variable {
    /**
     * Computes this expression (Theano's eval). Every free input of its graph (made by T.scalar,
     * T.matrix, ...) needs a value, given by name (`{ x: [1, 2] }`) or in a Map keyed by the
     * variable. Compiled once per variable and device on the default device (T.getDefaultDevice());
     * random draws advance their streams, as a call of the compiled function would.
     */
    eval(inputs?: EvalInputs): NDArray;
  }
}

interface Compiled {
  readonly device: Device;
  readonly f: Fn;
  readonly inputs: readonly Variable[];
}

const compiledFor = new WeakMap<Variable, Compiled>();

/** The free variables of the graph of `root` (no owner, not a constant, not shared), in a fixed order. */
function freeInputs(root: Variable): Variable[] {
  const found: Variable[] = [];
  const seen = new Set<Variable>();
  const stack = [root];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.owner) for (let i = v.owner.inputs.length - 1; i >= 0; i--) stack.push(v.owner.inputs[i]!);
    else if (!(v instanceof Constant) && !(v instanceof SharedVariable)) found.push(v);
  }
  return found;
}

function inputLabel(v: Variable): string {
  return v.name !== undefined ? `'${v.name}' (${v.type})` : `an unnamed input (${v.type})`;
}

function listInputs(inputs: readonly Variable[]): string {
  return inputs.length === 0 ? 'it has none' : `its inputs are ${inputs.map(inputLabel).join(', ')}`;
}

/** Pairs each given value with its input variable, or throws naming the unknown, ambiguous or missing one. */
function matchInputs(inputs: readonly Variable[], given: EvalInputs | undefined): Map<Variable, unknown> {
  const values = new Map<Variable, unknown>();
  if (given instanceof Map) {
    for (const [key, value] of given) {
      if (!(key instanceof Variable)) throw new TypeError(`eval: the keys of an inputs Map must be symbolic variables, got ${describe(key)}`);
      if (!inputs.includes(key)) {
        const why = key instanceof SharedVariable || key instanceof Constant ? ' (shared variables and constants have their own values)' : '';
        throw new TypeError(`eval: ${key.label()} is not an input of this expression${why}; ${listInputs(inputs)}`);
      }
      values.set(key, value);
    }
  } else if (given !== undefined) {
    const isRecord = typeof given === 'object' && given !== null && [Object.prototype, null].includes(Object.getPrototypeOf(given));
    if (!isRecord) {
      throw new TypeError(`eval: inputs must be an object { name: value } or a Map from variables to values, got ${describe(given)}`);
    }
    for (const [name, value] of Object.entries(given)) {
      const named = inputs.filter((v) => v.name === name);
      if (named.length === 0) throw new TypeError(`eval: no input of this expression is named '${name}'; ${listInputs(inputs)}`);
      if (named.length > 1) {
        throw new TypeError(`eval: ${named.length} inputs of this expression are named '${name}'; give their values in a Map keyed by the variables`);
      }
      values.set(named[0]!, value);
    }
  }
  const missing = inputs.filter((v) => !values.has(v));
  if (missing.length > 0) {
    const how = missing.some((v) => v.name === undefined) ? 'give unnamed inputs in a Map keyed by the variables' : 'give them as { name: value }';
    throw new TypeError(`eval: no value for ${missing.map(inputLabel).join(', ')}; ${how}`);
  }
  return values;
}

/** Converts a value for `v` (dtype by the one cast rule, then ndim and broadcastable axes), naming it in errors. */
function conformInput(v: Variable, value: unknown): NDArray {
  const what = `eval: input ${inputLabel(v)}`;
  const a = conformValue(value, v.dtype, { what });
  if (a.ndim !== v.ndim) throw new TypeError(`${what}: expected ndim ${v.ndim}, got shape ${shapeToString(a.shape)} (ndim ${a.ndim})`);
  v.broadcastable.forEach((b, axis) => {
    if (b && a.shape[axis] !== 1) throw new TypeError(`${what}: axis ${axis} is broadcastable and must have size 1, got ${a.shape[axis]}`);
  });
  return a;
}

function compiled(v: Variable): Compiled {
  const device = getDefaultDevice();
  const cached = compiledFor.get(v);
  if (cached && cached.device === device) return cached;
  const inputs = cached?.inputs ?? freeInputs(v);
  const entry: Compiled = { device, inputs, f: fn({ inputs, outputs: v, device }) };
  compiledFor.set(v, entry);
  return entry;
}

Object.assign(Variable.prototype, {
  eval(this: Variable, given?: EvalInputs): NDArray {
    const inputs = compiledFor.get(this)?.inputs ?? freeInputs(this);
    const values = matchInputs(inputs, given);
    const args = inputs.map((v) => conformInput(v, values.get(v)));
    return compiled(this).f(...args) as NDArray;
  },
});
