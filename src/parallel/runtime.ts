// The controller's side of the runtime: fork, close, distribute, and keeping rank 0's shared
// values in step with the controller's (the controller's copy of a shared variable is rank 0's).
//
// One fork at a time: a fork while another is starting is refused (two would start two pools); a
// fork while a close is under way waits for it. close() stops the call in progress (bounded), reads
// back the shared values that live on rank 0 (rank0-values.ts says what happens when it cannot),
// and always ends the workers and frees their shared memory.
import { SharedVariable, findShared } from '../tensor/variable.js';
import { describe } from '../tensor/ndarray.js';
import { resolveDevices, specsShareHostMemory, withMatmulPrecision, type DeviceSpec } from '../devices/create.js';
import { config, keepNvlsOff } from '../devices/config.js';
import { DEFAULT_CHUNK_BYTES } from '../comm/hierarchical.js';
import { hasDeviceGroup } from '../comm/device-groups.js';
import { WorkerPool } from './pool.js';
import { createArena, encodeFastCall, readResults, type FastCall, type ResultEntry } from './fast-call.js';
import { combinePartials, createPartials, scalarPlan } from './scalar-outputs.js';
import { CMD_FAST_CALL, CMD_RELEASE_DEVICE, CMD_SHARED_STEP } from './commands.js';
import { commitSharedState, isHeldInSharedMemory } from './shared-state.js';
import type { SharedStepPlan } from './shared-step.js';
import { onDataBufferReleased, type Data } from './data.js';
import { toArrayMsg, type ArrayMsg, type FunctionSpec, type SharedValueMsg, type ControllerMsg } from './protocol.js';
import { abortWorkersDeviceGroups, createNcclBootstrap, relayDeviceGroupId } from './gpu-comm.js';
import { checkForkOptions, type ForkOptions } from './fork-options.js';
import { markUpdatedOnRank0Of, newRank0Values, readBackAll, type Rank0Values } from './rank0-values.js';
import { WorkerDataCache } from './worker-data.js';
import { maybeGarbageSoon, withGcForWorkers } from './collect-garbage.js';
import { NodeBridge } from '../comm/node-link.js';
import { CommMismatchError } from '../comm/communicator.js';
import {
  abortJob, agreeAcrossNodes, orAbortJob, agreeOnFunctions, startDeadlineMs, announce, defaultCpuWorkers, fitThreadsToHost, joinJob, onJobAbort, synkVersion,
  type Job, type NodeInfo,
} from './nodes.js';

export type { ForkOptions } from './fork-options.js';
export type { NodeInfo } from './nodes.js';

/** A fork that spans the nodes of an MPI job: the job, and the controller's end of the leader's link. */
interface NodeState {
  readonly job: Job;
  readonly bridge: NodeBridge;
  /** Unregisters the fork's part of a job abort (its workers' device groups go before MPI_Abort). */
  readonly unhookAbort: () => void;
  readonly nodeRank: number;
  readonly nodeCount: number;
}

/** One fork's state, from fork() to close(). */
interface ForkState extends Rank0Values {
  readonly devices: readonly DeviceSpec[];
  readonly definedFunctions: Set<number>;
  readonly definedShareds: Set<string>;
  /** The controller-side version of each shared variable that rank 0 currently holds. */
  readonly rank0Versions: Map<string, number>;
  /** The Data whose handle every worker holds (for the fast path). */
  readonly data: WorkerDataCache;
  /** Every worker's device joined the fork's device communicator (GPUs: NCCL). */
  readonly deviceGroup: boolean;
  /** Every worker computes in this process's memory, so ranks can share arrays in place. */
  readonly sharesHostMemory: boolean;
  /** The job of many nodes this fork spans, or null (one node). */
  readonly nodes: NodeState | null;
  /** close() has begun: no new call is taken. */
  closing: boolean;
}

/** A call that ends in a shared-state training step: its plan, and what to write before it runs. */
export interface StepHook {
  readonly planId: number;
  prepare(): void;
}
const MAX_FAST_ARGS = 64;

