// Environment variables and flags -> one typed, frozen config, validated once; flags beat the environment.
import express from 'express';
import { z } from 'zod';

/** Digits only (no `1e3`, `0x10` or blanks, which Number() would accept), within bounds. */
const wholeNumber = (min: number, max: number) =>
  z.string().regex(/^\d+$/).transform(Number).pipe(z.number().min(min).max(max));
const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const Schema = z.object({
  db: z.string().min(1),
  port: wholeNumber(0, 65535),
  host: z.string().min(1),
  trustProxy: z.union([z.boolean(), z.number().int().min(0), z.string().min(1).refine(isTrustList)]),
  logLevel: LogLevel,
  durability: z.enum(['normal', 'full']),
  workers: wholeNumber(1, 64),
});

/** What each field accepts, for the one-line error (zod's own messages name types, not values). */
const EXPECTED: Record<keyof z.infer<typeof Schema>, string> = {
  db: 'a file path',
  port: 'a whole number from 0 to 65535',
  host: 'a host name or address',
  trustProxy: 'true, false, a hop count or a list of addresses',
  logLevel: `one of ${LogLevel.options.join(', ')}`,
  durability: 'normal or full',
  workers: 'a whole number from 1 to 64',
};
export type Config = Readonly<z.infer<typeof Schema>>;

/** Which variable or flag feeds each field, for error messages. */
const SOURCES: Record<keyof z.infer<typeof Schema>, [env: string, flag: string]> = {
  db: ['PARLEY_DB', '--db'],
  port: ['PARLEY_PORT', '--port'],
  host: ['PARLEY_HOST', '--host'],
  trustProxy: ['PARLEY_TRUST_PROXY', '--trust-proxy'],
  logLevel: ['PARLEY_LOG_LEVEL', '--log-level'],
  durability: ['PARLEY_DURABILITY', '--durability'],
  workers: ['PARLEY_WORKERS', '--workers'],
};

export class ConfigError extends Error {}

/**
 * Whether Express accepts `v` as a trust-proxy address list. Asked of Express itself, so the config
 * refuses exactly what the app would throw on at start-up (`invalid IP address: yes`, exit 1,
 * naming no variable).
 */
function isTrustList(v: string): boolean {
  try {
    express().set('trust proxy', v);
    return true;
  } catch {
    return false;
  }
}

function parseTrustProxy(v: string): boolean | number | string {
  if (v === 'true') return true;
  if (v === 'false' || v === '') return false;
  if (/^\d+$/.test(v)) return Number(v);
  return v; // a list of addresses or subnets, as Express accepts
}

/** Builds the config from the environment and parsed flags; throws ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv, flags: Partial<Record<keyof Config, string>> = {}): Config {
  const pick = (field: keyof Config, fallback: string): { value: string; from: string } => {
    const [envName, flag] = SOURCES[field];
    if (flags[field] !== undefined) return { value: flags[field]!, from: flag };
    if (env[envName] !== undefined && env[envName] !== '') return { value: env[envName]!, from: envName };
    return { value: fallback, from: envName };
  };
  const raw = {
    db: pick('db', './data/parley.db'),
    port: pick('port', '8787'),
    host: pick('host', '127.0.0.1'),
    trustProxy: pick('trustProxy', 'false'),
    logLevel: pick('logLevel', 'info'),
    durability: pick('durability', 'normal'),
    workers: pick('workers', '1'),
  };
  const input = Object.fromEntries(
    Object.entries(raw).map(([k, { value }]) => [k, k === 'trustProxy' ? parseTrustProxy(value) : value]),
  );
  const parsed = Schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path[0] as keyof Config;
    const source = raw[field];
    const shown = JSON.stringify(source.value).slice(0, 60);
    throw new ConfigError(`invalid ${source.from}=${shown}: expected ${EXPECTED[field]}`);
  }
  return Object.freeze(parsed.data);
}
