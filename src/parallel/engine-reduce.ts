// Cross-rank reduction of a call's outputs through the Communicator (rank 0 receives the result).
import { NDArray } from '../tensor/ndarray.js';
import { storageOf, type DType, type TypedArray } from '../tensor/dtype.js';
import type { Communicator, ReduceOp } from '../comm/communicator.js';
import { spansNodes } from '../comm/hierarchical.js';
import { Accumulator, concatRows, finishAvg, identityFor, type OutputOp } from './accumulate.js';

/**
 * Reduces into the rank that answers the controller: rank 0, or with many nodes every node's rank 0
 * (each node's controller returns the result to its copy of the script).
 */
export function reduceForController<T extends TypedArray>(comm: Communicator, buf: T, options: { op: ReduceOp; dtype?: DType }): Promise<T> {
  return spansNodes(comm) ? comm.reduceToLeaders(buf, options) : comm.reduce(buf, { ...options, root: 0 });
}

/** Gathers into the rank that answers the controller (every node's rank 0 with many nodes); null elsewhere. */
function gatherForController(comm: Communicator, buf: TypedArray): Promise<TypedArray[] | null> {
  return spansNodes(comm) ? comm.gatherToLeaders(buf) : comm.gather(buf, { root: 0 });
}

/** Whether this rank answers the controller: rank 0 (of its node, with many nodes). */
function answers(comm: Communicator): boolean {
  return spansNodes(comm) ? comm.isLeader : comm.rank === 0;
}

const MAX_NDIM = 8;

/** Ranks without rows learn each output's shape and dtype from a rank that has them. */
async function agreeOnShapes(comm: Communicator, accs: readonly Accumulator[]): Promise<{ shape: number[]; dtype: DType }[]> {
  const dtypes: DType[] = ['bool', 'uint8', 'int32', 'float32', 'float64'];
  const mine = new Float64Array(accs.length * (MAX_NDIM + 3));
  accs.forEach((a, i) => {
    const p = a.partial();
    const base = i * (MAX_NDIM + 3);
    if (!p || a.dtype === undefined) return;
    if (p.ndim > MAX_NDIM) throw new RangeError(`output ${i}: more than ${MAX_NDIM} axes`);
    mine[base] = 1;
    mine[base + 1] = dtypes.indexOf(a.dtype);
    mine[base + 2] = p.ndim;
    p.shape.forEach((d, k) => { mine[base + 3 + k] = d; });
  });
  const all = comm.size === 1 ? [mine] : await comm.allGather(mine); // a lone rank needs no collective
  return accs.map((_, i) => {
    const base = i * (MAX_NDIM + 3);
    const from = all.find((buf) => buf[base] === 1);
    if (!from) throw new RangeError(`output ${i}: no rank computed it (every rank had zero rows)`);
    const ndim = from[base + 2]!;
    return { dtype: dtypes[from[base + 1]!]!, shape: Array.from(from.subarray(base + 3, base + 3 + ndim)) };
  });
}

/**
 * Reduces each accumulator across ranks by its op; rank 0 gets the final arrays, others get null.
 * Every rank calls this with the same accumulators in the same order (the collective rule).
 */
export async function reduceAcrossRanks(comm: Communicator | null, accs: readonly Accumulator[], someRankEmpty: boolean): Promise<NDArray[] | null> {
  const agreed = someRankEmpty && comm ? await agreeOnShapes(comm, accs) : null;
  const results: NDArray[] = [];
  for (let i = 0; i < accs.length; i++) {
    const acc = accs[i]!;
    let local = acc.partial();
    const dtype = acc.dtype ?? agreed?.[i]?.dtype ?? 'float32';
    if (!local) {
      const shape = agreed?.[i]?.shape;
      if (!shape) throw new RangeError(`output ${i}: this rank has no rows and no shape to contribute`);
      const fillShape = acc.op === 'gather' ? [0, ...shape.slice(1)] : shape;
      local = NDArray.full(fillShape, identityFor(acc.op, dtype), acc.op === 'avg' ? 'float64' : dtype);
    }
    if (!comm || comm.size === 1) {
      results.push(acc.op === 'avg' ? finishAvg(local, acc.totalRows, dtype) : local);
      continue;
    }
    switch (acc.op) {
      case 'avg': {
        // The weight travels as one extra element, so one reduction gives sum and total rows.
        const buf = new Float64Array(local.size + 1);
        buf.set(local.data);
        buf[local.size] = acc.totalRows;
        await reduceForController(comm, buf, { op: 'sum' });
        results.push(finishAvg(new NDArray('float64', local.shape, buf.subarray(0, local.size)), buf[local.size]!, dtype));
        break;
      }
      case 'sum': case 'prod': case 'max': case 'min': {
        const buf = local.data.slice() as TypedArray;
        await reduceForController(comm, buf, { op: acc.op, dtype });
        results.push(new NDArray(dtype, local.shape, buf));
        break;
      }
      case 'gather': {
        const parts = await gatherForController(comm, local.data);
        if (parts) {
          const tail = local.shape.slice(1);
          const rowSize = tail.reduce((x, y) => x * y, 1);
          const arrays = parts.map((p) => new NDArray(
            dtype,
            [rowSize === 0 ? 0 : p.length / rowSize, ...tail],
            p.constructor === storageOf(dtype) ? p : new (storageOf(dtype))(p),
          ));
          results.push(concatRows(arrays, `output ${i}`));
        } else results.push(local);
        break;
      }
      case 'none':
        results.push(local);
        break;
      default:
        throw new Error(`internal: unknown output op ${String(acc.op satisfies never)}`);
    }
  }
  return comm && !answers(comm) ? null : results;
}
