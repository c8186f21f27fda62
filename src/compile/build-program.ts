// From symbolic variables to a Program: givens substitution, missing-input checks, slot layout.
import { canUpcast, isFloat } from '../tensor/dtype.js';
import { Constant, SharedVariable, Variable } from '../tensor/variable.js';
import * as B from '../build/build.js';
import { applyOp, isOpName } from '../ops/apply.js';
import type { OpName, OpAttrs } from '../ops/registry.js';
import { topoSort } from '../tensor/graph.js';
import type { Program, ProgramStep, SlotInfo } from './program.js';
import { serializeArray } from './serialize-array.js';

export type Givens = readonly (readonly [Variable, unknown])[] | Map<Variable, unknown>;
export type Update = readonly [SharedVariable, unknown] | readonly [SharedVariable, unknown, string];

/** Makes `value` usable in place of `target`: same ndim, dtype cast when safe (floats may narrow), same broadcastable flags. */
export function conformTo(target: Variable, value: unknown, what: string): Variable {
  let v = value instanceof Variable ? value : B.constant(value, { dtype: target.dtype });
  if (v.ndim !== target.ndim) throw new TypeError(`${what}: expected ndim ${target.ndim} (${target.type}), got ${v.label()}`);
  if (v.dtype !== target.dtype) {
    if (canUpcast(v.dtype, target.dtype) || (isFloat(v.dtype) && isFloat(target.dtype))) v = B.cast(v, target.dtype);
    else throw new TypeError(`${what}: expected dtype ${target.dtype}, got ${v.label()} (a down-cast; cast it explicitly)`);
  }
  return B.rebroadcastLike(v, target);
}

/** Rebuilds the graphs of `roots` with `givens` substituted (variables with unchanged inputs are reused). */
export function substitute(roots: readonly Variable[], givens: ReadonlyMap<Variable, Variable>): Variable[] {
  if (givens.size === 0) return [...roots];
  const memo = new Map<number, Variable>();
  for (const v of topoSort(roots)) {
    const replacement = givens.get(v);
    if (replacement) { memo.set(v.id, replacement); continue; }
    if (!v.owner) { memo.set(v.id, v); continue; }
    const inputs = v.owner.inputs.map((i) => memo.get(i.id)!);
    const changed = inputs.some((i, k) => i !== v.owner!.inputs[k]);
    memo.set(v.id, changed ? applyOp(v.owner.op as OpName, inputs, v.owner.attrs as OpAttrs<OpName>) : v);
  }
  // Replacements may themselves contain replaced variables only if the user wrote it so; no fixpoint.
  return roots.map((r) => memo.get(r.id)!);
}

export interface BuildResult {
  readonly program: Program;
  readonly shareds: readonly SharedVariable[];
}

export function buildProgram(
  inputs: readonly Variable[],
  outputs: readonly Variable[],
  updates: readonly (readonly [SharedVariable, Variable])[],
): BuildResult {
  const roots = [...outputs, ...updates.map(([, e]) => e)];
  const order = topoSort(roots);
  const slots: SlotInfo[] = [];
  const slotOf = new Map<number, number>();
  const newSlot = (v: Variable, kind: SlotInfo['kind']): number => {
    slots.push({ dtype: v.dtype, broadcastable: v.broadcastable, kind, ...(v.name !== undefined ? { name: v.name } : {}) });
    slotOf.set(v.id, slots.length - 1);
    return slots.length - 1;
  };
  const inputSlots = inputs.map((v) => newSlot(v, 'input'));
  const shareds: SharedVariable[] = [];
  const sharedSlots: { slot: number; sharedId: string }[] = [];
  const constants: { slot: number; value: ReturnType<typeof serializeArray> }[] = [];
  const steps: ProgramStep[] = [];
  // Shared variables whose value an update needs must be passed even if no output reads them.
  // Update targets count too, even when no expression reads them (e.g. s <- mean(x)).
  const sharedRoots = [...order.filter((v): v is SharedVariable => v instanceof SharedVariable), ...updates.map(([s]) => s)];
  for (const s of sharedRoots) {
    if (slotOf.has(s.id)) continue;
    sharedSlots.push({ slot: newSlot(s, 'shared'), sharedId: s.sharedId });
    shareds.push(s);
  }
  for (const v of order) {
    if (slotOf.has(v.id)) continue;
    if (v instanceof Constant) {
      constants.push({ slot: newSlot(v, 'constant'), value: serializeArray(v.value) });
    } else if (!v.owner) {
      const hint = v.name !== undefined ? `'${v.name}' (${v.type})` : String(v.type);
      throw new TypeError(`fn: the graph needs input ${hint}, which is not in inputs, givens or shared variables (Theano's MissingInputError)`);
    } else {
      const stepInputs = v.owner.inputs.map((i) => slotOf.get(i.id)!);
      const op = v.owner.op;
      if (!isOpName(op)) throw new TypeError(`fn: unknown op '${op}' in the graph`);
      steps.push({ op, attrs: v.owner.attrs, inputs: stepInputs, output: newSlot(v, 'step') });
    }
  }
  return {
    program: {
      slots, inputs: inputSlots, shareds: sharedSlots, constants, steps,
      outputs: outputs.map((o) => slotOf.get(o.id)!),
      updates: updates.map(([s, e]) => ({ sharedId: s.sharedId, slot: slotOf.get(e.id)! })),
    },
    shareds,
  };
}
