// A readable listing of a compiled program (Theano's debugprint, in spirit).
import type { Program, SlotInfo } from './program.js';
import { deserializeArray } from './serialize-array.js';

function typeName(s: SlotInfo): string {
  const kinds = ['scalar', 'vector', 'matrix', 'tensor3', 'tensor4'];
  return `${s.dtype} ${kinds[s.broadcastable.length] ?? `tensor${s.broadcastable.length}`}`;
}

export function printProgram(p: Program, log: readonly string[] = []): string {
  const name = (slot: number): string => {
    const s = p.slots[slot]!;
    return `%${slot}${s.name !== undefined ? `(${s.name})` : ''}`;
  };
  const lines: string[] = [];
  p.inputs.forEach((slot, i) => lines.push(`input ${i}: ${name(slot)} : ${typeName(p.slots[slot]!)}`));
  for (const s of p.shareds) lines.push(`shared ${s.sharedId}: ${name(s.slot)} : ${typeName(p.slots[s.slot]!)}`);
  for (const c of p.constants) {
    const v = deserializeArray(c.value);
    const shown = v.size <= 8 ? JSON.stringify(v.toArray()) : `<${v.shape.join('x')} values>`;
    lines.push(`constant ${name(c.slot)} = ${shown} : ${typeName(p.slots[c.slot]!)}`);
  }
  for (const step of p.steps) {
    const args = step.inputs.map(name).join(', ');
    let attrs = '';
    if (step.op === 'fused') {
      const steps = step.attrs['steps'] as readonly { op: string; args: readonly number[] }[];
      attrs = ` {${steps.map((s) => `${s.op}(${s.args.map((a) => `$${a}`).join(',')})`).join('; ')}}`;
    } else if (Object.keys(step.attrs).length) {
      attrs = ` ${JSON.stringify(step.attrs)}`;
    }
    lines.push(`${name(step.output)} = ${step.op}${attrs}(${args}) : ${typeName(p.slots[step.output]!)}`);
  }
  p.outputs.forEach((slot, i) => lines.push(`output ${i}: ${name(slot)}`));
  for (const u of p.updates) lines.push(`update ${u.sharedId} <- ${name(u.slot)}`);
  if (log.length) lines.push(...log.map((l) => `# ${l}`));
  return lines.join('\n');
}
