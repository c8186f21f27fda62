// Calls of several functions in flight at once (Promise.all) each get their own results: the fast
// path's argument and result arenas are used inside each call's turn of the queue (a queued call's
// arguments once overwrote the running one's, and `three` came back with `none`'s empty results).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';

before(async () => { await synk.fork({ n: 2, devices: 'reference' }); });
after(async () => { await synk.close(); });

test('concurrent calls of different functions return their own results, every time', async () => {
  const x = T.matrix('x');
  const one = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
  const three = synk.fn({ inputs: [x], outputs: [x.mean(), [x.max(), 'max'], [x.sum(1), 'gather']] });
  const none = synk.fn({ inputs: [x], updates: [[T.shared(0, { name: 'n' }), x.sum()]] });
  const X = synk.data(T.NDArray.from(Float32Array.from({ length: 12 }, (_, i) => i), { shape: [6, 2] }));
  for (let i = 0; i < 200; i++) {
    const [s, t, n] = await Promise.all([one(X), three(X), none(X)]);
    assert.equal(s.item(), 66, `call ${i}: one`);
    assert.equal(t.length, 3, `call ${i}: three gave ${t.length} results`);
    assert.deepEqual([t[0].item(), t[1].item(), t[2].size], [5.5, 11, 6], `call ${i}: three's values`);
    assert.deepEqual(n, [], `call ${i}: none`);
  }
});
