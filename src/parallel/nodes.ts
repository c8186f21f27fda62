// Many machines: one process per node under an MPI launcher (mpirun, mpiexec, srun), each running
// the single-machine runtime with its own workers, the user's script on every node (SPMD).
//
// fork() joins the job when it finds a launcher in the environment (detectLauncher), and MPI is
// initialized once per process (MPI cannot be initialized twice), so the job outlives close() and
// a later fork. Controller-level agreement goes through MPI directly from the main thread: the
// worker count per node and the library version at fork, a hash of every function's description
// at distribute. Each is an all-gather, so every node sees every node's value and all nodes throw
// the same error naming what differs, instead of some of them hanging in a collective later.
import { createHash } from 'node:crypto';
import { networkInterfaces, availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { config } from '../devices/config.js';
import { portableSharedId } from '../tensor/variable.js';
import { CommMismatchError } from '../comm/communicator.js';
import { detectLauncher, type LauncherInfo } from '../comm/mpi/find-mpi.js';
import { MpiCommunicator } from '../comm/mpi/mpi-communicator.js';
import type { FunctionSpec } from './protocol.js';
import { NDArray } from '../tensor/ndarray.js';
import { DTYPES, storageOf } from '../tensor/dtype.js';

/** Where this process stands in a job of many nodes (or a job of one). */
export interface NodeInfo {
  /** This node's index, 0 .. nodeCount - 1 (the MPI rank of this process). */
  readonly nodeRank: number;
  /** Nodes (processes) in the job; 1 without a launcher. */
  readonly nodeCount: number;
  /** Workers of this node. */
  readonly localWorkers: number;
  /** Workers of every node: nodeCount * localWorkers. */
  readonly globalWorkers: number;
  /** Global rank of this node's worker 0 (its worker r is global rank firstGlobalRank + r). */
  readonly firstGlobalRank: number;
  /** The launcher found in the environment, or null. */
  readonly launcher: string | null;
  /** The MPI library loaded, and its version string; null without a launcher. */
  readonly mpiLibrary: string | null;
  readonly mpiVersion: string | null;
  /** The network interface named by the network option, or null. */
  readonly network: string | null;
}

/** The job this process joined: kept from the first multi-node fork to the end of the process. */
export interface Job {
  readonly mpi: MpiCommunicator;
  readonly launcher: LauncherInfo;
  readonly version: string;
  readonly network: string | null;
  /** The variables the network option set (those already set were left alone). */
  readonly networkVariables: readonly string[];
  /** Processes of one host are nodes of their own (virtualNodes): GPU workers then get NCCL_HOSTID per node. */
  readonly virtual: boolean;
}

let job: Job | null = null;
let printed = false;

/** The library's own version (package.json), compared across nodes at fork. */
export function synkVersion(): string {
  try {
    for (const rel of ['../../../package.json', '../../package.json']) {
      const text = readFileSync(new URL(rel, import.meta.url), 'utf8');
      const pkg = JSON.parse(text) as { name?: string; version?: string };
      if (pkg.name === 'synkhronos' && typeof pkg.version === 'string') return pkg.version;
    }
  } catch { /* fall through */ }
  return 'unknown';
}

/**
 * Checks that `name` is a network interface of this host and points MPI's TCP transports and NCCL
 * at it, in this process's environment (read by MPI at MPI_Init and NCCL at communicator creation).
 */
export function useNetwork(name: string, env: NodeJS.ProcessEnv = process.env, found: Readonly<Record<string, unknown>> = networkInterfaces()): string[] {
  if (!Object.hasOwn(found, name)) {
    throw new Error(`fork: network interface '${name}' does not exist on this host (it has: ${Object.keys(found).join(', ')}); `
      + 'name one of those (option network, or SYNK_NETWORK)');
  }
  if (!isMainThread) return [];
  // An explicit setting of one of these wins (the user may want UCX on an InfiniBand port, say).
  return NETWORK_VARIABLES.filter((v) => {
    if (env[v] !== undefined) return false;
    env[v] = name;
    return true;
  });
}

/**
 * What the network option sets: NCCL's socket interface, Open MPI's TCP transport between
 * processes, libfabric's tcp provider (MPICH ch4:ofi, Intel MPI) and UCX's devices (MPICH ch4:ucx,
 * Open MPI's pml ucx). Each is read by the library in this process at MPI_Init (NCCL: when a
 * communicator is made). The launcher's own wiring is chosen before this process starts, at launch.
 */
export const NETWORK_VARIABLES = ['NCCL_SOCKET_IFNAME', 'OMPI_MCA_btl_tcp_if_include', 'FI_TCP_IFACE', 'UCX_NET_DEVICES'] as const;

/**
 * Joins the MPI job when a launcher started this process; null when none did (the single-node
 * runtime, unchanged). Several processes on one host are refused unless virtualNodes says each is a
 * node of its own (they would otherwise each start a worker per core of the same machine).
 */
export function joinJob(options: { virtualNodes?: boolean; network?: string; commTimeoutMs?: number }): Job | null {
  const network = options.network ?? config().network ?? null;
  const set = network !== null ? useNetwork(network) : [];
  const launcher = jobLauncher();
  if (launcher === null) return null;
  if (job) return job;
  const timeoutMs = options.commTimeoutMs ?? config().commTimeoutMs;
  const mpi = MpiCommunicator.init(timeoutMs === undefined ? {} : { timeoutMs });
  const virtual = options.virtualNodes ?? config().virtualNodes;
  if (mpi.localSize > 1 && !virtual) {
    throw new Error(`fork: ${mpi.localSize} processes of this MPI job run on this host (${launcher.name} started ${launcher.size}); `
      + 'synkhronos runs one process per node, with a worker per core or GPU: launch one process per host '
      + '(Open MPI: mpirun --map-by ppr:1:node, MPICH: mpiexec -ppn 1, Slurm: srun --ntasks-per-node=1), '
      + 'or pass fork({ virtualNodes: true }) (SYNK_VIRTUAL_NODES=1) to make each process a node of its own, as in tests');
  }
  job = { mpi, launcher, version: mpi.mpi.libraryVersion().split('\n')[0]!.trim(), network, networkVariables: set, virtual };
  return job;
}

/**
 * The launcher that started this process as one of a job's processes, or null. Slurm sets its
 * variables in a batch script too, where `node script.js` is a single process: only an srun step
 * (SLURM_STEP_ID) counts as a launcher.
 */
export function jobLauncher(env: Readonly<Record<string, string | undefined>> = process.env): LauncherInfo | null {
  const launcher = detectLauncher(env);
  if (launcher?.sizeVariable === 'SLURM_NTASKS' && env['SLURM_STEP_ID'] === undefined) return null;
  return launcher;
}

/** The job joined by an earlier fork, or null. */
export function currentJob(): Job | null {
  return job;
}

/** The default number of CPU workers of a node: every core, shared out among the host's processes. */
export function defaultCpuWorkers(j: Job | null): number | undefined {
  if (!j || j.mpi.localSize === 1) return undefined;
  return Math.max(1, Math.floor(availableParallelism() / j.mpi.localSize));
}

/**
 * Device specs whose BLAS threads fit this process's share of the host's cores: with several
 * processes on one host (virtual nodes), a lone CPU worker would otherwise take every core of it.
 */
export function fitThreadsToHost<S extends { readonly kind: string }>(j: Job | null, specs: readonly S[]): S[] {
  const share = defaultCpuWorkers(j);
  if (share === undefined) return [...specs];
  const each = Math.max(1, Math.floor(share / specs.length));
  return specs.map((s) => {
    const threads = (s as { threads?: unknown }).threads;
    return typeof threads === 'number' && threads > each ? { ...s, threads: each } : s;
  });
}

/** Prints the job's shape, network and library versions once, from node 0. */
export function announce(j: Job, localWorkers: number, deviceKind: string): void {
  if (printed || j.mpi.rank !== 0) return;
  printed = true;
  process.stderr.write(`synkhronos ${synkVersion()}: ${j.mpi.size} nodes x ${localWorkers} ${deviceKind} workers under ${j.launcher.name}; `
    + `MPI ${j.version} (${j.mpi.mpi.path}); network ${j.network === null ? 'chosen by MPI and NCCL (no network option)'
      : `${j.network} (${j.networkVariables.length ? `set ${j.networkVariables.join(', ')}` : 'its variables were set already'})`}\n`);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A controller-level collective across nodes: nodes that disagree all throw (CommMismatchError); a
 * deadline or a transport error ends the whole job (MPI_Abort, naming `what`), as a worker's does.
 */
export async function orAbortJob<T>(j: Job, what: string, collective: Promise<T>): Promise<T> {
  try {
    return await collective;
  } catch (e) {
    if (e instanceof CommMismatchError) throw e;
    return abortJob(j, `${what} across nodes failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Every node's bytes (an all-gather). */
async function gatherBytes(j: Job, bytes: Uint8Array, timeoutMs?: number): Promise<Uint8Array[]> {
  const all = j.mpi.allGather(bytes, timeoutMs === undefined ? {} : { timeoutMs });
  return (await orAbortJob(j, 'an agreement check of the controllers', all)) as Uint8Array[];
}

/**
 * The deadline of the collectives that meet nodes at fork (the agreement, NCCL's id, the barrier
 * after the workers started): nodes start their workers (and load their devices) at their own pace,
 * so these wait at least 2 minutes, whatever the deadline of the collectives in between calls.
 */
export function startDeadlineMs(j: Job): number {
  return Math.max(120_000, j.mpi.timeoutMs);
}

/** Throws on every node alike unless every node's `value` (a short text) is the same; `what` names it. */
export async function agreeAcrossNodes(j: Job, what: string, value: string, timeoutMs?: number): Promise<void> {
  const all = (await gatherBytes(j, encoder.encode(value), timeoutMs)).map((b) => decoder.decode(b));
  const differ = all.findIndex((v) => v !== all[0]);
  if (differ < 0) return;
  const shown = all.map((v, node) => `node ${node}: ${v}`).join('; ');
  throw new CommMismatchError(`${what} differs between nodes (${shown}); every node must run the same program with the same library and devices`);
}

/** The hash of one function's description, the same on every node for the same program. */
export function functionHash(spec: FunctionSpec): string {
  const h = createHash('sha256');
  const text = JSON.stringify(spec, (key, v: unknown) => {
    if (key === 'id') return undefined; // numbering may differ with functions built by other code
    if (typeof v === 'string') return portableSharedId(v);
    if (ArrayBuffer.isView(v)) return createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');
    if (typeof v === 'bigint') return v.toString();
    return v;
  });
  return h.update(text).digest('hex').slice(0, 16);
}

/**
 * Throws on every node alike unless every node distributes the same functions (same descriptions,
 * same order), naming the first that differs by its name on node 0 and on the differing node.
 */
export async function agreeOnFunctions(j: Job, specs: readonly FunctionSpec[]): Promise<void> {
  const mine = specs.map((s) => `${functionHash(s)}:${s.description.name ?? ''}`).join(',');
  const all = (await gatherBytes(j, encoder.encode(mine))).map((b) => decoder.decode(b).split(',').filter(Boolean));
  for (let node = 1; node < all.length; node++) {
    const [a, b] = [all[0]!, all[node]!];
    if (a.length !== b.length) {
      throw new CommMismatchError(`distribute: node 0 distributes ${a.length} new function(s), node ${node} ${b.length}; `
        + 'every node must build the same synk functions in the same order');
    }
    const k = a.findIndex((h, i) => h !== b[i]);
    if (k >= 0) {
      const name = (entry: string) => entry.split(':')[1] || '(unnamed)';
      throw new CommMismatchError(`distribute: function #${k} of this distribute differs between nodes (node 0: '${name(a[k]!)}' hash ${a[k]!.split(':')[0]}, `
        + `node ${node}: '${name(b[k]!)}' hash ${b[k]!.split(':')[0]}); every node must build the same synk functions (same graph, shapes, dtypes, updates)`);
    }
  }
}

/** What runs before MPI_Abort: each fork over devices with a group of their own aborts it (runtime.ts). */
const beforeAbort = new Set<(reason: string) => void>();

/**
 * Registers `hook` to run when the job is aborted, before MPI_Abort (a fork's device group: NCCL
 * first, then MPI). It must bound its own time. Returns the function that unregisters it.
 */
export function onJobAbort(hook: (reason: string) => void): () => void {
  beforeAbort.add(hook);
  return () => { beforeAbort.delete(hook); };
}

/**
 * Ends the whole job: the hooks of onJobAbort (device groups), then MPI_Abort with a message naming
 * this node; does not return. A hook that throws is passed over: MPI_Abort runs whatever happens.
 */
export function abortJob(j: Job, reason: string): never {
  const message = `node ${j.mpi.rank} of ${j.mpi.size}: ${reason}`;
  for (const hook of [...beforeAbort]) {
    try { hook(message); } catch (e) { process.stderr.write(`synkhronos: aborting the device group failed: ${e instanceof Error ? e.message : String(e)}\n`); }
  }
  return j.mpi.abort(1, message);
}

/** Every node's list of arrays (lists may differ in length; arrays in dtype and shape), in node order. */
export async function allGatherArrays(j: Job, arrays: readonly NDArray[]): Promise<NDArray[][]> {
  const header = [arrays.length];
  for (const a of arrays) header.push(DTYPES.indexOf(a.dtype), a.ndim, ...a.shape);
  const headers = (await orAbortJob(j, 'exchanging values between the controllers', j.mpi.allGather(Float64Array.from(header)))) as Float64Array[];
  const maxCount = Math.max(...headers.map((h) => h[0]!));
  const out: NDArray[][] = headers.map(() => []);
  const cursors = headers.map(() => 1);
  for (let i = 0; i < maxCount; i++) {
    const mine = arrays[i];
    const bytes = mine ? new Uint8Array(mine.data.buffer, mine.data.byteOffset, mine.data.byteLength) : new Uint8Array(0);
    const all = (await orAbortJob(j, 'exchanging values between the controllers', j.mpi.allGather(bytes))) as Uint8Array[];
    headers.forEach((h, node) => {
      if (i >= h[0]!) return;
      const at = cursors[node]!;
      const dtype = DTYPES[h[at]!]!;
      const ndim = h[at + 1]!;
      const shape = Array.from(h.subarray(at + 2, at + 2 + ndim));
      cursors[node] = at + 2 + ndim;
      const Ctor = storageOf(dtype) as unknown as new (b: ArrayBuffer) => NDArray['data'];
      out[node]!.push(new NDArray(dtype, shape, new Ctor(all[node]!.slice().buffer)));
    });
  }
  return out;
}
