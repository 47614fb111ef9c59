// Verifying signed user tokens (SPEC section 6a) with jose: ES256 only, kid naming one of the
// site's signing keys, bounded claims. Each failure says which check failed, never the token.
import { createPublicKey } from 'node:crypto';
import { decodeProtectedHeader, errors, importSPKI, jwtVerify } from 'jose';
import type { AppContext } from '../context.js';
import { MAX_USER_TOKEN, withinChars } from '@parley/shared';
import { findSigningKey, type SigningKeyRow } from '../db/signing-keys.js';
import type { SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';

export interface VerifiedUser {
  id: string;
  name: string | null;
  email: string | null;
}

const SKEW_SECONDS = 60;
const MAX_LIFETIME_SECONDS = 24 * 60 * 60;

type PublicKey = Awaited<ReturnType<typeof importSPKI>>;
const keyCache = new Map<string, { pem: string; key: Promise<PublicKey> }>();

function publicKey(row: SigningKeyRow): Promise<PublicKey> {
  const hit = keyCache.get(row.id);
  if (hit && hit.pem === row.public_key_pem) return hit.key;
  const key = importSPKI(row.public_key_pem, 'ES256');
  if (keyCache.size > 10_000) keyCache.clear();
  keyCache.set(row.id, { pem: row.public_key_pem, key });
  return key;
}

const PUBLIC_KEY_PEM = /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----$/;

/**
 * The canonical SPKI PEM of `pem` when it is exactly one P-256 public key, else null. The PEM label
 * is checked first: Node derives a public key from a private one, so a pasted private key would
 * otherwise be stored (and listed) as if it were public.
 */
export function p256PublicKeySpki(pem: string): string | null {
  const text = pem.trim();
  if (!PUBLIC_KEY_PEM.test(text)) return null;
  try {
    const key = createPublicKey({ key: text, format: 'pem' });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return null;
    return String(key.export({ type: 'spki', format: 'pem' })).trim();
  } catch {
    return null;
  }
}

/** True when `pem` is an SPKI public key on the P-256 curve. */
export function isP256PublicKeyPem(pem: string): boolean {
  return p256PublicKeySpki(pem) !== null;
}

const refuse = (why: string): ApiError => new ApiError('invalid_user_token', `The user token was refused: ${why}.`);

/** Three base64url parts joined by dots (RFC 7515's compact serialization); an empty signature is `alg: none`'s, refused by its alg. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * An optional string claim (`name`, `email`): absent, `null` or an empty string all mean "none",
 * since a backend signs what its user row holds; otherwise a string of at most `max` characters
 * (counted as a reader counts them, as every other name is).
 */
function optionalClaim(payload: Record<string, unknown>, claim: 'name' | 'email', max: number): string | null {
  const v = payload[claim];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw refuse(`claim ${claim} must be a string or null`);
  const text = v.trim();
  if (!withinChars(text, max)) throw refuse(`claim ${claim} is longer than ${max} characters`);
  return text === '' ? null : text;
}

/** Verifies `token` for `site`; throws 401 invalid_user_token naming the failed check. */
export async function verifyUserToken(ctx: AppContext, site: SiteRow, token: string): Promise<VerifiedUser> {
  if (typeof token !== 'string') throw refuse('it is not a compact JWS');
  if (token.length > MAX_USER_TOKEN) throw refuse(`it is longer than ${MAX_USER_TOKEN} characters`);
  if (!COMPACT_JWS.test(token)) throw refuse('it is not a compact JWS (three base64url parts joined by dots, nothing around them)');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw refuse('its header cannot be decoded');
  }
  if (header.alg !== 'ES256') throw refuse(`wrong alg (only ES256 is accepted)`);
  if (typeof header.kid !== 'string' || header.kid.length === 0) throw refuse('no kid in the header');
  const row = findSigningKey(ctx.db, header.kid, site.id);
  if (!row) throw refuse('unknown kid');
  const now = ctx.clock();
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, await publicKey(row), {
      algorithms: ['ES256'],
      clockTolerance: SKEW_SECONDS,
      currentDate: new Date(now),
      requiredClaims: ['sub', 'iat', 'exp'],
    }));
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw refuse('expired');
    if (err instanceof errors.JWSSignatureVerificationFailed) throw refuse('bad signature');
    if (err instanceof errors.JWTClaimValidationFailed) {
      throw refuse(err.claim === 'nbf' ? 'not yet valid' : `claim ${err.claim} is invalid`);
    }
    if (err instanceof errors.JOSEAlgNotAllowed) throw refuse('wrong alg (only ES256 is accepted)');
    throw refuse('it cannot be verified');
  }
  const { sub, iat, exp } = payload;
  if (typeof sub !== 'string' || sub.length < 1 || !withinChars(sub, 255)) throw refuse('claim sub out of bounds (1 to 255 characters)');
  if (typeof iat !== 'number' || typeof exp !== 'number') throw refuse('claims iat and exp must be numbers');
  if (iat > now / 1000 + SKEW_SECONDS) throw refuse('not yet valid (iat is in the future)');
  if (exp - iat > MAX_LIFETIME_SECONDS) throw refuse('lifetime over 24 hours (exp - iat)');
  return { id: sub, name: optionalClaim(payload, 'name', 255), email: optionalClaim(payload, 'email', 254) };
}
