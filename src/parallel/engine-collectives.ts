// Collectives on shared variables, worker side. Values the controller sends are copied in; results
// for the controller go back in shared memory.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import { storageOf, type TypedArray } from '../tensor/dtype.js';
import type { SharedVariable } from '../tensor/variable.js';
import { concatRows } from './accumulate.js';
import { fromArrayMsg, toArrayMsg, type ArrayMsg, type CollectiveMsg, type CollectiveReply } from './protocol.js';
import type { Communicator } from '../comm/communicator.js';
import type { DeviceCommunicator } from '../comm/device-groups.js';
import type { Device, DeviceArray } from '../devices/device.js';
import type { GarbageMeter } from './collect-garbage.js';
import type { SharedValueMsg } from './protocol.js';
import { residentCopy, residentValue } from '../devices/resident.js';
import { reduceForController } from './engine-reduce.js';
import { spansNodes } from '../comm/hierarchical.js';

/** What a collective needs of the worker's engine (engine.ts's Engine; named here so the two do not import each other). */
export interface CollectiveEngine {
  readonly rank: number;
  readonly device: Device;
  readonly comm: Communicator | null;
  readonly deviceComm: DeviceCommunicator | null;
  readonly garbage: GarbageMeter;
  shared(sharedId: string): SharedVariable;
  setShared(m: SharedValueMsg, soleReceiver?: boolean): SharedVariable;
  noteReplaced(s: SharedVariable): void;
  changedIds(shareds: readonly SharedVariable[]): string[];
}
type Engine = CollectiveEngine;

function setTo(engine: Engine, s: SharedVariable, value: NDArray): void {
  engine.noteReplaced(s);
  engine.garbage.note(value.data.buffer.byteLength); // the message's shared buffer (setValue copies it)
  s.setValue(value);
}

export async function runCollective(engine: Engine, msg: CollectiveMsg): Promise<CollectiveReply & { shapes?: number[][] }> {
  const reply = await collective(engine, msg);
  // Values sent back are copies in shared memory: this worker's reference is garbage once they are posted.
  for (const v of reply.values) if (v) engine.garbage.note(v.buffer.byteLength);
  return reply;
}

