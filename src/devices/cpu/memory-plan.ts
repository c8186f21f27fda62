// Liveness over a program's steps: after which step each value is dead (its buffer can go back to
// the pool), and which values escape to the caller (outputs, update values and the values they are
// always views of: those are allocated fresh, never from the pool, so a later call cannot overwrite
// them). A step that only sometimes returns its input (sumToLike or broadcastLike with nothing to
// do, a dimshuffle that only adds axes) does not make its input escape: buffers are reference
// counted by storage, so an input that does end up inside a result stays alive and leaves the pool
// with the result (see CpuExecutable.run).

export interface PlanStep {
  readonly op: string;
  readonly inputs: readonly number[];
  readonly output: number;
  /** More slots the step writes (a group step, see group-kernels.ts). */
  readonly extraOutputs?: readonly number[];
}

export interface MemoryPlan {
  /** Per step, the slots whose last use is that step (released right after it), escaping ones excluded. */
  readonly dies: readonly (readonly number[])[];
  /** Slots whose values are returned to the caller, or are always views of one that is. */
  readonly escaping: ReadonlySet<number>;
}

/** Ops whose result is always input 0 itself or a view of its buffer. */
export const ALIASING_OPS: ReadonlySet<string> = new Set(['reshape', 'rebroadcast']);

const outputsOf = (s: PlanStep): readonly number[] => (s.extraOutputs === undefined ? [s.output] : [s.output, ...s.extraOutputs]);

export function planMemory(steps: readonly PlanStep[], nSlots: number, resultSlots: readonly number[]): MemoryPlan {
  const escaping = new Set<number>(resultSlots);
  for (let k = steps.length - 1; k >= 0; k--) {
    const s = steps[k]!;
    const src = s.inputs[0];
    if (escaping.has(s.output) && ALIASING_OPS.has(s.op) && src !== undefined) escaping.add(src);
  }
  const lastUse = new Array<number>(nSlots).fill(-1);
  const producedAt = new Array<number>(nSlots).fill(-1);
  steps.forEach((s, k) => {
    for (const i of s.inputs) lastUse[i] = k;
    for (const o of outputsOf(s)) producedAt[o] = k;
  });
  const dies: number[][] = steps.map(() => []);
  for (let slot = 0; slot < nSlots; slot++) {
    if (escaping.has(slot)) continue;
    // A value nobody reads dies right after the step that made it.
    const k = Math.max(lastUse[slot]!, producedAt[slot]!);
    if (k >= 0) dies[k]!.push(slot);
  }
  return { dies, escaping };
}
