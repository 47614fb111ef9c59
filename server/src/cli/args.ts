// Argument parsing shared by the commands: node's parseArgs, with usage errors as one line and exit 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A bad command line: printed as one line on stderr (with the usage, when known), exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }

  /** The one line to print, without the `parley: ` prefix. */
  line(): string {
    const text = this.message.replace(/\s*\n\s*/g, ' ');
    return this.usage ? `${text} (usage: ${this.usage})` : text;
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON: Options = {
  db: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

/**
 * True when the arguments ask for help: `--help` or `-h` anywhere before a `--`. Checked before
 * anything else, so a request for help is never answered with a usage error (a missing required
 * flag, say) or a configuration error from the environment.
 */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Prints a command's usage on stdout for --help; the exit code is 0. */
export function printUsage(usage: string): number {
  process.stdout.write(`usage: ${usage}\n`);
  return 0;
}

/** Parses `argv` strictly; unknown flags and missing values become a UsageError. */
export function parse(argv: string[], options: Options, usage: string) {
  const all = { ...COMMON, ...options };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    // node's messages for unknown options go on with advice about `--`; the first sentence is enough.
    let first = (err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
    const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous/.exec(first);
    if (ambiguous) first = `${ambiguous[1]} needs a value (write ${ambiguous[1]}=VALUE for one that starts with -)`;
    throw new UsageError(first, usage);
  }
  // parseArgs keeps the last of a repeated flag: `--name A --name B` would quietly drop A.
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option' || all[t.name]?.multiple) continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given more than once`, usage);
    seen.add(t.name);
  }
  const { tokens: _tokens, ...rest } = parsed;
  return rest;
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