/**
 * The runtime's whole state, owned here: the running fork, the fork and close under way, a count
 * of forks (so per-fork set-up, such as a training step's shared arena, knows when to run again),
 * and the functions built with synk.fn (distributed to every later fork).
 */
const runtime: {
  state: ForkState | null;
  generation: number;
  forking: Promise<number> | null;
  closing: Promise<void> | null;
  readonly functions: Map<number, Distributable>;
} = { state: null, generation: 0, forking: null, closing: null, functions: new Map() };

/** How long close() waits for the call in progress to stop before it reads back and ends the workers. */
const CLOSE_GRACE_MS = 2000;

/** Functions built with synk.fn register here so they can be distributed to any later fork. */
export interface Distributable {
  readonly spec: FunctionSpec;
  readonly shareds: readonly SharedVariable[];
}
export function registerFunction(f: Distributable): void {
  runtime.functions.set(f.spec.id, f);
}

// A Data that lets go of a buffer makes the workers drop their handle of it at once.
onDataBufferReleased((id) => runtime.state?.data.release(id, true));

/**
 * Starts the workers: one thread per device (by default one per CPU core), each with its own device and a copy of every
 * function built so far. Resolves to the number of workers. A second fork without {@link close} first is refused.
 *
 * @example
 * ```ts
 * import * as synk from 'synkhronos';
 * const n = await synk.fork({ n: 2, devices: 'cpu' }); // or {}: every core; { devices: 'cuda' }: every GPU
 * console.log(`${n} workers, forked: ${synk.isForked()}, numWorkers: ${synk.numWorkers()}`);
 * await synk.close();
 * ```
 * Options are checked before anything starts; a concurrent fork is refused.
 */
export async function fork(options?: ForkOptions): Promise<number> {
  const o = checkForkOptions(options);
  if (runtime.forking) throw new Error('fork: another fork() is in progress; await it (concurrent forks would start two sets of workers)');
  if (runtime.state && !runtime.state.closing) throw new Error('fork: workers are already running; call synk.close() first');
  const starting = start(o);
  runtime.forking = starting;
  try {
    return await starting;
  } finally {
    runtime.forking = null;
  }
}

