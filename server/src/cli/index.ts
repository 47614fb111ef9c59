// Dispatches `parley <command>`; usage errors print one line on stderr and exit 2.
import { ConfigError } from '../config.js';
import { DatabaseOpenError } from '../db/open.js';
import { UsageError } from './args.js';

const HELP = `Parley: support chat widget and its API.

usage: parley <command> [options]

  serve [--port 8787] [--host 127.0.0.1] [--db PATH] [--workers N]   run the API server
  demo                                                             the quick start: demo data, API on :8787, demo page on :8788
  workspace create <name> [--json]                                 a workspace and its live/test secret keys
  site create <service-id> --name N --origin O [...] [--json]      a site and its live/test publishable keys
  key create|list|revoke|rotate ... [--json]                       manage keys (see parley key --help)

Environment: PARLEY_DB, PARLEY_PORT, PARLEY_HOST, PARLEY_TRUST_PROXY, PARLEY_LOG_LEVEL, PARLEY_DURABILITY, PARLEY_WORKERS.
`;

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ');

/** Runs a command; returns the exit code, or undefined for commands that keep running. */
export async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await (await import('./serve.js')).serveCommand(rest);
      case 'demo':
        return await (await import('./demo.js')).demoCommand(rest);
      case 'workspace':
        return (await import('./workspace.js')).workspaceCommand(rest);
      case 'site':
        return (await import('./site.js')).siteCommand(rest);
      case 'key':
        return (await import('./key.js')).keyCommand(rest);
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return 0;
      case undefined:
        // A missing command is a usage error like any other: one line on stderr, nothing on stdout.
        throw new UsageError('a command is needed: serve, demo, workspace, site or key; run `parley --help`');
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; run \`parley --help\``);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`parley: ${err.line()}\n`);
      return 2;
    }
    if (err instanceof ConfigError || err instanceof DatabaseOpenError) {
      process.stderr.write(`parley: ${oneLine(err.message)}\n`);
      return 2;
    }
    process.stderr.write(`parley: ${oneLine((err as Error)?.message ?? String(err))}\n`);
    return 1;
  }
}
