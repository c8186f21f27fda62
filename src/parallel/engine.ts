// The worker side of the data-parallel runtime: rebuilt functions, this rank's shared variables,
// and the handlers for calls and collectives. Every rank runs the same steps in the same order.
import { NDArray } from '../tensor/ndarray.js';
import { SharedVariable, findShared } from '../tensor/variable.js';
import { CompiledFunction, type UpdateValue } from '../run/function.js';
import type { Device } from '../devices/device.js';
import type { Communicator } from '../comm/communicator.js';
import { Accumulator } from './accumulate.js';
import { dataView, gatherRows, type DataHandle } from './data.js';
import { setRandomStreamSalt } from '../ops/random.js';
import { decodeFastCall, readString, writeResults } from './fast-call.js';
import { pieceOf, relativeRows } from './split.js';
import { rowCount, type Rows } from '../devices/rows.js';
import { sliceableSource } from './sliceable.js';
import { reduceAcrossRanks } from './engine-reduce.js';
import { scalarPlan, writePartials } from './scalar-outputs.js';
import { runCollective } from './engine-collectives.js';
import type { DeviceCommunicator } from '../comm/device-groups.js';
import { type HierarchicalCommunicator, piecesOf, spansNodes } from '../comm/hierarchical.js';
import {
  fromArrayMsg, toArrayMsg, type CallMsg, type CallReply, type ControllerMsg,
  type DefineMsg, type FunctionSpec, type InputMsg, type PlanMsg, type SharedValueMsg,
} from './protocol.js';
import { GarbageMeter } from './collect-garbage.js';
import { SharedStep } from './shared-step.js';

interface ExecuteResult {
  readonly reduced: NDArray[] | null;
  readonly updated: { shared: SharedVariable; index: number }[];
}

/** The shared buffers of the fast path (fast-call.ts, scalar-outputs.ts). */
export interface EngineArenas {
  readonly scratch: SharedArrayBuffer;
  readonly results: SharedArrayBuffer;
  readonly partials: SharedArrayBuffer;
}

export class Engine {
  private readonly functions = new Map<number, { spec: FunctionSpec; compiled: CompiledFunction }>();
  private readonly dataHandles = new Map<number, DataHandle>();
  /** Shared-state training steps of this fork, by plan id. */
  private readonly plans = new Map<number, SharedStep>();
  /** Shared memory this worker let go of; collected after the call once there is enough. */
  readonly garbage = new GarbageMeter();

  /** The communicator between this fork's devices, where they form one (NCCL between GPUs). */
  deviceComm: DeviceCommunicator | null = null;

  constructor(readonly rank: number, readonly size: number, readonly device: Device, readonly comm: Communicator | null,
    private readonly arenas: EngineArenas) {}

  /** This rank among the ranks of every node (its local rank on a single node). */
  get globalRank(): number {
    return this.comm?.rank ?? this.rank;
  }

  /** Ranks of every node (this node's workers on a single node). */
  get globalSize(): number {
    return this.comm?.size ?? this.size;
  }

  async handle(msg: ControllerMsg): Promise<unknown> {
    switch (msg.kind) {
      case 'define': return this.define(msg);
      case 'call': return this.call(msg);
      case 'collective': return runCollective(this, msg);
      case 'data': return this.registerData(msg.handles, msg.release ?? []);
      case 'plan': return this.registerPlan(msg);
      default: throw new Error(`unknown message ${(msg satisfies never as { kind: string }).kind}`);
    }
  }

  shared(sharedId: string): SharedVariable {
    const s = findShared(sharedId);
    if (!s) throw new Error(`rank ${this.rank}: shared variable ${sharedId} is unknown here`);
    return s;
  }

  /**
   * Installs a value sent by the controller: copied (the controller's memory stays its own), or,
   * for state every rank shares, viewed in place. A buffer made for the message alone (`fresh`) is
   * kept as it is when this rank is its only receiver (`soleReceiver`): a one-worker fork's
   * parameters and optimizer state are then copied once (into the message), not twice.
   */
  setShared(m: SharedValueMsg, soleReceiver = false): SharedVariable {
    const existing = findShared(m.sharedId);
    if (m.shareMemory) {
      const view = fromArrayMsg(m.value);
      const held = existing?.getValue({ borrow: true }).data;
      if (existing && held?.buffer === m.value.buffer && held.byteOffset === m.value.byteOffset && held.length === view.size) return existing;
      if (existing) { this.noteReplaced(existing); existing.assignComputed(view); return existing; }
      return new SharedVariable(view, { sharedId: m.sharedId, broadcastable: m.broadcastable, ...(m.name !== undefined ? { name: m.name } : {}) });
    }
    const adopt = soleReceiver && m.value.fresh === true;
    const value = adopt ? fromArrayMsg(m.value) : fromArrayMsg(m.value).copy();
    if (!adopt) this.garbage.note(m.value.buffer.byteLength);
    if (existing) { this.noteReplaced(existing); existing.assignComputed(value); return existing; }
    return new SharedVariable(value, { sharedId: m.sharedId, broadcastable: m.broadcastable, ...(m.name !== undefined ? { name: m.name } : {}) });
  }

