// `parley serve`: run the API server (optionally as N worker processes on one port).
import { loadConfig, type Config } from '../config.js';
import { serve } from '../main.js';
import { parse, printUsage, wantsHelp } from './args.js';

const USAGE =
  'parley serve [--port 8787] [--host 127.0.0.1] [--db PATH] [--workers N] [--durability normal|full] [--log-level L] [--trust-proxy V]';

/** Flags of serve-like commands, as config overrides (flags beat the environment). */
export function serveConfig(argv: string[], usage = USAGE): { config: Config; positionals: string[] } {
  const { values, positionals } = parse(
    argv,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      workers: { type: 'string' },
      durability: { type: 'string' },
      'log-level': { type: 'string' },
      'trust-proxy': { type: 'string' },
    },
    usage,
  );
  const flags: Partial<Record<keyof Config, string>> = {};
  if (values.db !== undefined) flags.db = values.db as string;
  if (values.port !== undefined) flags.port = values.port as string;
  if (values.host !== undefined) flags.host = values.host as string;
  if (values.workers !== undefined) flags.workers = values.workers as string;
  if (values.durability !== undefined) flags.durability = values.durability as string;
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level'] as string;
  if (values['trust-proxy'] !== undefined) flags.trustProxy = values['trust-proxy'] as string;
  return { config: loadConfig(process.env, flags), positionals };
}

export async function serveCommand(argv: string[]): Promise<number | undefined> {
  if (wantsHelp(argv)) return printUsage(USAGE);
  const { config, positionals } = serveConfig(argv);
  if (positionals.length) throw new (await import('./args.js')).UsageError('serve takes no arguments', USAGE);
  await serve(config);
  return undefined; // keeps running until a signal
}
