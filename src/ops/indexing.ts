// Filled in by the indexing op family.
export const indexingOps = {};
