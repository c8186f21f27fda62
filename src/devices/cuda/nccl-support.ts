// Helpers of the NCCL communicator: finding the library, dtype and op mapping.
import type { DType } from '../../tensor/dtype.js';
import { loadNccl, type Nccl, type NcclDataType, type NcclRedOp } from './ffi/nccl.js';
import { withFallback } from './libraries.js';
import type { ReduceOp } from '../reduce-ops.js';
import { keepNvlsOff } from '../config.js';

/** Dtype codes exchanged between ranks (index in this list). */
export const CODES: readonly DType[] = ['bool', 'uint8', 'int32', 'float32', 'float64'];

/** libnccl from the usual places, then $SYNK_CUDA_LIB_DIRS and Python CUDA wheels. */
export function findNccl(): Nccl {
  keepNvlsOff();
  return withFallback(loadNccl);
}

export function ncclType(dtype: DType): NcclDataType {
  switch (dtype) {
    case 'bool': case 'uint8': return 'uint8';
    case 'int32': return 'int32';
    case 'float32': return 'float32';
    case 'float64': return 'float64';
    default: throw new TypeError(`nccl: no NCCL type for dtype ${String(dtype satisfies never)}`);
  }
}

/** The NCCL op for `op` on `dtype` (bool: or = max, and = min; avg is done as sum then scale). */
export function ncclOp(op: ReduceOp, dtype: DType): NcclRedOp {
  if (dtype === 'bool') return op === 'sum' || op === 'max' ? 'max' : 'min';
  return op === 'avg' ? 'sum' : op;
}


const POLL_MS = 2;

/**
 * Awaits `done` (a stream synchronisation), checking `check` and the deadline every few ms.
 * Null when it finished; otherwise why not (`check`'s reason, the synchronisation's error, or a timeout).
 */
export async function pollUntilDone(
  done: Promise<void>,
  deadline: number,
  check: () => string | null,
): Promise<{ reason: string; timedOut: boolean; cause?: Error } | null> {
  const settledDone = done.then(() => ({ err: null }), (e: unknown) => ({ err: e instanceof Error ? e : new Error(String(e)) }));
  for (;;) {
    const settled = await Promise.race([settledDone, new Promise<null>((r) => setTimeout(() => r(null), POLL_MS))]);
    if (settled) return settled.err ? { reason: settled.err.message, timedOut: false, cause: settled.err } : null;
    const reason = check();
    if (reason !== null) return { reason, timedOut: false };
    if (performance.now() > deadline) return { reason: 'timed out', timedOut: true };
  }
}
