// Parity with torchvision, first half: builds X.resnet50 / X.resnet18, saves its state dict with
// net.save (torchvision's names), and saves beside it a fixed input batch with our logits in eval
// mode, in train mode (batch statistics) and the running statistics after that train-mode step.
// bench/resnet_parity_torch.py loads both files into torchvision's model and compares.
// Usage: node dist/bench/resnet-parity.js [--model resnet50|resnet18] [--size 224] [--batch 2] [--out dir]
//   then: python3 bench/resnet_parity_torch.py [--model ...] [--dir dir]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';

const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
};
const o = new Command().name('bench-resnet-parity')
  .description("Writes a ResNet's state dict and its outputs on a fixed batch, for bench/resnet_parity_torch.py to compare with torchvision.")
  .addOption(new Option('--model <name>', 'network').choices(['resnet50', 'resnet18']).default('resnet50'))
  .option('--size <n>', 'side of the square images', positive, 224)
  .option('--batch <n>', 'images', positive, 2)
  .option('--out <dir>', 'directory for the two files', 'out')
  .parse()
  .opts<{ model: 'resnet50' | 'resnet18'; size: number; batch: number; out: string }>();

await registerBuiltinDevices();
const net = (o.model === 'resnet50' ? X.resnet50 : X.resnet18)({ seed: 5 });
// Running statistics away from their 0 / 1 start, so eval mode tests that they are used as torchvision uses them.
const r = new X.Rng(9);
for (const bn of [net.bn1, ...net.layers.flat().flatMap((b) => [...b.norms, ...(b.downsample ? [b.downsample[1]] : [])])]) {
  const mean = new T.NDArray('float32', [bn.features]);
  const variance = new T.NDArray('float32', [bn.features]);
  for (let i = 0; i < bn.features; i++) { mean.data[i] = r.uniform(-0.1, 0.1); variance.data[i] = r.uniform(0.5, 1.5); }
  bn.runningMean.setValue(mean);
  bn.runningVar.setValue(variance);
}
mkdirSync(o.out, { recursive: true });
const weights = join(o.out, `${o.model}-weights.safetensors`);
net.save(weights, { model: o.model, writer: 'synkhronos bench/resnet-parity.ts' });

const input = X.makeImageNetLike({ rows: o.batch, size: o.size, seed: 3 }).x;
const x = T.tensor4('x');
const evalLogits = T.fn({ inputs: [x], outputs: net.apply(x, X.evalMode()) })(input) as T.NDArray;
const mode = X.trainMode();
const trainLogits = T.fn({ inputs: [x], outputs: net.apply(x, mode), updates: mode.updates })(input) as T.NDArray;
const after: Record<string, T.NDArray> = {};
for (const s of net.states) after[`after.${s.name!}`] = s.getValue();
const io = join(o.out, `${o.model}-io.safetensors`);
X.saveSafetensors(io, { input, 'logits.eval': evalLogits, 'logits.train': trainLogits, ...after });
console.log(`${o.model}: ${net.parameterCount()} parameters; wrote ${weights} and ${io} (input ${input.shape.join('x')}, `
  + `logits ${evalLogits.shape.join('x')}, ${net.states.length} running statistics after one train-mode step)`);