async function start(options: ForkOptions): Promise<number> {
  if (runtime.closing) await runtime.closing;
  // Under an MPI launcher this process is one node of the job (nodes.ts); otherwise job is null.
  const job = joinJob(options);
  // The registered devices decide what 'cpu', 'cuda', 'auto' (any registered kind) mean here.
  const given = options.devices ?? 'cpu';
  const count = options.n ?? (given === 'cpu' || given === 'reference' ? defaultCpuWorkers(job) : undefined);
  let devices: DeviceSpec[] = typeof given === 'string' ? fitThreadsToHost(job, await resolveDevices(given, count)) : [...given];
  if (devices.length === 0) throw new RangeError('fork: no devices found');
  // Every node cuts a large reduction across nodes into the same pieces (each piece is an MPI collective of its own).
  const chunkBytes = options.commChunkBytes ?? config().commChunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (job) {
    // Global ranks are node * workers per node + local rank: every node must have as many workers, of one kind.
    const kinds = [...new Set(devices.map((d) => d.kind))].join('+');
    const mine = `${devices.length} ${kinds} workers, synkhronos ${synkVersion()}, commChunkBytes ${chunkBytes}`;
    await agreeAcrossNodes(job, 'fork: the workers per node, their device kind, the synkhronos version or commChunkBytes', mine, startDeadlineMs(job));
    announce(job, devices.length, kinds);
  }
  if (options.matmulPrecision !== undefined) devices = withMatmulPrecision(devices, options.matmulPrecision);
  const arenas = { scratch: createArena(1 << 16), results: createArena(1 << 20), partials: createPartials(devices.length) };
  // Workers whose devices form a group (GPUs: NCCL) build one communicator; rank 0 publishes its id in this buffer.
  const deviceGroup = devices.every((d) => hasDeviceGroup(d.kind));
  if (deviceGroup) keepNvlsOff(); // before the workers start: they take the main thread's environment
  const ncclBootstrap = deviceGroup ? createNcclBootstrap() : null;
  const generation = runtime.generation + 1;
  const channel = job ? `synk-node-link-${process.pid}-${generation}` : null;
  const bridge = job ? new NodeBridge(channel!, job.mpi, (e, op) => onCrossNodeFailure(job, e, op, devices.length)) : null;
  const nodes = job ? { channel: channel!, nodeRank: job.mpi.rank, nodeCount: job.mpi.size, chunkBytes } : null;
  // GPUs of every node form one group: node 0's id reaches the other nodes' workers through MPI while they start.
  if (job && deviceGroup && job.virtual && job.mpi.localSize > 1) process.env['NCCL_HOSTID'] ??= `synk-node${job.mpi.rank}`;
  const relayId = (m: Uint8Array) => orAbortJob(job!, "relaying NCCL's unique id", job!.mpi.broadcast(m, { root: 0, timeoutMs: startDeadlineMs(job!) }));
  const relay = job && ncclBootstrap ? relayDeviceGroupId(ncclBootstrap, job.mpi.rank === 0, relayId) : null;
  relay?.catch(() => undefined); // awaited below; a failed start reports the pool's error first
  // Workers start with V8's gc function, to give freed shared memory back at once (collect-garbage.ts).
  const pool = await withGcForWorkers(() => WorkerPool.start({
    n: devices.length,
    script: new URL('./worker-main.js', import.meta.url),
    workerData: { devices, arenas, ncclBootstrap, nodes },
    timeoutMs: options.timeoutMs ?? 600_000,
    // A node that lost a worker can take part in no collective again: the whole job ends now, not at a deadline.
    ...(job ? { onWorkerDeath: (rank: number, e: Error) => onWorkerDeath(job, devices.length, rank, e) } : {}),
    ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
  }).catch((e: unknown) => { bridge?.close(); throw e; }));
  // From here a job abort (a deadline, an error, a dead worker) first aborts the workers' device groups (bounded), then MPI.
  const unhookAbort = job ? onJobAbort(() => { abortWorkersDeviceGroups(pool, deviceGroup); }) : () => undefined;
  await relay;
  // Nodes leave fork together: the first cross-node collective of a call then meets no start-up skew.
  if (job) await orAbortJob(job, 'fork: waiting for every node to start its workers', job.mpi.barrier({ timeoutMs: startDeadlineMs(job) }));
  const data = new WorkerDataCache((msg) => pool.broadcastMessage(msg, { label: 'sending Data handles' }));
  const known = { definedFunctions: new Set<number>(), definedShareds: new Set<string>(), rank0Versions: new Map<string, number>() };
  const nodeState = job && bridge ? { job, bridge, unhookAbort, nodeRank: job.mpi.rank, nodeCount: job.mpi.size } : null;
  runtime.state = {
    ...newRank0Values(pool, arenas), ...known, devices, data, deviceGroup, sharesHostMemory: specsShareHostMemory(devices), nodes: nodeState, closing: false,
  };
  runtime.generation = generation;
  return devices.length;
}

/**
 * After a call that updated `shareds` on the workers, the controller's copies are stale: they are
 * read from rank 0 only when someone asks (getValue).
 */
export function markUpdatedOnRank0(shareds: readonly SharedVariable[]): void {
  if (runtime.state) markUpdatedOnRank0Of(runtime.state, shareds); // a closing fork too: close reads them back
}

/**
 * Ends the workers and frees their memory; idempotent (concurrent calls share one close). The
 * call in progress is stopped (its promise settles), shared values that live on rank 0 are read
 * back where rank 0 can still answer, and a later fork starts afresh.
 */
export function close(): Promise<void> {
  runtime.closing ??= closeNow().finally(() => { runtime.closing = null; });
  return runtime.closing;
}

async function closeNow(): Promise<void> {
  if (runtime.forking) await runtime.forking.catch(() => undefined); // a fork under way is closed once it is up
  const s = runtime.state;
  if (!s) return;
  s.closing = true;
  try {
    const idle = s.pool.failed || s.pool.closed ? false : await s.pool.quiesce(CLOSE_GRACE_MS);
    // The stopped call's continuations (which record what it updated) run before the read-back.
    await new Promise((r) => setImmediate(r));
    readBackAll(s);
    // Workers with a device communicator destroy it and free their device memory before they end.
    if (s.deviceGroup && idle && s.pool.idle) await s.pool.callAll(CMD_RELEASE_DEVICE, [], { timeoutMs: 30_000, label: 'close' }).catch(() => undefined);
  } finally {
    s.data.close();
    s.nodes?.bridge.close();
    s.nodes?.unhookAbort();
    runtime.state = null;
    await s.pool.close();
  }
}

