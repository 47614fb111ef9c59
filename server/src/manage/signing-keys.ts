// Signing keys of a site (SPEC section 6a): register the owner's P-256 public key, or have one made
// (the private key is returned once and never stored); list; delete. At most two at once, for rotation.
import { CreateSigningKeyBody } from '@parley/shared';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import type { Request, Response, Router } from 'express';
import { siteForKey } from '../auth/scopes.js';
import type { AppContext } from '../context.js';
import { countSigningKeys, deleteSigningKey, insertSigningKey, listSigningKeys, signingKeyToApi } from '../db/signing-keys.js';
import { ApiError, parseOr400 } from '../errors.js';
import { p256PublicKeySpki } from '../identity/verify.js';
import { newId } from '../util.js';
import { authorize, takesNoBody } from './access.js';
import { idempotentCreate } from './idempotent.js';

const MAX_ACTIVE = 2;

export function signingKeysRoutes(ctx: AppContext, router: Router): void {
  const access = (req: Request, res: Response, scope: 'read' | 'admin') => {
    const auth = authorize(ctx, req, res, scope);
    return { auth, site: siteForKey(ctx, auth, String(req.params.sid)) };
  };

  router.get('/sites/:sid/signing-keys', (req, res) => {
    const { site } = access(req, res, 'read');
    res.json({ signing_keys: listSigningKeys(ctx.db, site.id).map(signingKeyToApi), next_cursor: null });
  });

  router.post('/sites/:sid/signing-keys', async (req, res) => {
    const { auth, site } = access(req, res, 'admin');
    const body = parseOr400(CreateSigningKeyBody, req.body);
    let publicPem: string;
    let privatePem: string | undefined;
    if (body.public_key_pem !== undefined) {
      const spki = p256PublicKeySpki(body.public_key_pem);
      if (spki === null) {
        const secret = /PRIVATE KEY-----/.test(body.public_key_pem);
        throw new ApiError('invalid_request', secret
          ? 'public_key_pem holds a private key: send only the public key (BEGIN PUBLIC KEY), and keep the private key on your backend.'
          : 'public_key_pem must be a PEM SPKI public key on the P-256 curve.', {
          issues: [{ path: 'public_key_pem', message: 'must be a P-256 public key in PEM (SPKI)' }],
        });
      }
      publicPem = spki;
    } else {
      const pair = await generateKeyPair('ES256', { extractable: true });
      publicPem = (await exportSPKI(pair.publicKey)).trim();
      privatePem = await exportPKCS8(pair.privateKey);
    }
    // A retry with the same Idempotency-Key gets the first key (and its private key) back, not a second one.
    idempotentCreate(ctx, req, res, auth, `POST /sites/${site.id}:${site.created_at}/signing-keys`, () => {
      if (countSigningKeys(ctx.db, site.id) >= MAX_ACTIVE) {
        throw new ApiError('invalid_request', `A site has at most ${MAX_ACTIVE} signing keys; delete one before adding another.`);
      }
      const row = { id: newId('sgk'), site_id: site.id, public_key_pem: publicPem, created_at: ctx.clock() };
      insertSigningKey(ctx.db, row);
      return { signing_key: signingKeyToApi(row), ...(privatePem ? { private_key_pem: privatePem } : {}) };
    }, { sealed: true });
  });

  router.delete('/sites/:sid/signing-keys/:id', (req, res) => {
    const { site } = access(req, res, 'admin');
    takesNoBody(req);
    if (!deleteSigningKey(ctx.db, String(req.params.id), site.id)) throw new ApiError('not_found', 'No such signing key.');
    res.status(204).end();
  });
}