async function collective(engine: Engine, msg: CollectiveMsg): Promise<CollectiveReply & { shapes?: number[][] }> {
  for (const s of msg.sync) engine.setShared(s, true); // sync goes to rank 0 alone
  const shareds = msg.sharedIds.map((id) => engine.shared(id));
  const comm = engine.comm;
  const values: (ArrayMsg | null)[] = [];
  const changed: SharedVariable[] = [];
  // Workers whose devices form a communicator (GPUs: NCCL) combine shared variables where they live.
  const onDevice = engine.deviceComm;
  if (onDevice && (msg.op === 'allGather' || msg.op === 'reduce' || msg.op === 'allReduce')) {
    await runOnDevice(engine, onDevice, msg, shareds, values, changed);
    return { values, changed: engine.changedIds(changed) };
  }
  switch (msg.op) {
    case 'broadcast':
    case 'scatter':
    case 'setValue':
      shareds.forEach((s, i) => {
        const v = msg.values?.[i];
        // A broadcast value is the controller's own; scattered and set values are rank 0's.
        if (v) { setTo(engine, s, fromArrayMsg(v)); if (msg.op !== 'broadcast') changed.push(s); }
      });
      break;
    case 'gather':
    case 'getValue':
      for (const s of shareds) values.push(msg.op === 'getValue' && !msg.values?.[0] ? null : toArrayMsg(s.getValue()));
      break;
    case 'getShapes':
      return { values: [], changed: [], shapes: shareds.map((s) => [...s.getValue({ borrow: true }).shape]) };
    case 'allGather':
      for (const s of shareds) {
        const own = s.getValue({ borrow: true });
        const parts = comm && comm.size > 1 ? await comm.allGather(own.data) : [own.data];
        const tail = own.shape.slice(1);
        const rowSize = tail.reduce((x, y) => x * y, 1);
        if (own.ndim === 0) throw new TypeError(`allGather: shared variable ${s.name ?? s.sharedId} is a scalar; gather it instead`);
        const arrays = parts.map((p: TypedArray) => new NDArray(
          own.dtype,
          [rowSize === 0 ? 0 : p.length / rowSize, ...tail],
          p.constructor === storageOf(own.dtype) ? p : new (storageOf(own.dtype))(p),
        ));
        arrays.forEach((a, r) => {
          if (!Number.isInteger(a.shape[0])) {
            throw new RangeError(`allGather: rank ${r}'s ${s.name ?? s.sharedId} does not have trailing shape ${shapeToString(tail)}`);
          }
        });
        s.assignComputed(concatRows(arrays, `allGather of ${s.name ?? s.sharedId}`));
        changed.push(s);
      }
      break;
    case 'reduce':
    case 'allReduce':
      for (const s of shareds) {
        const own = s.getValue({ borrow: true });
        const buf = own.data.slice() as TypedArray;
        if (comm && comm.size > 1) {
          const op = msg.reduceOp ?? 'avg';
          if (msg.op === 'reduce') await reduceForController(comm, buf, { op, dtype: own.dtype });
          else await comm.allReduce(buf, { op, dtype: own.dtype });
        }
        const result = new NDArray(own.dtype, own.shape, buf);
        if (msg.op === 'allReduce' || (engine.rank === 0 && msg.inPlace !== false)) { s.assignComputed(result); changed.push(s); }
        values.push(engine.rank === 0 && msg.op === 'reduce' ? toArrayMsg(result) : null);
      }
      break;
    default:
      throw new Error(`unknown collective ${String(msg.op satisfies never)}`);
  }
  return { values, changed: engine.changedIds(changed) };
}

/** The shared variable's copy on the worker's device (uploaded once, then kept like CompiledFunction does). */
function deviceValue(engine: Engine, s: SharedVariable): DeviceArray {
  return residentValue(engine.device, s);
}

/** Makes `value` (on the device) the shared variable's current value; the host copy follows lazily. */
function installDevice(engine: Engine, s: SharedVariable, value: DeviceArray): void {
  s.assignOnDevice(engine.device, residentCopy(engine.device, value));
}

async function runOnDevice(
  engine: Engine,
  deviceComm: DeviceCommunicator,
  msg: CollectiveMsg,
  shareds: readonly SharedVariable[],
  values: (ArrayMsg | null)[],
  changed: SharedVariable[],
): Promise<void> {
  for (const s of shareds) {
    const own = deviceValue(engine, s);
    const what = s.name ?? s.sharedId;
    if (msg.op === 'allGather') {
      if (own.shape.length === 0) throw new TypeError(`allGather: shared variable ${what} is a scalar; gather it instead`);
      installDevice(engine, s, await deviceComm.allGatherDevice(own));
      changed.push(s);
      continue;
    }
    const op = msg.reduceOp ?? 'avg';
    // With many nodes every node's rank 0 answers its controller: a reduce is an all-reduce whose result rank 0 keeps.
    const viaAll = msg.op === 'allReduce' || spansNodes(engine.comm);
    const reduced = viaAll ? await deviceComm.allReduceDevice(own, op) : await deviceComm.reduceDevice(own, op, { root: 0 });
    const out = msg.op === 'reduce' && viaAll && engine.rank !== 0 ? (engine.device.free(reduced!), null) : reduced;
    if (out === null) { values.push(null); continue; } // reduce: not the root
    const host = engine.rank === 0 && msg.op === 'reduce' ? engine.device.download(out) : null;
    if (msg.op === 'allReduce' || (engine.rank === 0 && msg.inPlace !== false)) {
      installDevice(engine, s, out);
      changed.push(s);
    } else {
      engine.device.free(out);
    }
    values.push(host ? toArrayMsg(host) : null);
  }
}
