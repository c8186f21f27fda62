// The leaders' cross-node group as seen from a node's leading worker thread. MPI is called from
// the main thread only (MPI_THREAD_FUNNELED, and MpiCommunicator polls from its event loop), so the
// leader's collectives travel to the controller over a BroadcastChannel, which shares
// SharedArrayBuffers between the threads of one process: the data is not copied on the way, MPI
// reads and writes the leader's memory itself. NodeLink (worker side) implements Communicator;
// NodeBridge (controller side) runs each request on the cross-node communicator, in arrival order.
import { BroadcastChannel } from 'node:worker_threads';
import type { TypedArray } from '../tensor/dtype.js';
import {
  type CollectiveName, type CollectiveOptions, type Communicator, type ReduceOptions, type RootOptions,
  CommAbortedError, CommError, CommMismatchError, CommTimeoutError,
} from './communicator.js';

interface LinkRequest {
  readonly id: number;
  readonly op: CollectiveName;
  readonly buf: TypedArray | null;
  readonly parts: readonly TypedArray[] | null;
  readonly options: ReduceOptions;
}
type LinkReply =
  | { readonly id: number; readonly ok: true; readonly result: TypedArray | TypedArray[] | null }
  | { readonly id: number; readonly ok: false; readonly name: string; readonly message: string };

const ERRORS: Record<string, new (m: string) => Error> = {
  CommAbortedError, CommTimeoutError, CommMismatchError, CommError, TypeError, RangeError,
};

/** A SharedArrayBuffer-backed copy of `buf` (or `buf` itself when it is one already). */
function shared<T extends TypedArray>(buf: T): T {
  if (buf.buffer instanceof SharedArrayBuffer) return buf;
  const Ctor = buf.constructor as new (b: SharedArrayBuffer) => T;
  const view = new Ctor(new SharedArrayBuffer(buf.byteLength));
  view.set(buf);
  return view;
}

/** The leaders' group on a node's leading worker: every call runs on the controller's cross-node communicator. */
export class NodeLink implements Communicator {
  private readonly channel: BroadcastChannel;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  constructor(channelName: string, readonly rank: number, readonly size: number) {
    this.channel = new BroadcastChannel(channelName);
    this.channel.unref();
    this.channel.onmessage = (event) => {
      const reply = (event as unknown as { data: LinkReply }).data;
      const w = this.waiting.get(reply.id);
      if (!w) return;
      this.waiting.delete(reply.id);
      if (reply.ok) w.resolve(reply.result);
      else w.reject(Object.assign(new (ERRORS[reply.name] ?? Error)(reply.message), { name: reply.name }));
    };
  }

  close(): void {
    this.channel.close();
    for (const w of this.waiting.values()) w.reject(new CommAbortedError('the node link was closed'));
    this.waiting.clear();
  }

  private send(op: CollectiveName, buf: TypedArray | null, options: ReduceOptions, parts: readonly TypedArray[] | null = null): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.channel.ref(); // a request in flight keeps the thread alive
      const request: LinkRequest = { id, op, buf, parts, options: { ...options } };
      this.channel.postMessage(request);
    }).finally(() => { if (this.waiting.size === 0) this.channel.unref(); });
  }

  private async inPlace<T extends TypedArray>(op: CollectiveName, buf: T, options: ReduceOptions): Promise<T> {
    const view = shared(buf);
    await this.send(op, view, options);
    if (view !== buf) buf.set(view);
    return buf;
  }

  barrier(options: CollectiveOptions = {}): Promise<void> {
    return this.send('barrier', null, options).then(() => undefined);
  }
  broadcast<T extends TypedArray>(buf: T, options: RootOptions = {}): Promise<T> {
    return this.inPlace('broadcast', buf, options);
  }
  allReduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.inPlace('allReduce', buf, options);
  }
  reduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.inPlace('reduce', buf, options);
  }
  allGather(buf: TypedArray, options: CollectiveOptions = {}): Promise<TypedArray[]> {
    return this.send('allGather', shared(buf), options) as Promise<TypedArray[]>;
  }
  gather(buf: TypedArray, options: RootOptions = {}): Promise<TypedArray[] | null> {
    return this.send('gather', shared(buf), options) as Promise<TypedArray[] | null>;
  }
  scatter(parts: readonly TypedArray[] | null, options: RootOptions = {}): Promise<TypedArray> {
    return this.send('scatter', null, options, parts) as Promise<TypedArray>;
  }
}

/** The controller's end of the node's link: runs the leader's requests on `cross`, one after another. */
export class NodeBridge {
  private readonly channel: BroadcastChannel;
  private closed = false;

  /**
   * @param onError called with every failed request just after its reply went back (the runtime
   *   aborts the job there on a deadline or a transport error, and first waits, bounded, for its
   *   workers, the leader among them, to leave the failed call and abort their device groups;
   *   ranks that disagree all throw and go on)
   */
  constructor(channelName: string, private readonly cross: Communicator, private readonly onError: (e: unknown, op: CollectiveName) => void) {
    this.channel = new BroadcastChannel(channelName);
    this.channel.unref();
    this.channel.onmessage = (event) => { void this.serve((event as unknown as { data: LinkRequest }).data); };
  }

  private async serve(req: LinkRequest): Promise<void> {
    let reply: LinkReply;
    let failed: { e: unknown } | null = null;
    try {
      reply = { id: req.id, ok: true, result: await this.run(req) };
    } catch (e) {
      failed = { e };
      const err = e instanceof Error ? e : new Error(String(e));
      reply = { id: req.id, ok: false, name: err.name, message: err.message };
    }
    if (!this.closed) this.channel.postMessage(reply);
    if (failed) this.onError(failed.e, req.op);
  }

  private async run(req: LinkRequest): Promise<TypedArray | TypedArray[] | null> {
    const c = this.cross;
    const o = req.options;
    switch (req.op) {
      case 'barrier': await c.barrier(o); return null;
      case 'broadcast': return c.broadcast(req.buf!, o);
      case 'allReduce': return c.allReduce(req.buf!, o);
      case 'reduce': return c.reduce(req.buf!, o);
      case 'allGather': return c.allGather(req.buf!, o);
      case 'gather': return c.gather(req.buf!, o);
      case 'scatter': return c.scatter(req.parts, o);
      default: throw new Error(`node link: unknown collective ${String(req.op satisfies never)}`);
    }
  }

  close(): void {
    this.closed = true;
    this.channel.close();
  }
}
