#!/usr/bin/env node
// Parley's command line: `node server/bin/parley.js <command>` (see `--help`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('parley: the server is not built yet; run `pnpm install && pnpm build` first.\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
