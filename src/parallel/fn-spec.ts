// The options of synk.fn, checked in full before anything is built or registered: a function that
// was refused leaves nothing behind that a later call, close() or fork() could trip over.
import { describe } from '../tensor/ndarray.js';
import { isFloat } from '../tensor/dtype.js';
import { Constant, SharedVariable, Variable } from '../tensor/variable.js';
import type { Givens } from '../compile/build-program.js';
import { isOutputOp, OUTPUT_OPS, UPDATE_OPS, type OutputOp, type UpdateOp } from './accumulate.js';
import { checkOptions } from './call-args.js';
import { checkPrecision, type Precision } from '../compile/precision.js';

/** An output of a data-parallel function: a variable, or `[variable, op]` with the op that combines the workers' parts. */
export type OutputSpec = Variable | readonly [Variable, OutputOp];
export type OutputsSpec = OutputSpec | readonly OutputSpec[] | null | undefined;
/** An update: `[shared, expression]`, or `[shared, expression, op]` to accumulate it over `numSlices`. */
export type UpdateSpec = readonly [SharedVariable, unknown] | readonly [SharedVariable, unknown, UpdateOp];

/** What `synk.fn` takes: `T.fn`'s spec plus `bcastInputs` and `sliceableShareds`, and ops on outputs and updates. */
export interface SynkFnSpec<O extends OutputsSpec = OutputsSpec> {
  /** Scattered along axis 0 over the workers. */
  inputs?: readonly Variable[];
  /** Sent whole to every worker. */
  bcastInputs?: readonly Variable[];
  /** One output (a variable or [variable, op]) or a list of them; the op combines ranks' and slices' pieces (default 'avg'). */
  outputs?: O;
  updates?: readonly UpdateSpec[] | ReadonlyMap<SharedVariable, unknown>;
  givens?: Givens;
  /** Shared variables whose rows `batchS` selects on each worker. */
  sliceableShareds?: readonly SharedVariable[];
  name?: string;
  /** The precision policy, as T.fn's (default 'fp32'; 'bf16': bfloat16 operands for matmul and convolutions). */
  precision?: Precision;
}

export const SPEC_KEYS = ['inputs', 'bcastInputs', 'outputs', 'updates', 'givens', 'sliceableShareds', 'name', 'precision'] as const;

/** The spec in checked, plain form. */
export interface CheckedSpec {
  readonly inputs: readonly Variable[];
  readonly bcast: readonly Variable[];
  readonly outputs: { readonly vars: readonly Variable[]; readonly ops: readonly OutputOp[]; readonly single: boolean };
  readonly updates: readonly (readonly [SharedVariable, unknown])[];
  readonly updateOps: readonly UpdateOp[];
  readonly givens: readonly (readonly [Variable, unknown])[];
  readonly sliceable: readonly SharedVariable[];
  readonly name: string | undefined;
  readonly precision: Precision;
}

function listOf(value: unknown, what: string, expected: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TypeError(`synk.fn: ${what} must be a list of ${expected}, got ${describe(value)}`);
  return [...(value as unknown[])];
}

function freeVariables(value: unknown, what: string): Variable[] {
  return listOf(value, what, 'variables').map((v, i) => {
    if (!(v instanceof Variable)) throw new TypeError(`synk.fn: ${what}[${i}] must be a symbolic variable, got ${describe(v)}`);
    if (v instanceof Constant || v instanceof SharedVariable || v.owner) {
      throw new TypeError(`synk.fn: ${what}[${i}] (${v.label()}) must be a free variable (made by T.scalar, T.matrix, ...), `
        + 'not a constant, shared variable or computed value');
    }
    return v;
  });
}

/** A list of pairs, or the entries of a Map. */
function pairsOf(value: unknown, what: string, lengths: readonly number[]): unknown[][] {
  const list = value instanceof Map ? [...(value as Map<unknown, unknown>)] : listOf(value, what, `[key, value] pairs or a Map`);
  return list.map((p, i) => {
    const form = lengths.includes(3) ? '[shared, expr] or [shared, expr, op]' : '[variable, replacement]';
    if (!Array.isArray(p) || !lengths.includes(p.length)) throw new TypeError(`synk.fn: ${what}[${i}] must be ${form}, got ${describe(p)}`);
    return p as unknown[];
  });
}

function isPair(o: unknown): o is readonly [Variable, string] {
  return Array.isArray(o) && o.length === 2 && o[0] instanceof Variable && typeof o[1] === 'string';
}