  /**
   * Rank 0 names the shared variables it changed; the controller fetches a value only when it is
   * read (a GPU-resident value is not downloaded for nothing).
   */
  changedIds(shareds: readonly SharedVariable[]): string[] {
    return this.rank === 0 ? shareds.map((s) => s.sharedId) : [];
  }

  private define(msg: DefineMsg): null {
    // The same message goes to every rank: only a lone rank is the sole receiver of its buffers.
    for (const s of msg.shareds) if (!findShared(s.sharedId)) this.setShared(s, this.size === 1);
    for (const spec of msg.functions) {
      if (this.functions.has(spec.id)) continue;
      // The controller sent these shared variables (above); the function binds exactly them.
      const shareds = new Map(spec.description.shareds.map((s) => [s.sharedId, this.shared(s.sharedId)] as const));
      this.functions.set(spec.id, { spec, compiled: new CompiledFunction(spec.description, this.device, { shareds }) });
    }
    return null;
  }

  private async call(msg: CallMsg): Promise<CallReply> {
    for (const s of msg.sync) this.setShared(s, true); // sync goes to rank 0 alone
    const { reduced, updated } = await this.execute(msg);
    return {
      outputs: reduced ? reduced.map((r) => toArrayMsg(r)) : null,
      changed: this.changedIds(updated.map((u) => u.shared)),
    };
  }

  private registerPlan(msg: PlanMsg): null {
    if (msg.plan.size !== this.size) throw new Error(`rank ${this.rank}: shared step plan for ${msg.plan.size} ranks, this fork has ${this.size}`);
    for (const m of msg.shareds) this.setShared(m);
    this.plans.set(msg.plan.id, new SharedStep(msg.plan, this.rank, this.device.hostGemm ?? null));
    return null;
  }

  /** A fast call finished by a shared-state training step: args are [planId, ...the fast call's]. */
  async sharedStep(args: Float64Array): Promise<number> {
    return this.callFast(args.subarray(1), args[0]!);
  }

  /** The fast path: the call arrives as numbers; rank 0 writes results into the shared arena. */
  async callFast(args: Float64Array, planId?: number): Promise<number> {
    const call = decodeFastCall(args, this.arenas.scratch, this.rank);
    const entry = this.functions.get(call.fnId);
    if (!entry) throw new Error(`rank ${this.rank}: function ${call.fnId} was not distributed`);
    const inputs: InputMsg[] = call.dataIds.map((id, i) => {
      const data = this.dataHandles.get(id);
      if (!data) throw new Error(`rank ${this.rank}: Data ${id} was not sent to this worker`);
      if (i >= entry.spec.nScattered) return { kind: 'whole', data };
      const sel = call.selection!;
      // Rows are split over every rank of every node: this rank takes its global piece (node k's ranks hold node k's rows).
      const [rank, size] = [this.globalRank, this.globalSize];
      return { kind: 'rows', data, rows: data.minibatch ? relativeRows(sel, size, rank) : pieceOf(sel, size, rank) };
    });
    // Scalar outputs and no updates: the controller combines the ranks' partials (scalar-outputs.ts).
    const scalars = planId === undefined && this.comm !== null && scalarPlan(entry.spec, call.outputSubset, this.size) !== null;
    const { reduced, updated } = await this.execute({
      kind: 'call', fnId: call.fnId, inputs, sliceRows: entry.spec.sliceableIds.map(() => call.sliceRows?.[0] ?? null), numSlices: call.numSlices,
      outputSubset: call.outputSubset, someRankEmpty: call.someRankEmpty, sync: [], ...(planId !== undefined ? { planId } : {}),
    }, scalars ? this.arenas.partials : null);
    if (scalars) return 0;
    // Updated shared values stay here; the controller fetches rank 0's lazily when it reads them.
    if (this.rank === 0) writeResults(this.arenas.results, (reduced ?? []).map((value) => ({ value, updateIndex: -1 })));
    return 0;
  }

