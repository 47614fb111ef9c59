// `parley site create <service-id> ...`: a site and its two publishable keys.
import { CreateSiteBody } from '@parley/shared';
import type { DB } from '../db/open.js';
import { siteToApi } from '../db/sites.js';
import { findOnlyWorkspace, findWorkspaceById, firstWorkspaces } from '../db/workspaces.js';
import { ApiError } from '../errors.js';
import { createSite } from '../services/provisioning.js';
import { intFlag, output, parse, printUsage, UsageError, wantsHelp } from './args.js';
import { openCliDb } from './context.js';

const USAGE =
  'parley site create <service-id> --name N --origin O [--origin O...] [--allow-server-requests] ' +
  '[--rate-limit N] [--daily-cap-micros N] [--workspace ID] [--db PATH] [--json]';

/** The workspace named by --workspace, or the only one. */
export function resolveWorkspace(db: DB, id: string | undefined): string {
  if (id !== undefined) {
    if (!findWorkspaceById(db, id)) throw new UsageError(`no workspace ${JSON.stringify(id)}`);
    return id;
  }
  const only = findOnlyWorkspace(db);
  if (only === null) throw new UsageError('no workspace exists yet: run `parley workspace create <name>` first');
  if (only === 'many') {
    // Name them: no other command lists workspaces, and the id was printed only when each was made.
    const some = firstWorkspaces(db, 6);
    const named = some.slice(0, 5).map((w) => `${w.id} (${JSON.stringify(w.name)})`).join(', ');
    throw new UsageError(`several workspaces exist: pass --workspace ID, one of ${named}${some.length > 5 ? ', ...' : ''}`);
  }
  return only.id;
}

export function siteCommand(argv: string[]): number {
  if (wantsHelp(argv)) return printUsage(USAGE);
  const { values, positionals } = parse(
    argv,
    {
      name: { type: 'string' },
      origin: { type: 'string', multiple: true },
      'allow-server-requests': { type: 'boolean', default: false },
      'rate-limit': { type: 'string' },
      'daily-cap-micros': { type: 'string' },
      workspace: { type: 'string' },
    },
    USAGE,
  );
  const [sub, serviceId, ...rest] = positionals;
  if (sub !== 'create') throw new UsageError(`unknown site command ${JSON.stringify(sub ?? '')}`, USAGE);
  if (!serviceId || rest.length) throw new UsageError('site create takes exactly one service id', USAGE);
  if (values.name === undefined) throw new UsageError('--name is required', USAGE);
  const origins = (values.origin as string[] | undefined) ?? [];
  if (origins.length === 0) throw new UsageError('at least one --origin is required', USAGE);
  const parsed = CreateSiteBody.safeParse({
    service_id: serviceId,
    name: values.name,
    allowed_origins: origins,
    allow_server_requests: values['allow-server-requests'],
    rate_limit_per_minute: intFlag('rate-limit', values['rate-limit'] as string | undefined, 1, 100_000),
    daily_spend_cap_micros: intFlag('daily-cap-micros', values['daily-cap-micros'] as string | undefined, 0, 1_000_000_000_000),
  });
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    const field = String(i.path[0] ?? '');
    const flag = { service_id: 'service id', name: '--name', allowed_origins: '--origin' }[field] ?? field;
    const shown = field === 'allowed_origins' ? ` ${JSON.stringify(origins[Number(i.path[1])])}` : '';
    throw new UsageError(`invalid ${flag}${shown}: ${i.message}`);
  }
  const db = openCliDb(values.db as string | undefined);
  try {
    const workspaceId = resolveWorkspace(db, values.workspace as string | undefined);
    const { site, keys } = createSite(db, workspaceId, parsed.data, Date.now());
    const doc = { site: siteToApi(site), publishable_keys: { live: keys.live.secret, test: keys.test.secret } };
    output(Boolean(values.json), doc, () =>
      [
        `Site ${site.service_id} created for ${JSON.parse(site.allowed_origins).join(', ')}.`,
        'Publishable keys (browser-safe; put one in the script tag):',
        `  live: ${keys.live.secret}`,
        `  test: ${keys.test.secret}`,
      ].join('\n'),
    );
    return 0;
  } catch (err) {
    if (err instanceof ApiError) throw new UsageError(err.message);
    throw err;
  } finally {
    db.close();
  }
}
