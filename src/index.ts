// `import * as synk from 'synkhronos'`: the data-parallel runtime (and the tensor namespace as T).
export * as T from './tensor/index.js';