/** Whether workers are running (between {@link fork} and {@link close}). */
export function isForked(): boolean {
  return runtime.state !== null && !runtime.state.closing;
}

/** The number of running workers; throws when not forked. */
export function numWorkers(): number {
  return requireState('numWorkers').pool.size;
}

export function requireState(what: string): ForkState {
  const state = runtime.state;
  if (!state) throw new Error(`${what}: no workers are running; call await synk.fork() first (or fork again after close)`);
  if (state.closing) throw new Error(`${what}: the workers are closing (synk.close() was called); fork again after it resolves`);
  return state;
}

/** Which fork is running (a new number after every fork); throws when none is. */
export function forkGeneration(what: string): number {
  requireState(what);
  return runtime.generation;
}

/** Whether every worker's device computes in this process's memory (CPU-like), so ranks can share arrays. */
export function workersShareHostMemory(what: string): boolean {
  return requireState(what).sharesHostMemory;
}

/** Sends a shared-state step's plan to every worker, with the variables it holds (viewed, not copied). */
export async function sendPlan(plan: SharedStepPlan, held: readonly SharedVariable[], label: string): Promise<void> {
  const s = requireState(label);
  await distribute();
  const msg: ControllerMsg = { kind: 'plan', plan, shareds: held.map(sharedMsg) };
  await s.pool.broadcastMessage(msg, { label });
  for (const v of held) { s.definedShareds.add(v.sharedId); s.rank0Versions.set(v.sharedId, v.version); }
}

function sharedMsg(s: SharedVariable): SharedValueMsg {
  // State held in shared memory goes as a view of that memory, after any controller-side change was copied in.
  if (isHeldInSharedMemory(s)) {
    commitSharedState(s);
    return { sharedId: s.sharedId, ...(s.name !== undefined ? { name: s.name } : {}), broadcastable: s.broadcastable,
      value: toArrayMsg(s.getValue({ borrow: true })), shareMemory: true };
  }
  return {
    sharedId: s.sharedId,
    ...(s.name !== undefined ? { name: s.name } : {}),
    broadcastable: s.broadcastable,
    value: toArrayMsg(s.getValue({ borrow: true })),
  };
}

/**
 * Sends every function (and shared variable) the workers do not have yet. Safe to call any time.
 * Resolves to the shared variables it sent: every rank now holds the controller's current value of each.
 */
export async function distribute(extraShareds: readonly SharedVariable[] = []): Promise<SharedVariable[]> {
  if (!Array.isArray(extraShareds)) throw new TypeError(`distribute: expected a list of shared variables, got ${describe(extraShareds)}`);
  extraShareds.forEach((v, i) => {
    if (!(v instanceof SharedVariable)) throw new TypeError(`distribute: item ${i} is not a shared variable (got ${describe(v)})`);
  });
  const s = requireState('distribute');
  const functions = [...runtime.functions.values()].filter((f) => !s.definedFunctions.has(f.spec.id));
  const shareds = new Map<string, SharedVariable>();
  for (const f of functions) for (const v of f.shareds) shareds.set(v.sharedId, v);
  for (const v of extraShareds) shareds.set(v.sharedId, v);
  const newShareds = [...shareds.values()].filter((v) => !s.definedShareds.has(v.sharedId));
  if (functions.length === 0 && newShareds.length === 0) return [];
  if (s.nodes) await agreeAndShareAcrossNodes(s.nodes.job, functions.map((f) => f.spec), newShareds);
  const msg: ControllerMsg = { kind: 'define', functions: functions.map((f) => f.spec), shareds: newShareds.map(sharedMsg) };
  await s.pool.broadcastMessage(msg, { label: 'distribute' });
  maybeGarbageSoon(msg.shareds.reduce((bytes, m) => bytes + m.value.buffer.byteLength, 0));
  for (const f of functions) s.definedFunctions.add(f.spec.id);
  for (const v of newShareds) { s.definedShareds.add(v.sharedId); s.rank0Versions.set(v.sharedId, v.version); }
  return newShareds;
}

