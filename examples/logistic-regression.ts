// Logistic regression trained by gradient descent with T.fn updates (Theano's classic tutorial).
// Run: npm run build && node dist/examples/logistic-regression.js [--help]
import assert from 'node:assert/strict';
import * as T from '../src/tensor.js';
import { exampleCommand, parseOptions } from './_cli.js';

parseOptions(exampleCommand('logistic-regression',
  'Logistic regression on generated data, trained by gradient descent with T.fn updates (single device, no workers).'));

function makeData(n: number, features: number, seed: number): { x: T.NDArray; y: T.NDArray; trueW: number[] } {
  let s = seed;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
  const trueW = Array.from({ length: features }, (_, i) => (i % 2 === 0 ? 1.5 : -2) * (1 + i / features));
  const x = new T.NDArray('float32', [n, features]);
  const y = new T.NDArray('float32', [n]);
  for (let i = 0; i < n; i++) {
    let z = 0.3;
    for (let j = 0; j < features; j++) {
      const v = rand() * 2 - 1;
      x.data[i * features + j] = v;
      z += v * trueW[j]!;
    }
    y.data[i] = rand() < 1 / (1 + Math.exp(-4 * z)) ? 1 : 0;
  }
  return { x, y, trueW };
}

const features = 8;
const { x: xData, y: yData, trueW } = makeData(2000, features, 42);

const x = T.matrix('x');
const y = T.vector('y');
const w = T.shared(new Float32Array(features), { name: 'w' });
const b = T.shared(0, { name: 'b' });
const p = T.sigmoid(T.add(x.dot(w), b));
const xent = T.add(T.mul(T.neg(y), T.log(p)), T.mul(T.sub(1, y), T.neg(T.log(T.sub(1, p)))));
const cost = T.add(xent.mean(), T.mul(0.001, T.sum(T.square(w))));
const [gw, gb] = T.grad(cost, [w, b]);
const lr = 0.5;
const train = T.fn({ inputs: [x, y], outputs: [cost, T.mean(T.eq(T.gt(p, 0.5), y))], updates: [[w, w.sub(T.mul(lr, gw!))], [b, b.sub(T.mul(lr, gb!))]] });

let first = 0;
let last = 0;
let accuracy = 0;
for (let step = 0; step < 300; step++) {
  const [c, acc] = train(xData, yData) as T.NDArray[];
  if (step === 0) first = c!.item();
  last = c!.item();
  accuracy = acc!.item();
  if (step % 50 === 0) console.log(`step ${step}: cost ${last.toFixed(4)}, accuracy ${(accuracy * 100).toFixed(1)}%`);
}
console.log(`final: cost ${last.toFixed(4)} (from ${first.toFixed(4)}), accuracy ${(accuracy * 100).toFixed(1)}%`);
const learned = Array.from(w.getValue().data);
const cosine = learned.reduce((s, v, i) => s + v * trueW[i]!, 0) / Math.hypot(...learned) / Math.hypot(...trueW);
console.log(`cosine(learned w, true w) = ${cosine.toFixed(3)}`);
assert.ok(last < first * 0.6, 'cost fell');
assert.ok(accuracy > 0.85, 'accuracy above 85%');
assert.ok(cosine > 0.95, 'learned direction matches the generating weights');
console.log('logistic regression: OK');
