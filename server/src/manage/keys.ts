// Keys of the management API (admin scope): create, list (metadata only), revoke, rotate. The rules
// against escalation are in services/keys.ts, shared with the CLI.
import { CreateKeyBody, PageQuery, RotateKeyBody } from '@parley/shared';
import type { Router } from 'express';
import type { AppContext } from '../context.js';
import { keyToApi } from '../db/keys.js';
import { encodeCursor } from '../db/cursors.js';
import { parseOr400 } from '../errors.js';
import { callerFromAuth, createKey, listKeysFor, revokeKeyNow, rotateKey } from '../services/keys.js';
import { authorize, cursorPosition, parseQuery, takesNoBody } from './access.js';
import { idempotentCreate } from './idempotent.js';

export function keysRoutes(ctx: AppContext, router: Router): void {

  router.post('/keys', (req, res) => {
    const auth = authorize(ctx, req, res, 'admin');
    const body = parseOr400(CreateKeyBody, req.body);
    idempotentCreate(ctx, req, res, auth, 'POST /keys', () => {
      const minted = createKey(ctx.db, callerFromAuth(auth), body, ctx.clock());
      return { key: keyToApi(minted.row, minted.secret) };
    }, { sealed: true });
  });

  router.get('/keys', (req, res) => {
    const auth = authorize(ctx, req, res, 'admin', { takesQuery: true });
    const q = parseQuery(PageQuery, req);
    const scope = `keys:${auth.key.workspace_id}:${auth.environment}`;
    const { keys, next } = listKeysFor(ctx.db, callerFromAuth(auth), cursorPosition(ctx, scope, q.cursor) ?? 0, q.limit ?? 50);
    res.json({ keys: keys.map((k) => keyToApi(k)), next_cursor: next === null ? null : encodeCursor(ctx.db, scope, next) });
  });

  router.delete('/keys/:id', (req, res) => {
    const auth = authorize(ctx, req, res, 'admin');
    takesNoBody(req);
    const row = revokeKeyNow(ctx.db, callerFromAuth(auth), req.params.id, ctx.clock());
    res.json({ key: keyToApi(row) });
  });

  router.post('/keys/:id/rotate', (req, res) => {
    const auth = authorize(ctx, req, res, 'admin');
    const body = parseOr400(RotateKeyBody, req.body);
    idempotentCreate(ctx, req, res, auth, `POST /keys/${req.params.id}/rotate`, () => {
      const { key } = rotateKey(ctx.db, callerFromAuth(auth), req.params.id, body.grace_seconds ?? 0, ctx.clock());
      return { key: keyToApi(key.row, key.secret) };
    }, { sealed: true });
  });

}
