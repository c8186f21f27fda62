// Walking the symbolic graph: the order in which variables can be computed. Differentiation,
// program building and the random streams all walk it, so it sits with the variables it walks.
import type { Variable } from './variable.js';

/** Variables in topological order (inputs before users), from the given roots. */
export function topoSort(roots: readonly Variable[]): Variable[] {
  const order: Variable[] = [];
  const seen = new Set<number>();
  const stack: { v: Variable; expanded: boolean }[] = roots.map((v) => ({ v, expanded: false }));
  while (stack.length) {
    const top = stack.pop()!;
    if (top.expanded) { order.push(top.v); continue; }
    if (seen.has(top.v.id)) continue;
    seen.add(top.v.id);
    stack.push({ v: top.v, expanded: true });
    for (const input of top.v.owner?.inputs ?? []) if (!seen.has(input.id)) stack.push({ v: input, expanded: false });
  }
  return order;
}
