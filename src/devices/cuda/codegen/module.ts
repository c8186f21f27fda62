// Collects the kernel definitions a compiled program needs. Each definition (a family of entry
// points generated together, e.g. one reduction's passes) is a compilation unit of its own:
// NVRTC compiles it once per process (and once per machine through the disk cache), however many
// programs use it.
import { createHash } from 'node:crypto';
import { COMMON, REDUCE, SOFTMAX, VEC } from './prelude.js';

export type PreludePart = 'vec' | 'reduce' | 'softmax';

const PARTS: Record<PreludePart, string> = { vec: VEC, reduce: REDUCE, softmax: SOFTMAX };
const ORDER: readonly PreludePart[] = ['vec', 'reduce', 'softmax'];

/** One compilation unit: its full source (prelude included) and the extern "C" names it defines. */
export interface KernelUnit {
  readonly name: string;
  readonly source: string;
  readonly kernels: readonly string[];
  /** The definition without its prelude, and the prelude parts it needs. */
  readonly body: string;
  readonly parts: readonly PreludePart[];
}

interface Definition {
  readonly body: string;
  readonly kernels: readonly string[];
  readonly parts: readonly PreludePart[];
}

/** A source made of the prelude parts and the given definitions. */
export function withPrelude(parts: Iterable<PreludePart>, bodies: readonly string[]): string {
  const set = new Set(parts);
  return [COMMON, ...ORDER.filter((p) => set.has(p)).map((p) => PARTS[p]), ...bodies].join('\n');
}

export class ModuleBuilder {
  private readonly defs = new Map<string, Definition>();

  has(name: string): boolean {
    return this.defs.has(name);
  }

  /** Adds a definition once; `kernels` lists the extern "C" names it defines. */
  define(name: string, body: string, kernels: readonly string[] = [name], parts: readonly PreludePart[] = []): void {
    if (!this.defs.has(name)) this.defs.set(name, { body, kernels, parts });
  }

  get kernelNames(): readonly string[] {
    return [...this.defs.values()].flatMap((d) => d.kernels);
  }

  /** The compilation units, one per definition. */
  units(): KernelUnit[] {
    return [...this.defs].map(([name, d]) => ({ name, source: withPrelude(d.parts, [d.body]), kernels: d.kernels, body: d.body, parts: d.parts }));
  }

  /** Every definition in one source (for a single compile check). */
  source(): string {
    const defs = [...this.defs.values()];
    return withPrelude(defs.flatMap((d) => d.parts), defs.map((d) => d.body));
  }
}

/** A short stable identifier for a piece of text (kernel names of generated functions). */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
