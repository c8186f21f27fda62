// The script every data-parallel worker thread runs.
import '../tensor/methods.js';
import { serveWorker } from './pool.js';
import { Engine } from './engine.js';
import { createDevice, type DeviceSpec } from '../devices/create.js';
import { registerBuiltinDevices } from '../devices/builtin.js';
import type { ControllerMsg } from './protocol.js';
import { setRandomStreamSalt } from '../ops/random.js';

let engine: Engine | undefined;

await serveWorker({
  async init(ctx) {
    await registerBuiltinDevices();
    const specs = (ctx.workerData as { devices: readonly DeviceSpec[] }).devices;
    const spec = specs[ctx.rank];
    if (!spec) throw new Error(`rank ${ctx.rank}: no device given`);
    setRandomStreamSalt(ctx.rank); // workers draw independent random numbers for their own rows
    engine = new Engine(ctx.rank, ctx.size, await createDevice(spec), ctx.comm);
  },
  message: (msg) => engine!.handle(msg as ControllerMsg),
});
engine?.device.close();
