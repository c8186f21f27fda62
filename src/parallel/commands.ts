// Every command word of the worker pool's control block, in one place. Negative words are the
// pool's own; the runtime's commands are integers >= 0 that worker-main.ts serves.

/** Pool: a structured-clone message is waiting in the worker's port. */
export const CMD_MESSAGE = -1;
/** Pool: the worker should end. */
export const CMD_CLOSE = -2;

/** Runtime: a call whose arguments are in the scratch arena (fast-call.ts). */
export const CMD_FAST_CALL = 1;
/** Runtime: rank 0 copies one shared variable's value into the result arena (the controller reads it lazily). */
export const CMD_FETCH_SHARED = 2;
/** Runtime: workers with a device communicator destroy it and close their device, before they end. */
export const CMD_RELEASE_DEVICE = 3;
/** Runtime: a fast call finished by a shared-state training step: args are [planId, ...the fast call's]. */
export const CMD_SHARED_STEP = 4;
