// `parley workspace create <name>`: a workspace and its live and test secret keys.
import { WorkspaceName } from '@parley/shared';
import { keyToApi } from '../db/keys.js';
import { createWorkspace } from '../services/provisioning.js';
import { iso } from '../util.js';
import { output, parse, printUsage, UsageError, wantsHelp } from './args.js';
import { openCliDb } from './context.js';

const USAGE = 'parley workspace create <name> [--db PATH] [--json]';

export function workspaceCommand(argv: string[]): number {
  if (wantsHelp(argv)) return printUsage(USAGE);
  const { values, positionals } = parse(argv, {}, USAGE);
  const [sub, name, ...rest] = positionals;
  if (sub !== 'create') throw new UsageError(`unknown workspace command ${JSON.stringify(sub ?? '')}`, USAGE);
  if (!name || rest.length) throw new UsageError('workspace create takes exactly one name', USAGE);
  // The API's rule for names: characters as a reader sees them (an emoji with its parts is one), not all invisible.
  if (!WorkspaceName.safeParse(name).success) throw new UsageError('the workspace name must be 1 to 100 characters');
  const db = openCliDb(values.db as string | undefined);
  try {
    const { workspace, keys } = createWorkspace(db, name.trim(), Date.now());
    const doc = {
      workspace: { id: workspace.id, name: workspace.name, created_at: iso(workspace.created_at) },
      keys: { live: keyToApi(keys.live.row, keys.live.secret), test: keyToApi(keys.test.row, keys.test.secret) },
    };
    output(Boolean(values.json), doc, () =>
      [
        `Workspace ${workspace.id} (${workspace.name}) created.`,
        'Secret keys (shown once; store them in your secret manager):',
        `  live: ${keys.live.secret}`,
        `  test: ${keys.test.secret}`,
      ].join('\n'),
    );
    return 0;
  } finally {
    db.close();
  }
}