  /**
   * Rank 0 writes a piece of a shared variable's current value for the controller: the flat
   * elements [offset, offset + count) and the full shape (large values come in several pieces).
   */
  fetchShared(args: Float64Array): number {
    if (this.rank !== 0) return 0;
    const sharedId = readString(this.arenas.scratch, args[0]!);
    const value = this.shared(sharedId).getValue({ borrow: true });
    const offset = Math.min(args[1] ?? 0, value.size);
    const count = Math.min(args[2] ?? value.size, value.size - offset);
    const piece = new NDArray(value.dtype, [count], value.data.subarray(offset, offset + count));
    writeResults(this.arenas.results, [{ value: piece, updateIndex: -1 }, { value: NDArray.from(Int32Array.from(value.shape)), updateIndex: -1 }]);
    return 0;
  }

  /** Counts a shared variable's host value as garbage before it is replaced (not a device copy: reading it would download). */
  noteReplaced(s: SharedVariable): void {
    if (s.deviceCopies.size === 0) this.garbage.note(s.getValue({ borrow: true }).data.byteLength);
  }

  registerData(handles: readonly DataHandle[], release: readonly number[] = []): null {
    for (const id of release) {
      const old = this.dataHandles.get(id);
      if (old) this.garbage.note(old.buffer.byteLength);
      this.dataHandles.delete(id);
    }
    for (const h of handles) {
      const old = this.dataHandles.get(h.id);
      if (old && old.version !== h.version) this.garbage.note(old.buffer.byteLength);
      this.dataHandles.set(h.id, h);
    }
    return null;
  }

  /** How many Data handles this worker holds (for tests of the pruning). */
  get heldDataCount(): number {
    return this.dataHandles.size;
  }

  /** Runs a call on this rank's rows; with `partials` its outputs go there unreduced (scalar-outputs.ts). */
  private async execute(msg: CallMsg, partials: SharedArrayBuffer | null = null): Promise<ExecuteResult> {
    const entry = this.functions.get(msg.fnId);
    if (!entry) throw new Error(`rank ${this.rank}: function ${msg.fnId} was not distributed`);
    const { spec, compiled } = entry;
    const step = msg.planId === undefined ? null : this.plans.get(msg.planId);
    if (step === undefined) throw new Error(`rank ${this.rank}: shared step plan ${msg.planId} was not sent to this worker`);
    step?.beginGradient();
    const subset = msg.outputSubset;
    const outOps = subset ? subset.map((k) => spec.outputOps[k]!) : spec.outputOps;
    const outputs = outOps.map((op, i) => new Accumulator(op, `output ${subset ? subset[i] : i}`));
    const k = msg.numSlices;
    const updateAccs = spec.updateOps.map((op, i) => new Accumulator(op, `update ${i}`));
    let direct: (UpdateValue & { index: number })[] | null = null;
    const sliceables = spec.sliceableIds.map((id, i) => {
      const source = sliceableSource(this.device, this.shared(id));
      const rows: Rows = msg.sliceRows[i] ?? { kind: 'range', start: 0, stop: source.rowCount };
      return { source, rows, id };
    });
    for (let j = 0; j < k; j++) {
      // Each rank and each slice draws its own random numbers (e.g. its own dropout masks).
      setRandomStreamSalt(((this.globalRank & 0xffff) << 16) | (j & 0xffff));
      let weight = -1;
      const inputs = msg.inputs.map((inp, i) => {
        if (inp.kind === 'whole' || i >= spec.nScattered) return dataView(inp.data);
        const piece = pieceOf(inp.rows, k, j);
        weight = rowCount(piece);
        return gatherRows(inp.data, piece);
      });
      const sliced = sliceables.map((s) => {
        const piece = pieceOf(s.rows, k, j);
        if (weight < 0) weight = rowCount(piece);
        return s.source.take(piece, `batchS of sliceable shared ${s.id}`);
      });
      if (weight === 0) continue;
      if (weight < 0) weight = 1; // nothing scattered: every rank computes the same thing once
      // In place only for one slice on a lone rank: slices read the old values, and several ranks must all succeed first.
      const inPlace = k === 1 && this.size === 1;
      const result = compiled.evaluate([...inputs, ...sliced], { ...(subset ? { outputSubset: subset } : {}), updatesOnHost: k > 1, updatesInPlace: inPlace });
      for (const piece of sliced) if (!(piece instanceof NDArray)) this.device.free(piece);
      result.outputs.forEach((o, i) => outputs[i]!.add(o, weight));
      if (k === 1) direct = result.updates.map((u, index) => ({ ...u, index }));
      else result.updates.forEach((u, i) => updateAccs[i]!.add(u.value ?? this.device.download(u.resident), weight));
    }
    const updated: (UpdateValue & { index: number })[] = direct ?? [];
    if (k > 1) {
      compiled.description.program.updates.forEach((u, i) => {
        const acc = updateAccs[i]!;
        const value = acc.partial();
        if (value && acc.dtype) {
          updated.push({ shared: this.shared(u.sharedId), value: acc.op === 'avg' ? finishLocalAvg(value, acc.totalRows, acc.dtype) : value, index: i });
        }
      });
    }
    // A shared step's first update is the flat gradient: it goes into this rank's arena slot, not a variable.
    const local = step ? this.contribute(step, updated, this.shared(compiled.description.program.updates[0]!.sharedId)) : updated;
    // The flat gradient now lives in the arena: its array goes back to the executable for the next step.
    const flat = step && k === 1 ? direct?.find((u) => u.index === 0)?.value : undefined;
    if (flat) compiled.recycle([flat], subset ?? undefined);
    if (partials !== null) {
      writePartials(partials, this.rank, outputs); // no updates on this path: nothing more to do
      return { reduced: null, updated: [] };
    }
    const t0 = performance.now(); // from here rank 0 waits for the others (the outputs' reduction meets them first)
    const reduced = await reduceAcrossRanks(this.comm, outputs, msg.someRankEmpty);
    // Apply updates only once every rank got this far: a call that failed anywhere changes nothing.
    if (this.comm && this.comm.size > 1 && spec.updateOps.length > 0) await this.comm.barrier(); // same on every rank
    // Updates may alias each other's old values (a <- b, b <- a): copy shared-memory views first.
    compiled.applyUpdates(local.map((u) => (u.value && u.value.data.buffer instanceof SharedArrayBuffer ? { shared: u.shared, value: u.value.copy() } : u)));
    if (step && spansNodes(this.comm)) await this.reduceAndUpdateAcrossNodes(step, this.comm, t0);
    else step?.reduceAndUpdate(performance.now() - t0);
    return { reduced, updated: local.map((u) => ({ shared: u.shared, index: u.index })) };
  }

