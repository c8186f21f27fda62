// The introductory example (the original's example_0 and demo_1): build a graph as usual, fork
// workers, make a data-parallel function, call it, and compare with the single-device result.
// Run: npm run build && node dist/examples/intro.js [--workers n] [--help]   (or SYNK_WORKERS=n)
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { assertClose, many, one, randn, show } from './_common.js';
import { parseWorkers } from './_cli.js';
import { plural } from '../src/extensions/plural.js';

const workers = parseWorkers('intro',
  'The introductory example: a data-parallel function of a graph, called on the workers and compared with the single-device result.');
const n = await synk.fork({ n: workers });
try {
  console.log(`forked ${plural(n, 'worker')}`);

  // Build the graph exactly as for a plain T.fn.
  const x = T.matrix('x');
  const y = T.matrix('y');
  const z = T.mean(x.dot(y), 0);

  // x is scattered over the workers along axis 0; y goes whole to every worker.
  // The output's reduce op defaults to 'avg', weighted by each worker's number of rows.
  const f = synk.fn({ inputs: [x], bcastInputs: [y], outputs: z });
  await synk.distribute(); // optional: the first call distributes on its own

  const xDat = randn([100, 10], 1);
  const yDat = randn([10, 20], 2);
  const r = one(await f(xDat, yDat)); // plain arrays are copied once into shared memory
  const rLocal = one(f.local(xDat, yDat)); // the whole function on the controller alone
  console.log(`mean(x . y, axis 0) on ${plural(n, 'worker')}: ${show(r).slice(0, 60)}...`);
  assertClose(r, rLocal, 'f(x, y) vs f.local(x, y)');
  const plain = T.fn({ inputs: [x, y], outputs: z }); // the plain single-device function
  assertClose(r, one(plain(xDat, yDat)), 'f(x, y) vs T.fn');
  console.log('equals the single-device result: OK');

  // Several outputs, each with its own reduce op; inputs moved to shared memory up front.
  const prod = x.dot(y);
  const g = synk.fn({
    inputs: [x],
    bcastInputs: [y],
    outputs: [T.mean(prod, 0), [T.sum(prod, 0), 'sum'], [T.max(prod, 0), 'max'], [T.min(prod, 0), 'min'], [prod, 'gather']],
  });
  const xBig = randn([1000, 10], 3, 0.01);
  const [xSynk, ySynk] = g.buildInputs(xBig, yDat);
  console.log(`buildInputs made Data of shapes (${xSynk!.shape.join(', ')}) and (${ySynk!.shape.join(', ')})`);
  const got = many(await g(xSynk!, ySynk!));
  const want = many(g.local(xBig, yDat));
  ['avg', 'sum', 'max', 'min', 'gather'].forEach((op, i) => {
    assertClose(got[i]!, want[i]!, `output ${i} (${op})`);
    console.log(`output ${i} reduced by '${op}': shape (${got[i]!.shape.join(', ')}) equals the single-device result`);
  });
  console.log('intro: OK');
} finally {
  await synk.close();
}