function checkOutputs(outputs: unknown): CheckedSpec['outputs'] {
  if (outputs === undefined || outputs === null) return { vars: [], ops: [], single: false };
  const single = outputs instanceof Variable || isPair(outputs);
  if (!single && !Array.isArray(outputs)) {
    throw new TypeError(`synk.fn: outputs must be a variable, [variable, op] or a list of them, got ${describe(outputs)}`);
  }
  const list = single ? [outputs] : (outputs as readonly unknown[]);
  const vars: Variable[] = [];
  const ops: OutputOp[] = [];
  for (let i = 0; i < list.length; i++) {
    const o = list[i];
    const [v, op] = o instanceof Variable ? [o, 'avg'] : isPair(o) ? o : [undefined, undefined];
    if (!(v instanceof Variable)) throw new TypeError(`synk.fn: outputs[${i}] must be a variable or [variable, op], got ${describe(o)}`);
    if (!isOutputOp(op)) throw new TypeError(`synk.fn: outputs[${i}] has reduce op ${JSON.stringify(op)}; expected one of ${OUTPUT_OPS.join(', ')}`);
    if (op === 'avg' && !isFloat(v.dtype)) {
      throw new TypeError(`synk.fn: outputs[${i}] (${v.label()}) is not a float, so 'avg' does not apply; use 'sum', 'max', 'min', 'gather' or 'none'`);
    }
    if (op === 'gather' && v.ndim === 0) throw new TypeError(`synk.fn: outputs[${i}] is a scalar; 'gather' concatenates along axis 0 and needs ndim >= 1`);
    vars.push(v);
    ops.push(op);
  }
  return { vars, ops, single };
}

/** Checks every option of synk.fn (types, known names, ops) and returns them in plain form. */
export function checkSpec(spec: unknown): CheckedSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new TypeError(`synk.fn: expected an options object { ${SPEC_KEYS.join(', ')} }, got ${describe(spec)}`);
  }
  const o = checkOptions(spec, SPEC_KEYS, 'synk.fn');
  if (o['name'] !== undefined && typeof o['name'] !== 'string') throw new TypeError(`synk.fn: name must be a string, got ${describe(o['name'])}`);
  const precision = checkPrecision(o['precision'], 'synk.fn: precision');
  const inputs = freeVariables(o['inputs'], 'inputs');
  const bcast = freeVariables(o['bcastInputs'], 'bcastInputs');
  inputs.forEach((v, i) => {
    if (v.ndim === 0) throw new TypeError(`synk.fn: inputs[${i}] (${v.label()}) is a scalar and cannot be scattered; put it in bcastInputs`);
  });
  const sliceable = listOf(o['sliceableShareds'], 'sliceableShareds', 'shared variables').map((s, i) => {
    if (!(s instanceof SharedVariable)) throw new TypeError(`synk.fn: sliceableShareds[${i}] must be a shared variable, got ${describe(s)}`);
    if (s.ndim === 0) throw new TypeError(`synk.fn: sliceableShareds[${i}] is a scalar and has no rows`);
    return s;
  });
  if (new Set(sliceable).size !== sliceable.length) throw new TypeError('synk.fn: the same shared variable is given twice in sliceableShareds');
  const outputs = checkOutputs(o['outputs']);
  const updateOps: UpdateOp[] = [];
  const updates = pairsOf(o['updates'], 'updates', [2, 3]).map((u, i) => {
    const op = u[2] ?? 'avg';
    if (typeof op !== 'string' || !(UPDATE_OPS as readonly string[]).includes(op)) {
      throw new TypeError(`synk.fn: updates[${i}] has op ${describe(op)}; expected one of ${UPDATE_OPS.join(', ')}`);
    }
    if (!(u[0] instanceof SharedVariable)) throw new TypeError(`synk.fn: updates[${i}][0] must be a shared variable, got ${describe(u[0])}`);
    if (op === 'avg' && !isFloat(u[0].dtype)) throw new TypeError(`synk.fn: updates[${i}] targets an integer shared variable; 'avg' does not apply`);
    updateOps.push(op as UpdateOp);
    return [u[0], u[1]] as const;
  });
  const givens = pairsOf(o['givens'], 'givens', [2]).map((g) => [g[0], g[1]] as [Variable, unknown]);
  return { inputs, bcast, outputs, updates, updateOps, givens, sliceable, name: o['name'] as string | undefined, precision };
}