/**
 * Every node distributes the same functions (checked by hash; a difference is an error naming it on
 * every node), and every node's workers start from node 0's values of the new shared variables (a
 * parameter initialised with Math.random differs per process otherwise).
 */
async function agreeAndShareAcrossNodes(job: Job, specs: readonly FunctionSpec[], newShareds: readonly SharedVariable[]): Promise<void> {
  await agreeOnFunctions(job, specs);
  for (const v of newShareds) {
    const value = v.getValue({ borrow: true }).copy();
    await orAbortJob(job, `distribute: node 0's value of ${v.label()}`, job.mpi.broadcast(value.data, { root: 0 }));
    if (job.mpi.rank !== 0) v.setValue(value);
  }
}

function onWorkerDeath(job: Job, localWorkers: number, rank: number, e: Error): never {
  return abortJob(job, `worker ${rank} (global rank ${job.mpi.rank * localWorkers + rank}) died: ${e.message}`);
}

/** A cross-node collective failed on this node's leader: a deadline or a transport error ends the job (MPI_Abort). */
function onCrossNodeFailure(job: Job, e: unknown, op: string, localWorkers: number): void {
  if (e instanceof CommMismatchError) return; // every node throws it alike: the call fails everywhere, nothing hangs
  const msg = e instanceof Error ? e.message : String(e);
  abortJob(job, `worker collective ${op} of global rank ${job.mpi.rank * localWorkers} (this node's leader) across nodes failed: ${msg}`);
}

/** Where this process stands in a job of many nodes (one node without an MPI launcher); throws when not forked. */
export function nodeInfo(): NodeInfo {
  const s = requireState('nodeInfo');
  const local = s.pool.size;
  const j = s.nodes?.job ?? null;
  const nodeRank = s.nodes?.nodeRank ?? 0;
  const nodeCount = s.nodes?.nodeCount ?? 1;
  return {
    nodeRank, nodeCount, localWorkers: local, globalWorkers: local * nodeCount, firstGlobalRank: nodeRank * local,
    launcher: j?.launcher.name ?? null, mpiLibrary: j?.mpi.mpi.path ?? null, mpiVersion: j?.version ?? null, network: j?.network ?? null,
  };
}

/** This fork's nodes (rank, count) and workers per node; one node without a job. */
export function nodeLayout(what: string): { nodeRank: number; nodeCount: number; localWorkers: number } {
  const s = requireState(what);
  return { nodeRank: s.nodes?.nodeRank ?? 0, nodeCount: s.nodes?.nodeCount ?? 1, localWorkers: s.pool.size };
}

/** The cross-node job of this fork, or null (for controller-level collectives across nodes). */
export function forkJob(what: string): Job | null {
  return requireState(what).nodes?.job ?? null;
}

/** Values rank 0 must adopt before it runs something reading `shareds` (the controller changed them). */
export function syncForRank0(shareds: readonly SharedVariable[]): SharedValueMsg[] {
  const s = requireState('sync');
  const out: SharedValueMsg[] = [];
  for (const v of shareds) {
    if (s.rank0Versions.get(v.sharedId) === v.version) continue;
    out.push(sharedMsg(v));
    s.rank0Versions.set(v.sharedId, v.version);
  }
  return out;
}

/** Marks the shared variables rank 0 reports as changed: their values are fetched when read. */
export function adoptFromRank0(changedIds: readonly string[]): void {
  markUpdatedOnRank0(changedIds.flatMap((id) => findShared(id) ?? []));
}

/** What a failure of this call is called in its message ("synk function 'train'", "synk.allReduce"). */
function labelOf(msg: ControllerMsg | undefined): string {
  if (msg?.kind === 'call') return functionLabel(msg.fnId);
  if (msg?.kind === 'collective') return `synk.${msg.op}`;
  return msg?.kind === 'define' ? 'distribute' : 'synk call';
}

