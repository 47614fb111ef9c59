// `parley key create|list|revoke|rotate`: the key lifecycle of the management API, for the operator
// at the server (full rights on one workspace: --workspace, or the only one).
import { CreateKeyBody, type Environment } from '@parley/shared';
import { findKeyById, keyToApi, type KeyWithSite } from '../db/keys.js';
import type { DB } from '../db/open.js';
import { ApiError } from '../errors.js';
import { createKey, fullRights, listKeysFor, MAX_GRACE_SECONDS, revokeKeyNow, rotateKey } from '../services/keys.js';
import { iso } from '../util.js';
import { intFlag, output, parse, printUsage, UsageError, wantsHelp } from './args.js';
import { openCliDb } from './context.js';
import { resolveWorkspace } from './site.js';

const USAGE =
  'parley key create --type publishable|secret --name N [--site SID] [--scopes read,write,admin] [--sites a,b] ' +
  '[--expires-at ISO] [--env live|test] | key list [--env live|test] | key revoke <id> | key rotate <id> [--grace-seconds N] ' +
  '([--workspace ID] [--db PATH] [--json])';

const FLAGS = {
  type: { type: 'string' },
  name: { type: 'string' },
  site: { type: 'string' },
  scopes: { type: 'string' },
  sites: { type: 'string' },
  'expires-at': { type: 'string' },
  env: { type: 'string' },
  'grace-seconds': { type: 'string' },
  workspace: { type: 'string' },
} as const;

type Values = ReturnType<typeof parse>['values'];

const str = (values: Values, name: keyof typeof FLAGS): string | undefined => values[name] as string | undefined;

function envFlag(values: Values): Environment | undefined {
  const env = str(values, 'env');
  if (env === undefined) return undefined;
  if (env !== 'live' && env !== 'test') throw new UsageError(`--env must be live or test, got ${JSON.stringify(env)}`, USAGE);
  return env;
}

/** Flags that a subcommand does not take are refused rather than silently ignored. */
function onlyFlags(values: Values, sub: string, allowed: (keyof typeof FLAGS)[]): void {
  for (const name of Object.keys(FLAGS) as (keyof typeof FLAGS)[]) {
    if (values[name] !== undefined && !allowed.includes(name)) throw new UsageError(`key ${sub} does not take --${name}`, USAGE);
  }
}

const list = (text: string | undefined) => (text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter(Boolean));

/** The body of `key create` from flags, validated by the API's own schema; a bad flag is named. */
function createBody(values: Values): CreateKeyBody {
  const flagOf: Record<string, string> = {
    type: '--type', name: '--name', site: '--site', scopes: '--scopes', sites: '--sites', expires_at: '--expires-at',
  };
  if (str(values, 'type') === undefined) throw new UsageError('--type is required (publishable or secret)', USAGE);
  if (str(values, 'name') === undefined) throw new UsageError('--name is required', USAGE);
  const parsed = CreateKeyBody.safeParse({
    type: str(values, 'type'),
    name: str(values, 'name'),
    site: str(values, 'site'),
    scopes: list(str(values, 'scopes')),
    sites: list(str(values, 'sites')),
    expires_at: str(values, 'expires-at'),
  });
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    const field = String(i.path[0] ?? '');
    throw new UsageError(`invalid ${flagOf[field] ?? field}: ${i.message}`, USAGE);
  }
  return parsed.data;
}

function describe(k: ReturnType<typeof keyToApi>): string {
  const state = k.revoked_at ? `revoked ${k.revoked_at}` : k.expires_at ? `expires ${k.expires_at}` : 'active';
  const where = k.site ? ` site ${k.site}` : k.sites ? ` sites ${k.sites.join(',')}` : '';
  return `${k.id}  ${k.prefix}...  ${k.type} ${k.environment} [${k.scopes.join(',')}]${where}  ${JSON.stringify(k.name)}  ${state}` +
    (k.exposed_at ? `  EXPOSED ${k.exposed_at}` : '');
}

/**
 * A key by id, within the workspace --workspace names, or the only one (SPEC 10: with several
 * workspaces --workspace is required, here too: a mistyped id never reaches another customer's key).
 */
