// The one Communicator suite over every transport (shared memory everywhere; NCCL where a GPU and
// libnccl are found, skipped with the reason elsewhere). Transport-specific behaviour (the shared-
// memory group's mismatch detection and timeouts, NCCL's device buffers) is in shm.test.ts and nccl.test.ts.
import { communicatorSuite } from './communicator-suite.js';
import { TRANSPORTS } from './transports.js';

for (const transport of TRANSPORTS) communicatorSuite(transport);
