// Shared set-up for the test files: one cluster and one browser per file.
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, setDefaultLogin } from './browser.mjs';
import { startCluster } from './cluster.mjs';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const ARTIFACTS = join(REPO, 'test-artifacts');

export async function setUp(options = {}) {
  await mkdir(ARTIFACTS, { recursive: true });
  const cluster = await startCluster(options);
  setDefaultLogin(cluster.admin ?? null);
  let browser;
  try {
    browser = await launch();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return { cluster, browser };
}

export async function tearDown(env) {
  if (!env) return;
  await env.browser?.close().catch(() => {});
  await env.cluster?.stop();
}

/** Poll `fn` until it returns a truthy value (or throw after `timeout` ms). */
export async function eventually(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last?.message ?? JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Drag a card with the mouse (pointer events) to (x, y). */
export async function dragTo(page, from, x, y) {
  await from.scrollIntoViewIfNeeded();
  const a = await from.boundingBox();
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move(a.x + a.width / 2 + 8, a.y + a.height / 2 + 8, { steps: 2 });
  await page.mouse.move(x, y, { steps: 12 });
  await page.mouse.up();
}
