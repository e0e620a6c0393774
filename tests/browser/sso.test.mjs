// Single sign-on in the browser: the sign-in dialog offers OpenID Connect
// when the nodes have it, and the whole code flow runs in Chromium against
// a real provider (the npm `oidc-provider` package of tests/oidc, started
// here on loopback): the provider's own login and consent pages, back to
// the board signed in as the provider's user.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { openBoard } from './lib/browser.mjs';
import { REPO } from './lib/cluster.mjs';
import { setUp, tearDown } from './lib/harness.mjs';

const OIDC_DIR = join(REPO, 'tests/oidc');
const CLIENT_ID = 'taskraft-board';
const CLIENT_SECRET = `board-${randomBytes(16).toString('hex')}`;

let env;
let provider;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts the provider, trusting every node's callback; resolves once it listens. */
async function startProvider(port, redirects) {
  if (!existsSync(join(OIDC_DIR, 'node_modules'))) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: OIDC_DIR, stdio: 'inherit' });
  }
  const child = spawn('node', ['provider.mjs', String(port), CLIENT_ID, CLIENT_SECRET, redirects.join(',')], {
    cwd: OIDC_DIR,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  assert.ok(!first.done && JSON.parse(first.value).issuer, 'the provider says it listens');
  return child;
}

before(async () => {
  const port = await freePort();
  env = await setUp({
    env: [
      `TASKRAFT_OIDC_ISSUER=http://127.0.0.1:${port}`,
      `TASKRAFT_OIDC_CLIENT_ID=${CLIENT_ID}`,
      `TASKRAFT_OIDC_CLIENT_SECRET=${CLIENT_SECRET}`,
      'TASKRAFT_OIDC_REDIRECT_URL={url}/auth/oidc/callback',
      'TASKRAFT_OIDC_DEFAULT_ROLE=member',
    ],
  });
  // The nodes read the provider's discovery document when first needed.
  provider = await startProvider(
    port,
    env.cluster.nodes.map((n) => `${n.url}/auth/oidc/callback`),
  );
});

after(async () => {
  provider?.kill();
  await tearDown(env);
});

test('single sign-on from the dialog: the provider signs the person in and the board knows them', async () => {
  const url = env.cluster.nodes[1].url;
  const page = await openBoard(env.browser, url, { login: null });
  try {
    await page.waitForSelector('#login-dialog[open]');
    const sso = page.locator('#login-sso');
    await sso.waitFor({ state: 'visible' });
    await sso.click();
    // The provider's own pages: its login form, then its consent.
    await page.waitForSelector('input[name="login"]');
    await page.fill('input[name="login"]', 'olivia');
    await page.fill('input[name="password"]', 'whatever the provider accepts');
    await page.click('button[type="submit"]');
    await page.waitForSelector('button[type="submit"]');
    await page.click('button[type="submit"]');
    // Back on the board, signed in.
    await page.waitForURL(`${url}/`);
    await page.waitForSelector('#app[data-live="true"]', { timeout: 20000 });
    assert.equal(await page.locator('#login-dialog[open]').count(), 0, 'no sign-in asked');
    assert.match(await page.textContent('#who'), /olivia \(from the provider\)/);
    assert.equal(await page.getAttribute('body', 'data-role'), 'member', 'oidc_default_role');
    // An ordinary session: the page writes with it.
    await page.locator('#board .column[data-status="todo"] .add-open').click();
    const input = page.locator('#board .column[data-status="todo"] .add-title');
    await input.fill('Signed in with single sign-on');
    await input.press('Enter');
    await page.locator('.card', { hasText: 'Signed in with single sign-on' }).waitFor();
    const serverErrors = page.problems.filter((p) => / 5\d\d /.test(p));
    assert.deepEqual(serverErrors, []);
  } finally {
    await page.context().close();
  }
});

test('GET /auth/oidc, open to anyone, says what the dialog reads', async () => {
  const offered = await (await fetch(`${env.cluster.nodes[0].url}/auth/oidc`, { headers: { authorization: 'none' } })).json();
  assert.deepEqual(offered, { enabled: true, login: '/auth/oidc/login' });
});
