// Idempotency-Key on the management API's POSTs, with the widget's rules (SPEC section 6): within 24
// hours the same key and body from the same secret key replay the first 201 (no second agent reply,
// key or site); the same key with another body is 409 idempotency_conflict. The lookup, the write and
// the stored response are one IMMEDIATE transaction. A response that holds a secret (a new key, a new
// site's publishable keys, a generated private key) is stored sealed, as the widget's visitor tokens are.
import type { Request, Response } from 'express';
import type { Auth } from '../auth/authenticate.js';
import type { AppContext } from '../context.js';
import { findReplay, idempotencyOf, rememberResponse, type StoredResponse } from '../http/idempotency.js';

/**
 * Runs `write` (synchronous: its rows and the stored response commit together) under the request's
 * Idempotency-Key, if it has one, and sends its 201, or the first one again. `route` names the
 * operation and the thing it acts on (a ticket or key id); the calling key is part of the scope, so
 * another key of the workspace, with other rights, never receives this one's response. Returns false
 * for a replay (nothing was written).
 */
export function idempotentCreate(
  ctx: AppContext, req: Request, res: Response, auth: Auth, route: string, write: () => unknown, opts: { sealed: boolean },
): boolean {
  const idem = idempotencyOf(req, `manage:${auth.key.id}:${route}`);
  const { out, written } = ctx.db.transaction((): { out: StoredResponse; written: boolean } => {
    const now = ctx.clock();
    const replay = idem && findReplay(ctx.db, idem, now);
    if (replay) return { out: replay, written: false };
    const stored = { status: 201, body: JSON.stringify(write()) };
    if (idem) rememberResponse(ctx.db, idem, stored, now, opts.sealed);
    return { out: stored, written: true };
  }).immediate();
  res.status(out.status).setHeader('Content-Type', 'application/json; charset=utf-8');
  res.send(out.body);
  return written;
}
