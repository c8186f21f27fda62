// The error every device raises when a program step fails at run time. It lives with the program
// (not with any one device) because the compiled function maps its step index back to the graph.

/** Raised when a step fails at run time; carries the step index so callers can name inputs. */
export class StepError extends Error {
  readonly stepIndex: number;
  readonly original: unknown;
  constructor(stepIndex: number, original: unknown) {
    super(original instanceof Error ? original.message : String(original));
    this.name = original instanceof Error ? original.name : 'StepError';
    this.stepIndex = stepIndex;
    this.original = original;
  }
}
