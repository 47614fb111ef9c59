// Reads and checks the attributes of the widget's own <script> tag (SPEC section 9).

export interface TagOptions {
  key: string;
  serviceId: string;
  /** API base URL without a trailing slash. */
  api: string;
  userToken?: string;
  open: boolean;
  zIndex?: number;
}

const SERVICE_ID = /^[a-z0-9][a-z0-9-]{1,62}$/;
// The shape of SPEC section 2 only: the checksum is the server's to verify (parseKey in
// @parley/shared), and its BigInt base62 code would cost the bundle more than it saves anyone.
const PUBLISHABLE = /^pk_(live|test)_[0-9A-Za-z]{49}$/;
const TRUE = ['', 'true', '1', 'open', 'data-open'];
const FALSE = ['false', '0'];

/**
 * The widget's script element: document.currentScript, else (a loader ran it, or currentScript was
 * already gone) the tag that looks most like ours, so a tag missing attributes is still reported.
 */
export function findScript(doc: Document, current: Element | null): HTMLScriptElement | null {
  const own = current?.tagName === 'SCRIPT' ? (current as HTMLScriptElement) : null;
  if (own && (own.hasAttribute('data-service-id') || own.hasAttribute('data-key'))) return own;
  return (
    doc.querySelector<HTMLScriptElement>('script[data-service-id][src*="widget"]') ??
    doc.querySelector<HTMLScriptElement>('script[data-key][src*="widget"]') ??
    own ??
    doc.querySelector<HTMLScriptElement>('script[src$="/widget.js"]')
  );
}

/** Options from the tag, or the list of problems (each names its attribute) when it is unusable. */
export function readTag(script: HTMLScriptElement): TagOptions | { problems: string[] } {
  const problems: string[] = [];
  const attr = (name: string) => script.getAttribute(name);

  const key = attr('data-key')?.trim() ?? '';
  if (!key) problems.push('data-key is missing: set it to the site\'s publishable key (pk_...)');
  else if (key.startsWith('sk_'))
    problems.push('data-key holds a secret key (sk_...), now exposed: revoke it and use the site\'s publishable key (pk_...)');
  else if (!PUBLISHABLE.test(key)) problems.push('data-key is not a valid publishable key (pk_live_... or pk_test_..., 57 characters): copy it again');

  const serviceId = attr('data-service-id')?.trim() ?? '';
  if (!serviceId) problems.push('data-service-id is missing: set it to the site\'s service id');
  else if (!SERVICE_ID.test(serviceId)) problems.push(`data-service-id "${serviceId}" is not a service id (a-z, 0-9 and -)`);

  let api = '';
  const rawApi = attr('data-api')?.trim();
  try {
    const url = new URL(rawApi || script.src || 'x:', script.ownerDocument.baseURI);
    if (!/^https?:$/.test(url.protocol)) throw 0;
    api = rawApi ? url.href.replace(/\/+$/, '') : url.origin;
  } catch {
    problems.push(rawApi ? `data-api "${rawApi}" is not an http(s) URL` : 'data-api is missing and the script has no http(s) src');
  }

  const userToken = attr('data-user-token')?.trim() || undefined;

  const rawOpen = attr('data-open');
  const openValue = rawOpen?.trim().toLowerCase();
  let open = false;
  if (openValue !== undefined) {
    if (TRUE.includes(openValue)) open = true;
    else if (!FALSE.includes(openValue)) problems.push(`data-open "${rawOpen}" must be "true" or "false"`);
  }

  const rawZ = attr('data-z-index');
  // Up to ten digits, so a number is always whole: only the range is left to check.
  const zIndex = rawZ === null ? undefined : Number(rawZ);
  if (rawZ !== null && !(/^-?\d{1,10}$/.test(rawZ.trim()) && Math.abs(zIndex!) <= 2147483647)) problems.push(`data-z-index "${rawZ}" must be a whole number`);

  if (problems.length) return { problems };
  return { key, serviceId, api, userToken, open, zIndex };
}
