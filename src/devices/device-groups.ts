// Communicators between devices, for arrays that live on them (NCCL between GPUs): what a device
// kind's own communicator offers, and how its devices form one. A device with such a group names it
// in its registration (registration.ts, `deviceGroup`), so the runtime asks the registration and
// sees the arrays only as DeviceArrays. comm/device-groups.ts re-exports these for the layers above.
import type { Device, DeviceArray } from './device.js';
import type { RootOptions } from './communicator.js';
import type { ReduceOp } from './reduce-ops.js';

/** Collectives on arrays that stay on the device: results are new device arrays the caller frees. */
export interface DeviceCommunicator {
  readonly rank: number;
  readonly size: number;
  /** Every rank gets the reduction of every rank's `array`. */
  allReduceDevice(array: DeviceArray, op?: ReduceOp): Promise<DeviceArray>;
  /** The root gets the reduction; the other ranks get null. */
  reduceDevice(array: DeviceArray, op?: ReduceOp, options?: RootOptions): Promise<DeviceArray | null>;
  /** Every rank gets every rank's rows, concatenated along axis 0 in rank order. */
  allGatherDevice(array: DeviceArray): Promise<DeviceArray>;
  /** Destroys the communicator; idempotent. */
  close(): void;
  /**
   * Aborts it at once, without waiting for the peers (NCCL: ncclCommAbort, so no collective of this
   * rank stays blocked on the device); pending and later collectives throw. Idempotent.
   */
  abort(reason: string): void;
}

/** Bounds and abort probe of a device communicator. */
export interface DeviceGroupOptions {
  /** Default bound on every collective. */
  readonly timeoutMs?: number;
  /** Polled during collectives: a reason when the group was aborted elsewhere. */
  readonly abortProbe?: () => string | null;
}

/** How the devices of one kind form a group: rank 0 makes its id, and every rank joins with that id. */
export interface DeviceGroupKind {
  /** The name errors use ('NCCL'). */
  readonly name: string;
  /** Bytes of a group id (at most DEVICE_GROUP_ID_BYTES). */
  readonly idBytes: number;
  /** Writes a fresh group id (rank 0); throws when `device` cannot join such a group, naming `rank`. */
  newGroupId(device: Device, into: Uint8Array, rank: number): void;
  /** Checks that `device` can join, before any rank waits for it. */
  check(device: Device, rank: number): void;
  /** Joins group `id` as `rank` of `size` (blocks until every rank has joined). */
  join(device: Device, id: Uint8Array, rank: number, size: number, options: DeviceGroupOptions): DeviceCommunicator;
}

/** The most bytes a group id may have (the bootstrap buffer fork() hands to workers holds one). */
export const DEVICE_GROUP_ID_BYTES = 128;
