// Origin allowlist entries (SPEC section 4): parsing, normalisation and matching.

export interface OriginPattern {
  scheme: 'http' | 'https';
  /** Exact host, or for a wildcard entry the suffix after `*.` */
  host: string;
  /** '' for the scheme's default port. */
  port: string;
  wildcard: boolean;
}

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Second-level names that countries register domains under (`example.co.uk`, `example.com.au`,
 * `example.co.jp`): under a two-letter country code, `*.co.uk` would allow every such site.
 */
const COUNTRY_SECOND_LEVEL = new Set(['ac', 'co', 'com', 'edu', 'go', 'gob', 'gov', 'gv', 'ltd', 'me', 'mil', 'ne', 'net', 'nom', 'or', 'org', 'plc', 'sch']);
/** Hosts where anyone can publish a site of their own under a subdomain (from the Public Suffix List). */
const SHARED_HOSTS = new Set([
  'github.io', 'gitlab.io', 'vercel.app', 'netlify.app', 'pages.dev', 'workers.dev', 'web.app', 'firebaseapp.com',
  'herokuapp.com', 'appspot.com', 'azurewebsites.net', 'azurestaticapps.net', 'cloudfront.net', 'amplifyapp.com',
  'onrender.com', 'fly.dev', 'glitch.me', 'blogspot.com', 'ngrok.io', 'ngrok-free.app', 'surge.sh', 'replit.app',
  's3.amazonaws.com', 'myshopify.com', 'r2.dev', 'deno.dev', 'webflow.io', 'pythonanywhere.com', 'readthedocs.io',
]);

/**
 * True when `*.<host>` would cover other people's sites: a public suffix (a country's `co.uk`,
 * a shared host such as `github.io`) or the tail of an IP address. A heuristic with a short list,
 * not the whole Public Suffix List: it refuses the wildcards owners are most likely to type.
 */
function publicSuffix(host: string): boolean {
  const labels = host.split('.');
  if (labels.every((l) => /^[0-9]+$/.test(l))) return true;
  if (SHARED_HOSTS.has(host)) return true;
  return labels.length === 2 && /^[a-z]{2}$/.test(labels[1]!) && COUNTRY_SECOND_LEVEL.has(labels[0]!);
}

function splitOrigin(text: string): { scheme: string; host: string; port: string } | null {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#@\s]+?)(?::(\d{1,5}))?\/?$/.exec(text);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  let port = m[3] ?? '';
  if (port) {
    const n = Number(port);
    if (n < 1 || n > 65535) return null;
    port = String(n);
    if ((scheme === 'https' && n === 443) || (scheme === 'http' && n === 80)) port = '';
  }
  return { scheme, host: m[2]!.toLowerCase(), port };
}

function validHost(host: string): boolean {
  if (host.startsWith('[') && host.endsWith(']')) return /^\[[0-9a-f:.]+\]$/.test(host);
  if (host.length > 253 || host.endsWith('.')) return false;
  return host.split('.').every((label) => HOST_LABEL.test(label));
}

/**
 * The ASCII form of a host, as browsers send it in `Origin`: an internationalised name in its
 * punycode form (`bücher.example` -> `xn--bcher-kva.example`); null when it has none.
 */
function asciiHost(host: string): string | null {
  if (/^[\x21-\x7e]*$/.test(host)) return host;
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return null;
  }
}

/** Parses an allowlist entry; null when it is not a valid `scheme://host[:port]` or `https://*.domain`. */
export function parseOriginEntry(entry: string): OriginPattern | null {
  if (typeof entry !== 'string' || entry.length > 300) return null;
  const parts = splitOrigin(entry.trim());
  if (!parts) return null;
  let { host } = parts;
  let wildcard = false;
  if (host.startsWith('*.')) {
    wildcard = true;
    host = host.slice(2);
    // A wildcard must name a registrable-looking domain: `*.com` would open every site.
    if (!host.includes('.') && host !== 'localhost') return null;
    // SPEC 4's wildcard is https: a plaintext one would let anyone on the network path of any
    // subdomain speak for the site. `http://*.localhost` stays, for development servers.
    if (parts.scheme !== 'https' && host !== 'localhost') return null;
  }
  const ascii = asciiHost(host);
  if (ascii === null || !validHost(ascii)) return null;
  host = ascii;
  if (wildcard && publicSuffix(host)) return null;
  return { scheme: parts.scheme as 'http' | 'https', host, port: parts.port, wildcard };
}

/** The canonical text of an entry: lowercase, no default port, no trailing slash. */
export function formatOriginPattern(p: OriginPattern): string {
  return `${p.scheme}://${p.wildcard ? '*.' : ''}${p.host}${p.port ? `:${p.port}` : ''}`;
}

/** Normalises an allowlist entry, or returns null when it is invalid. */
export function normalizeOriginEntry(entry: string): string | null {
  const p = parseOriginEntry(entry);
  return p ? formatOriginPattern(p) : null;
}

/** Normalises the value of a request's Origin header; null for `null`, paths or anything malformed. */
export function normalizeRequestOrigin(origin: string): string | null {
  const parts = splitOrigin(origin);
  if (!parts || parts.host.includes('*') || !validHost(parts.host)) return null;
  if (origin.endsWith('/')) return null; // browsers never send a slash; treat as malformed
  return `${parts.scheme}://${parts.host}${parts.port ? `:${parts.port}` : ''}`;
}

/** True when the request origin (as sent by the browser) matches one of the patterns. */
export function originMatches(origin: string, patterns: readonly OriginPattern[]): boolean {
  const normal = normalizeRequestOrigin(origin);
  if (!normal) return false;
  const parts = splitOrigin(normal)!;
  return patterns.some((p) => {
    if (p.scheme !== parts.scheme || p.port !== parts.port) return false;
    if (!p.wildcard) return p.host === parts.host;
    return parts.host.endsWith(`.${p.host}`) && parts.host.length > p.host.length + 1;
  });
}
