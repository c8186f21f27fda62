// Scalar outputs combined by the controller: a fast call that updates nothing and whose outputs
// are all scalars reduced by sum, prod, max, min or avg needs no collective among the workers.
// Each rank writes its partial values into its own words of a shared buffer before it reports
// done; the controller, which waits for every rank anyway, combines them in rank order exactly as
// the shared-memory reduction would (same dtype arithmetic, identities for ranks without rows). A
// trivial call is then one wake-up of the workers and one of the controller, with no rendezvous
// between workers (at 16 workers on 16 cores each rendezvous costs a round of futex wake-ups).
//
// Both sides decide from the function's description alone (scalarPlan), so they always agree.
import { NDArray } from '../tensor/ndarray.js';
import { DTYPES, storageOf, type DType } from '../tensor/dtype.js';
import { combineInto } from '../comm/reduce-ops.js';
import { finishAvg, identityFor, type Accumulator, type OutputOp } from './accumulate.js';
import type { FunctionSpec } from './protocol.js';

/** The most outputs a call may have to take this path. */
export const MAX_SCALAR_OUTPUTS = 16;
const WORDS_PER_OUTPUT = 3; // state (0: this rank had no rows, else 1 + dtype index), value, rows
const RANK_WORDS = 64; // 512 bytes a rank: its words on cache lines of their own
type CombiningOp = 'sum' | 'prod' | 'max' | 'min' | 'avg';
const COMBINED: ReadonlySet<OutputOp> = new Set<OutputOp>(['sum', 'prod', 'max', 'min', 'avg']);
const combines = (op: OutputOp | undefined): op is CombiningOp => op !== undefined && COMBINED.has(op);

/** The shared buffer of every rank's partial scalars. */
export function createPartials(n: number): SharedArrayBuffer {
  return new SharedArrayBuffer(n * RANK_WORDS * 8);
}

/**
 * The ops of the call's outputs when they take this path: more than one rank, no updates, and
 * every output (of the subset) a scalar with a combining op. Null otherwise.
 */
export function scalarPlan(spec: FunctionSpec, subset: readonly number[] | null, size: number): CombiningOp[] | null {
  if (size < 2 || spec.updateOps.length > 0) return null;
  const program = spec.description.program;
  const picked = subset ?? spec.outputOps.map((_, i) => i);
  if (picked.length === 0 || picked.length > MAX_SCALAR_OUTPUTS) return null;
  const ops: CombiningOp[] = [];
  for (const k of picked) {
    const op = spec.outputOps[k];
    const slot = program.slots[program.outputs[k] ?? -1];
    if (!combines(op) || slot === undefined || slot.broadcastable.length !== 0) return null;
    ops.push(op);
  }
  return ops;
}

/** A rank writes its partial scalars (the controller reads them once every rank is done). */
export function writePartials(partials: SharedArrayBuffer, rank: number, accs: readonly Accumulator[]): void {
  const words = new Float64Array(partials, rank * RANK_WORDS * 8, RANK_WORDS);
  accs.forEach((acc, i) => {
    const p = acc.partial();
    const at = i * WORDS_PER_OUTPUT;
    if (p === undefined || acc.dtype === undefined) {
      words[at] = 0;
      return;
    }
    if (p.size !== 1) throw new RangeError(`${acc.what}: expected a scalar, got ${p.size} elements`);
    words[at] = 1 + DTYPES.indexOf(acc.dtype);
    words[at + 1] = p.data[0]!; // every dtype's values are exact in a float64
    words[at + 2] = acc.totalRows;
  });
}

/** The controller combines every rank's partials, in rank order, into the call's outputs. */
export function combinePartials(partials: SharedArrayBuffer, n: number, ops: readonly CombiningOp[]): NDArray[] {
  const all = new Float64Array(partials, 0, n * RANK_WORDS);
  return ops.map((op, i) => {
    const word = (r: number, k: number): number => all[r * RANK_WORDS + i * WORDS_PER_OUTPUT + k]!;
    let state = 0;
    for (let r = 0; r < n && state === 0; r++) state = word(r, 0);
    if (state === 0) throw new RangeError(`output ${i}: no rank computed it (every rank had zero rows)`);
    const dtype = DTYPES[state - 1]!;
    if (op === 'avg') {
      // As the reduction of [row-weighted sum, rows] in float64 across ranks, then the division.
      const part = (r: number, k: number): number => (word(r, 0) === 0 ? 0 : word(r, k));
      let sum = part(0, 1);
      let rows = part(0, 2);
      for (let r = 1; r < n; r++) {
        sum += part(r, 1);
        rows += part(r, 2);
      }
      return finishAvg(new NDArray('float64', [], Float64Array.of(sum)), rows, dtype);
    }
    const Ctor = storageOf(dtype);
    const value = (r: number) => Ctor.of(word(r, 0) === 0 ? identityFor(op, dtype) : word(r, 1));
    const acc = value(0);
    for (let r = 1; r < n; r++) combineInto(op, acc, value(r), { dtype: dtype === 'bool' ? 'bool' : undefined });
    return new NDArray(dtype, [], acc);
  });
}
