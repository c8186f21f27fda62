// Worker of bench/dispatch-phases.ts: command 1 records when this rank woke (its handler began) and
// when it finished, after a 'sum' reduction of one number to rank 0 (the collective a trivial
// synk.fn call with a summed output runs: three barriers), in the shared clock buffer.
import { serveWorker } from '../src/parallel/pool.js';

const { clock } = (await import('node:worker_threads')).workerData.data as { clock: SharedArrayBuffer };
const times = new BigInt64Array(clock);

await serveWorker({
  commands: {
    1: async (args, ctx) => {
      times[2 + 2 * ctx.rank] = process.hrtime.bigint();
      if (args[0] === 1 && ctx.comm) await ctx.comm.reduce(new Float32Array([ctx.rank]), { op: 'sum', root: 0 });
      times[3 + 2 * ctx.rank] = process.hrtime.bigint();
      return ctx.rank;
    },
  },
});