  /**
   * The shared step over many nodes: the node's sum, then the leaders' all-reduce of it, then the
   * update of each shard; in pieces of comm.chunkBytes that pipeline: piece k's all-reduce across
   * nodes runs while the node sums piece k + 1 and updates piece k - 1. The piece holding the row
   * count (the last) goes first, since every update scales by the job-wide count.
   */
  private async reduceAndUpdateAcrossNodes(step: SharedStep, comm: HierarchicalCommunicator, t0: number): Promise<void> {
    const slot = step.slot(0);
    const pieces = piecesOf(step.plan.length, slot.BYTES_PER_ELEMENT, comm.chunkBytes);
    pieces.unshift(pieces.pop()!);
    step.beginShardStep();
    const across: Promise<unknown>[] = [];
    let updated = 0;
    const update = async (): Promise<void> => {
      const [lo, hi] = pieces[updated]!;
      if (comm.leaders) await across[updated];
      await comm.node.barrier(); // every rank reads the job-wide sum only after the leader wrote it
      step.updateShard(performance.now() - t0, lo, hi);
      updated++;
    };
    for (let k = 0; k < pieces.length; k++) {
      const [lo, hi] = pieces[k]!;
      step.reduceShard(lo, hi);
      await comm.node.barrier(); // the node's sum of the piece is whole in slot 0
      if (comm.leaders) {
        const sent = comm.leaders.allReduce(slot.subarray(lo, hi), { op: 'sum' });
        sent.catch(() => undefined); // awaited in update(); a failure there fails the step (a deadline ends the job)
        across.push(sent);
      }
      if (k > updated) await update();
    }
    while (updated < pieces.length) await update();
  }

  private contribute(step: SharedStep, updated: (UpdateValue & { index: number })[], flatShared: SharedVariable): (UpdateValue & { index: number })[] {
    const flat = updated.find((u) => u.index === 0);
    const value = flat ? (flat.value ?? this.device.download(flat.resident)) : null;
    if (value && value.dtype !== step.plan.dtype) throw new TypeError(`rank ${this.rank}: flat gradient is ${value.dtype}, the plan ${step.plan.dtype}`);
    step.contribute(value ? (value.data as Float32Array | Float64Array) : null);
    // The flat vector reads as the reduced one afterwards (slot 0), as after the all-reduce it replaces.
    const reduced = step.slot(0);
    if (flatShared.getValue({ borrow: true }).data !== reduced) flatShared.assignComputed(new NDArray(step.plan.dtype, [step.plan.length], reduced));
    return updated.filter((u) => u !== flat);
  }
}

function finishLocalAvg(weighted: NDArray, rows: number, dtype: NDArray['dtype']): NDArray {
  const out = new NDArray(dtype, weighted.shape);
  for (let i = 0; i < out.size; i++) out.data[i] = weighted.data[i]! / rows;
  return out;
}