function functionLabel(fnId: number): string {
  const name = runtime.functions.get(fnId)?.spec.description.name;
  return name !== undefined ? `synk function '${name}'` : 'synk function';
}

/** Bytes of shared-memory copies a message carried (the controller's garbage once the call is done). */
function copiedBytes(messages: readonly ControllerMsg[], replies: readonly unknown[]): number {
  const buffers = new Set<SharedArrayBuffer>();
  const add = (m: ArrayMsg | null | undefined): void => { if (m) buffers.add(m.buffer); };
  for (const msg of messages) {
    if (msg.kind === 'call' || msg.kind === 'collective') msg.sync.forEach((v) => add(v.value));
    if (msg.kind === 'collective') msg.values?.forEach(add);
  }
  // Collective results are copied out by the controller; call outputs are kept as views.
  if (messages[0]?.kind === 'collective') for (const r of replies) (r as { values?: readonly (ArrayMsg | null)[] }).values?.forEach(add);
  let bytes = 0;
  for (const b of buffers) bytes += b.byteLength;
  return bytes;
}

/** How many calls and collectives went as messages, and how many calls through the control block (for tests of the paths). */
const pathCounts = { messages: 0, fast: 0 };

/** Sends one message per rank and returns the replies (rejects naming the rank on failure). */
export async function sendToRanks(messages: readonly ControllerMsg[]): Promise<unknown[]> {
  pathCounts.messages++;
  const replies = await requireState('call').pool.sendMessages(messages, { label: labelOf(messages[0]) });
  maybeGarbageSoon(copiedBytes(messages, replies));
  return replies;
}

/** Sends the handles of Data the workers do not hold yet (or that were reallocated since); fastCall follows. */
export async function sendDataHandles(datas: readonly Data[]): Promise<void> {
  await requireState('call').data.prepare(datas);
}

/**
 * Runs a call through the control block; null when it does not fit the fast path. With a plan id
 * the call ends in that shared-state training step (shared-step.ts).
 */
export async function fastCall(call: FastCall, step?: StepHook): Promise<ResultEntry[] | null> {
  const s = requireState('call');
  const encode = () => {
    const args = encodeFastCall(call, s.arenas.scratch);
    if (!args || !step) return args;
    if (args.length >= MAX_FAST_ARGS) return null;
    step.prepare(); // inside the call's turn of the queue, like its arguments
    return [step.planId, ...args];
  };
  // The arguments go into the scratch arena and the results come out of the results arena inside
  // the call's own turn of the pool's queue: a concurrent call may neither overwrite the one nor
  // read the other (Promise.all over several functions once got another function's results).
  // Scalar outputs of a call that updates nothing: combined here from every rank's partials, as the
  // workers decide from the same description (scalar-outputs.ts).
  const spec = runtime.functions.get(call.fnId)?.spec;
  const scalars = step === undefined && s.pool.commInit !== null && spec ? scalarPlan(spec, call.outputSubset, s.pool.size) : null;
  const readBack = scalars
    ? () => combinePartials(s.arenas.partials, s.pool.size, scalars).map((value) => ({ value, updateIndex: -1 }))
    : () => readResults(s.arenas.results);
  pathCounts.fast++;
  const done = s.pool.callAllWith(step === undefined ? CMD_FAST_CALL : CMD_SHARED_STEP, encode, readBack, { label: functionLabel(call.fnId) });
  s.data.started(call.dataIds); // queued: releasing its Data now reaches the workers after it
  return done;
}

/** For tests: how many calls and collectives went as messages to the ranks, and how many calls through the control block, so far. */
export function pathCountsForTesting(): { messages: number; fast: number } {
  return { ...pathCounts };
}

/** For tests: how many Data handles the workers hold for the fast path. */
export function heldDataCountForTesting(): number {
  return requireState('heldDataCountForTesting').data.size;
}

/** For fault-injection tests: ends one worker as if it had crashed. */
export async function terminateWorkerForTesting(rank: number): Promise<void> {
  await requireState('terminateWorkerForTesting').pool.terminateWorker(rank);
}
