// The README's identity example must work as printed: its jose snippet, run as written against a
// real server with a signing key made through the API, signs a token that opens a ticket for the user.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket } from '../test-helpers/widget.js';

const here = dirname(fileURLToPath(import.meta.url));
let t: TestServer;
let fx: Fixture;
beforeAll(async () => {
  t = await startTestServer();
  fx = seed(t.ctx, { widget: { require_identity: true } });
});
afterAll(() => t.close());

it('the README\'s jose example signs a token that Parley accepts', async () => {
  const readme = readFileSync(join(here, '../../../README.md'), 'utf8');
  const snippet = /```js\n(\/\/ npm install jose\n[\s\S]*?)```/.exec(readme)?.[1];
  expect(snippet, 'the README has the jose example').toBeTruthy();
  const made = await call(t.base, 'POST', `/v1/sites/${fx.serviceId}/signing-keys`, { key: fx.sk.live, body: {} });
  expect(made.status).toBe(201);
  process.env.PARLEY_SIGNING_KEY_ID = made.json.signing_key.id;
  process.env.PARLEY_SIGNING_KEY_PEM = made.json.private_key_pem;
  // Written beside this test so that `jose` resolves from the server package, as on a backend.
  const file = join(here, `.readme-snippet-${process.pid}.mjs`);
  writeFileSync(file, snippet!);
  try {
    const mod = (await import(pathToFileURL(file).href)) as { parleyUserToken(u: object): Promise<string> };
    const token = await mod.parleyUserToken({ id: 42, name: 'Ada', email: 'ada@example.com' });
    const ticket = await createTicket(t.base, fx, { message: 'hello', user_token: token });
    expect((ticket.ticket as unknown as { user: unknown }).user).toEqual({ id: '42', name: 'Ada', email: 'ada@example.com' });
  } finally {
    rmSync(file, { force: true });
    delete process.env.PARLEY_SIGNING_KEY_ID;
    delete process.env.PARLEY_SIGNING_KEY_PEM;
  }
});
