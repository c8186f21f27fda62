// Option objects at the public boundary: a misspelt option name is an error, never silently ignored.

/** Refuses option names outside `known`, listing the known ones (a typo must not pass silently). */
export function refuseUnknownKeys(options: object, known: readonly string[], what: string): void {
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new TypeError(`${what}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; known: ${known.join(', ')}`);
  }
}
