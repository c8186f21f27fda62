// The command line of every example (not an example itself): one commander setup so that each
// example prints its usage for --help (exit 0) and refuses unknown options, stray arguments and bad
// values with a message naming them (exit 1), before it loads data or starts workers.
import { Command, InvalidArgumentError, Option } from 'commander';

/** A command with the examples' conventions; add options, then call parseOptions. */
export function exampleCommand(name: string, description: string): Command {
  return new Command()
    .name(name)
    .description(description)
    .allowExcessArguments(false)
    .showHelpAfterError(`(run ${name} --help for the options)`);
}

export const positiveInt = (flag: string) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
};

export const positiveNumber = (flag: string) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
};

/** A number in [low, high] (both included). */
export const numberIn = (flag: string, low: number, high: number) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !(n >= low && n <= high)) {
    throw new InvalidArgumentError(`${flag} must be a number from ${low} to ${high}, got ${JSON.stringify(value)}`);
  }
  return n;
};

/** `count` comma-separated positive integers, e.g. --channels 16,32. */
export const positiveIntList = (flag: string, count: number) => (value: string): number[] => {
  const parts = value.split(',').map((s) => s.trim());
  const ns = parts.map(Number);
  if (parts.length !== count || parts.some((s) => s === '') || ns.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new InvalidArgumentError(`${flag} must be ${count} comma-separated positive integers, got ${JSON.stringify(value)}`);
  }
  return ns;
};

/** Workers when --workers is not given: SYNK_WORKERS from the environment, else `fallback`. */
export function envWorkers(fallback: number): number {
  const raw = process.env['SYNK_WORKERS'];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`SYNK_WORKERS must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** --workers <n>; when absent the example reads SYNK_WORKERS itself (after --help, so a bad value cannot hide the usage). */
export function workersOption(defaultDescription: string): Option {
  return new Option('--workers <n>', `worker threads (default: ${defaultDescription})`).argParser(positiveInt('--workers'));
}

/** Option keys as flags, for help texts: trainRows -> --train-rows. */
export const flagOf = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** --quick: a CI-sized run; lists what it changes. */
export function quickOption(quick: Readonly<Record<string, unknown>>): Option {
  const changes = Object.entries(quick).map(([k, v]) => `${flagOf(k)} ${String(v)}`).join(', ');
  return new Option('--quick', `a CI-sized run (${changes}); options given explicitly still win`).default(false);
}

/**
 * Parses the command line (process.argv unless `argv` is given, in node's form). With --quick the
 * `quick` values replace every default that was not given explicitly.
 */
export function parseOptions<O extends object>(program: Command, quick: Readonly<Record<string, unknown>> = {}, argv?: readonly string[]): O {
  program.parse(argv ? [...argv] : process.argv);
  const opts = program.opts<Record<string, unknown>>();
  if (opts['quick'] === true) {
    for (const [k, v] of Object.entries(quick)) if (program.getOptionValueSource(k) === 'default') opts[k] = v;
  }
  return opts as O;
}

/**
 * The command line of the small examples: --workers (default SYNK_WORKERS, else 2) and --help.
 * Returns the worker count.
 */
export function parseWorkers(name: string, description: string): number {
  const program = exampleCommand(name, description).addOption(workersOption('SYNK_WORKERS, else 2'));
  const { workers } = parseOptions<{ workers?: number }>(program);
  return workers ?? envWorkers(2);
}
