// Liveness over a program's steps: after which step each value is dead (its buffer can go back to
// the pool), and which values escape to the caller (outputs, update values and whatever they may
// alias: those are allocated fresh, never from the pool, so a later call cannot overwrite them).

export interface PlanStep {
  readonly op: string;
  readonly inputs: readonly number[];
  readonly output: number;
}

export interface MemoryPlan {
  /** Per step, the slots whose last use is that step (released right after it), escaping ones excluded. */
  readonly dies: readonly (readonly number[])[];
  /** Slots whose values are returned to the caller, or may be returned as views of them. */
  readonly escaping: ReadonlySet<number>;
}

/** Ops whose result may be input 0 itself or a view of its buffer (reshape, no-op broadcasts...). */
export const ALIASING_OPS: ReadonlySet<string> = new Set(['reshape', 'rebroadcast', 'dimshuffle', 'broadcastLike', 'sumToLike']);

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
    producedAt[s.output] = k;
  });
  const dies: number[][] = steps.map(() => []);
  for (let slot = 0; slot < nSlots; slot++) {
    if (escaping.has(slot)) continue;
    // A value nobody reads dies right after the step that made it.
    const k = lastUse[slot]! >= 0 ? lastUse[slot]! : producedAt[slot]!;
    if (k >= 0) dies[k]!.push(slot);
  }
  return { dies, escaping };
}
