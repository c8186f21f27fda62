// The script every data-parallel worker thread runs.
import '../tensor/methods.js';
import { serveWorker } from './pool.js';
import { Engine } from './engine.js';
import { createDevice, type DeviceSpec } from '../devices/create.js';
import { registerBuiltinDevices } from '../devices/builtin.js';
import type { ControllerMsg } from './protocol.js';
import { CMD_FAST_CALL, CMD_FETCH_SHARED } from './fast-call.js';

let engine: Engine | undefined;

await serveWorker({
  async init(ctx) {
    await registerBuiltinDevices();
    const { devices: specs, arenas } = ctx.workerData as { devices: readonly DeviceSpec[]; arenas: { scratch: SharedArrayBuffer; results: SharedArrayBuffer } };
    const spec = specs[ctx.rank];
    if (!spec) throw new Error(`rank ${ctx.rank}: no device given`);
    engine = new Engine(ctx.rank, ctx.size, await createDevice(spec), ctx.comm, arenas);
  },
  message: (msg) => engine!.handle(msg as ControllerMsg),
  commands: { [CMD_FAST_CALL]: (args) => engine!.callFast(args), [CMD_FETCH_SHARED]: (args) => engine!.fetchShared(args) },
});
engine?.device.close();
