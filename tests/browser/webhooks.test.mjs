// A board's outgoing webhooks in the board settings, in a real Chromium
// against a real 3-node cluster: an admin adds one with the keyboard
// alone, reads its secret once (selected, to copy), sees it listed (and
// the server has it), a bad URL is refused with the server's reason, and
// Remove takes it away; the panel passes axe. A member of the board sees
// no Webhooks section.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { axeViolations } from './lib/axe.mjs';
import { openBoard } from './lib/browser.mjs';
import { eventually, setUp, tearDown } from './lib/harness.mjs';

let env;
let url1;

before(async () => {
  env = await setUp();
  [url1] = env.cluster.nodes.map((n) => n.url);
});

after(async () => {
  await tearDown(env);
});

const announced = (page, text) =>
  page.waitForFunction((t) => document.getElementById('announcer').textContent === t, text);

describe('webhooks', () => {
  test('an admin adds a webhook with the keyboard, reads its secret once and removes it', async () => {
    const res = await api.call(url1, 'POST', '/api/boards', { body: { name: 'Hooked' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const b = res.body;
    const hooks = async () => (await api.call(url1, 'GET', `/api/boards/${b.id}/webhooks`)).body.webhooks;
    const page = await openBoard(env.browser, url1, { query: `?board=${b.id}` });
    try {
      await page.locator('#board-settings-open').focus();
      await page.keyboard.press('Enter');
      await page.locator('#board-webhooks').waitFor();
      await page.locator('#webhooks-note', { hasText: 'No webhooks' }).waitFor();

      // A URL the server refuses: its reason, and the field to fix.
      await page.locator('#webhook-url').focus();
      await page.keyboard.type('ftp://chat.example.com/hook');
      await page.keyboard.press('Enter');
      await page.locator('#webhooks-error', { hasText: 'must be an http or https URL' }).waitFor();
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'webhook-url');
      assert.deepEqual(await hooks(), []);

      // The keyboard alone: URL, Tab, description, Tab, Enter on Add.
      await page.fill('#webhook-url', '');
      await page.keyboard.type('https://chat.example.com/hooks/T0/B0');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'webhook-description');
      await page.keyboard.type('Team chat');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'webhook-add-go');
      await page.keyboard.press('Enter');
      await announced(page, 'Added a webhook to chat.example.com. Copy its secret now: it is not shown again.');
      const row = page.locator('#webhooks-list .webhook', { hasText: 'https://chat.example.com/hooks/T0/B0' });
      await row.waitFor();
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'webhook-secret-value', 'the secret, to copy');
      assert.equal(await page.locator('#webhook-secret-value').isVisible(), true, 'the secret is shown');
      const secret = await page.inputValue('#webhook-secret-value');
      assert.match(secret, /^[0-9a-f]{64}$/);
      const listed = await hooks();
      assert.equal(listed.length, 1);
      assert.equal(listed[0].description, 'Team chat');
      assert.equal(JSON.stringify(listed).includes(secret), false, 'the list never repeats the secret');
      assert.deepEqual(await axeViolations(page), [], 'axe: the settings with a webhook and its secret');

      // Closed and opened again: the secret is gone from the page. The
      // list is read again; until it arrives the last one shows, and a
      // keyboard user already on its Remove stays there when the new list
      // replaces it (focus had dropped to the page, and Enter did nothing).
      let release;
      const held = new Promise((resolve) => {
        release = resolve;
      });
      await page.route(`**/api/boards/${b.id}/webhooks`, async (route) => {
        await held;
        await route.continue();
      });
      await page.locator('#board-settings-cancel').click();
      await page.locator('#board-settings-open').click();
      await row.waitFor();
      assert.equal(await page.locator('#webhook-secret').isVisible(), false);
      await row.locator('.webhook-remove').focus();
      await row.evaluate((li) => {
        li.dataset.stale = 'yes';
      });
      const loaded = page.waitForResponse(`**/api/boards/${b.id}/webhooks`);
      release();
      await loaded;
      await page.unroute(`**/api/boards/${b.id}/webhooks`);
      await eventually(
        async () =>
          page.evaluate(() => {
            const focused = document.activeElement;
            const li = focused?.closest('.webhook');
            return focused.classList.contains('webhook-remove') && li !== null && li.dataset.stale === undefined;
          }),
        { what: "focus on the new list's Remove" },
      );

      // Remove, from the keyboard.
      await page.keyboard.press('Enter');
      await announced(page, 'Removed the webhook to chat.example.com.');
      await eventually(async () => (await hooks()).length === 0, { what: 'the webhook removed' });
      assert.equal(await page.locator('#webhooks-list .webhook').count(), 0);
      assert.deepEqual(page.problems.filter((p) => !p.includes('status of 400 ')), [], 'no errors in the page');
    } finally {
      await page.context().close();
    }
  });

  test('a member of the board sees no webhooks', async () => {
    const res = await api.call(url1, 'POST', '/api/boards', { body: { name: 'Shared' } });
    const b = res.body;
    const user = await api.call(url1, 'POST', '/api/users', {
      body: { username: 'mo', display_name: 'mo', password: 'mo-password-1', role: 'member' },
    });
    assert.equal(user.status, 201, JSON.stringify(user.body));
    const id = user.body.id ?? user.body.user?.id;
    const put = await api.call(url1, 'PUT', `/api/boards/${b.id}/members/${id}`, { body: { role: 'member' } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const page = await openBoard(env.browser, url1, {
      query: `?board=${b.id}`,
      login: { username: 'mo', password: 'mo-password-1' },
    });
    try {
      await page.locator('#board-settings-open').click();
      await page.locator('#members-list .member').first().waitFor();
      assert.equal(await page.locator('#board-webhooks').isVisible(), false);
    } finally {
      await page.context().close();
    }
  });
});
