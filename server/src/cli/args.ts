// Argument parsing shared by the commands: node's parseArgs, with usage errors as one line and exit 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON: Options = {
  db: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

/** Parses `argv` strictly; unknown flags and missing values become a UsageError. */
export function parse(argv: string[], options: Options, usage: string) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]}\nusage: ${usage}`);
  }
}

/** A whole number flag within bounds, or a UsageError naming the flag. */
export function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Prints one JSON document (for --json) or the human text. */
export function output(json: boolean, doc: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(doc, null, 2)}\n` : `${human()}\n`);
}
