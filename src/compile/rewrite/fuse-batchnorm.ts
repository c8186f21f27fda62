// relu(bnTrain(x, stats, gamma, beta)) becomes one bnTrain with its relu attribute, so a device
// writes the activation once instead of writing the normalised values and reading them back (in a
// ResNet every batch norm but the last of a block is followed by relu). Only where relu is the
// normalised values' one reader and they are no output or update; run after differentiation (the
// gradient graph reads relu's output, which the fused step still produces) and before the
// elementwise fusion (which would otherwise take relu into a chain of its own).
import { readsOnlyShape } from '../../ops/shape-only.js';
import type { WorkProgram } from './work-program.js';

export function fuseBatchNormRelu(w: WorkProgram): void {
  const pinned = new Set<number>([...w.outputs, ...w.updates.map((u) => u.slot)]);
  const producer = w.producerOf();
  let fused = 0;
  w.steps.forEach((s, at) => {
    if (s.op !== 'relu') return;
    const y = s.inputs[0]!;
    const p = producer.get(y);
    if (!p || p.op !== 'bnTrain' || p.attrs['relu'] === true || pinned.has(y)) return;
    if (w.slots[y]!.dtype !== w.slots[s.output]!.dtype) return;
    // Every other reader of the normalised values must read only their shape, after relu: it reads relu's output instead.
    const others = w.steps.flatMap((r, k) => r.inputs.flatMap((i, j) => (i === y && r !== s ? [{ r, j, k }] : [])));
    if (others.some(({ r, j, k }) => !readsOnlyShape(r.op, j) || k < at)) return;
    for (const { r, j } of others) r.inputs[j] = s.output;
    s.op = 'bnTrain';
    s.attrs = { ...p.attrs, relu: true };
    s.inputs = [...p.inputs];
    fused++;
  });
  if (fused > 0) {
    w.log.push(`batch norm: fused ${fused} relu(s) into bnTrain`);
    w.eliminateDeadCode();
  }
}
