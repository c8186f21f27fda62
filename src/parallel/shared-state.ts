// Shared variables held in shared memory: one copy that the controller and every rank view (the
// parameters and optimizer state of a shared-state training step). The controller's value of such
// a variable is that memory, so reading it never asks rank 0. A value the user sets on the
// controller (setValue, loading a checkpoint) is copied into the shared memory before any rank
// reads it (commit); writes that would give ranks different values are refused.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import type { SharedVariable } from '../tensor/variable.js';

interface Held {
  readonly view: NDArray;
  /** Who holds it, for error messages ("makeTrainFunction 'mlp'"). */
  readonly owner: string;
}

const held = new Map<string, Held>();

/** Puts `v`'s current value into `view` (shared memory) and makes the view its value from now on. */
export function holdInSharedMemory(v: SharedVariable, view: NDArray, owner: string): void {
  const other = held.get(v.sharedId);
  if (other && other.view !== view) {
    throw new TypeError(`${owner}: shared variable ${v.label()} is already held in shared memory by ${other.owner}; one training function per parameter`);
  }
  held.set(v.sharedId, { view, owner });
  commitSharedState(v);
}

/** Whether `v` is held in shared memory (by a shared-state training step). */
export function isHeldInSharedMemory(v: SharedVariable): boolean {
  return held.has(v.sharedId);
}

/**
 * Makes the shared memory current: a value set on the controller since (a plain array) is copied
 * into it, and the variable views it again. Refuses a value of another shape (the training step's
 * layout is fixed). No-op for variables not held.
 */
export function commitSharedState(v: SharedVariable): void {
  const h = held.get(v.sharedId);
  if (!h) return;
  const current = v.getValue({ borrow: true });
  if (current.data === h.view.data) return;
  if (current.size !== h.view.size || current.shape.some((d, i) => d !== h.view.shape[i])) {
    throw new RangeError(
      `${v.label()}: held in shared memory by ${h.owner} with shape ${shapeToString(h.view.shape)}; ` +
        `a value of shape ${shapeToString(current.shape)} cannot replace it (build a new training function for a new shape)`,
    );
  }
  h.view.data.set(current.data as ArrayLike<number> & Float32Array);
  v.assignComputed(h.view);
}

/** Refuses an operation that would give the ranks different values of a variable held in shared memory. */
export function refuseSharedStateWrite(vars: readonly SharedVariable[], what: string): void {
  for (const v of vars) {
    const h = held.get(v.sharedId);
    if (h) {
      throw new TypeError(
        `${what}: ${v.label()} is held in shared memory by ${h.owner} (one copy for every rank), so it cannot take a value per rank; ` +
          `set it for every rank with setValue on the controller (or synk.broadcast), or train it through that training function`,
      );
    }
  }
}

/** Ends the hold: the variable keeps a private copy of its current value (ranks of later forks get copies). */
export function releaseSharedMemory(v: SharedVariable): void {
  const h = held.get(v.sharedId);
  if (!h) return;
  held.delete(v.sharedId);
  v.assignComputed(v.getValue({ borrow: true }).copy());
}