function keyById(db: DB, id: string | undefined, workspace: string | undefined, sub: string): KeyWithSite {
  if (!id) throw new UsageError(`key ${sub} takes exactly one key id`, USAGE);
  const workspaceId = resolveWorkspace(db, workspace);
  const row = findKeyById(db, id);
  if (!row || row.workspace_id !== workspaceId) {
    throw new UsageError(`no key ${JSON.stringify(id)}`);
  }
  return row;
}

function run(db: DB, sub: string, values: Values, args: string[]): { doc: unknown; human: () => string } {
  const now = Date.now();
  switch (sub) {
    case 'create': {
      onlyFlags(values, sub, ['type', 'name', 'site', 'scopes', 'sites', 'expires-at', 'env', 'workspace']);
      if (args.length) throw new UsageError('key create takes no positional arguments', USAGE);
      const body = createBody(values);
      const env = envFlag(values) ?? 'live';
      const caller = fullRights(resolveWorkspace(db, str(values, 'workspace')), env);
      const minted = createKey(db, caller, body, now);
      const key = keyToApi(minted.row, minted.secret);
      return {
        doc: { key },
        human: () => [`Key ${key.id} created: ${describe(key)}`, 'Secret (shown once; store it now):', `  ${minted.secret}`].join('\n'),
      };
    }
    case 'list': {
      onlyFlags(values, sub, ['env', 'workspace']);
      if (args.length) throw new UsageError('key list takes no positional arguments', USAGE);
      const workspaceId = resolveWorkspace(db, str(values, 'workspace'));
      const envs: Environment[] = envFlag(values) ? [envFlag(values)!] : ['live', 'test'];
      const keys = envs.flatMap((env) => {
        const out: KeyWithSite[] = [];
        for (let after = 0; ; ) {
          const page = listKeysFor(db, fullRights(workspaceId, env), after, 100);
          out.push(...page.keys);
          if (page.next === null) return out;
          after = page.next;
        }
      }).map((k) => keyToApi(k));
      return {
        doc: { keys, next_cursor: null },
        human: () => (keys.length ? keys.map(describe).join('\n') : 'No keys.'),
      };
    }
    case 'revoke': {
      onlyFlags(values, sub, ['workspace']);
      if (args.length > 1) throw new UsageError('key revoke takes exactly one key id', USAGE);
      const row = keyById(db, args[0], str(values, 'workspace'), sub);
      const key = keyToApi(revokeKeyNow(db, fullRights(row.workspace_id, row.environment), row.id, now));
      return { doc: { key }, human: () => `Key ${key.id} revoked at ${key.revoked_at}.` };
    }
    case 'rotate': {
      onlyFlags(values, sub, ['grace-seconds', 'workspace']);
      if (args.length > 1) throw new UsageError('key rotate takes exactly one key id', USAGE);
      const grace = intFlag('grace-seconds', str(values, 'grace-seconds'), 0, MAX_GRACE_SECONDS) ?? 0;
      const row = keyById(db, args[0], str(values, 'workspace'), sub);
      const { key: minted, old } = rotateKey(db, fullRights(row.workspace_id, row.environment), row.id, grace, now);
      const key = keyToApi(minted.row, minted.secret);
      return {
        doc: { key },
        human: () =>
          [
            `Key ${key.id} replaces ${old.id}, which ${grace ? `keeps working until ${iso(old.revoked_at)}` : 'is revoked now'}.`,
            'Secret (shown once; store it now):',
            `  ${minted.secret}`,
          ].join('\n'),
      };
    }
    default:
      throw new UsageError(`unknown key command ${JSON.stringify(sub)}`, USAGE);
  }
}

export function keyCommand(argv: string[]): number {
  if (wantsHelp(argv)) return printUsage(USAGE);
  const { values, positionals } = parse(argv, FLAGS, USAGE);
  const [sub, ...args] = positionals;
  if (!sub) throw new UsageError('key needs a command: create, list, revoke or rotate', USAGE);
  if (!['create', 'list', 'revoke', 'rotate'].includes(sub)) throw new UsageError(`unknown key command ${JSON.stringify(sub)}`, USAGE);
  const db = openCliDb(values.db as string | undefined);
  try {
    const { doc, human } = run(db, sub, values, args);
    output(Boolean(values.json), doc, human);
    return 0;
  } catch (err) {
    // The API's refusals (unknown site, scope, bad expiry) are the operator's input errors here.
    if (err instanceof ApiError) throw new UsageError(err.message);
    throw err;
  } finally {
    db.close();
  }
}
