// The bell ("Mentions and notifications"), in a real Chromium against a
// real 3-node cluster: A mentions B in a comment on node 1; B, on another
// board on node 2, sees the bell light up live (its name says how many are
// unread, and the page announces it politely), opens the panel, opens the
// notification and lands on the card, on its board, with the bell dimmed.
// Mark all read, the keyboard, a phone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { axeViolations } from './lib/axe.mjs';
import { assertClean, card, openBoard, waitForSeq } from './lib/browser.mjs';
import { eventually, setUp, tearDown } from './lib/harness.mjs';

let env;
let url1;
let url2;

before(async () => {
  env = await setUp();
  [url1, url2] = env.cluster.nodes.map((n) => n.url);
});

after(async () => {
  await tearDown(env);
});

const bellButton = (page) => page.locator('#bell');

describe('notifications', () => {
  test('a mention lights the bell live on another node, and opening it lands on the card', async () => {
    const nia = await api.makeUser(url1, 'nia');
    const res = await api.call(url1, 'POST', '/api/boards', { body: { name: 'Mentions' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const board = res.body;
    const set = await api.call(url1, 'PUT', `/api/boards/${board.id}/members/${nia.id}`, { body: { role: 'member' } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const task = await api.create(url1, { title: 'Check the numbers', board_id: board.id, column_id: board.columns[0].id });

    const a = await openBoard(env.browser, url1, { query: `?board=${board.id}` });
    // B looks at the default board, on another node.
    const b = await openBoard(env.browser, url2, { login: nia });
    try {
      await waitForSeq(a, task.seq);
      await bellButton(b).waitFor();
      assert.equal(await bellButton(b).getAttribute('aria-label'), 'Notifications, none unread');

      // A mentions B in a comment, through the dialog.
      await card(a, task.id).click();
      await a.locator('#task-dialog').waitFor();
      await a.locator('#comments-status').waitFor({ state: 'hidden' });
      await a.locator('#comment-body').fill('@nia can you check these numbers?');
      const t0 = Date.now();
      await a.click('#comment-send');

      // B's bell lights up, live.
      await b.locator('#bell.lit').waitFor({ timeout: 5000 });
      const liveMs = Date.now() - t0;
      assert.equal(await bellButton(b).getAttribute('aria-label'), 'Notifications, 1 unread');
      assert.equal(await b.textContent('#bell .bell-count'), '1');
      await eventually(async () => /New notification: admin mentioned you/.test(await b.textContent('#announcer')), {
        what: 'a polite announcement',
      });
      // A's does not.
      assert.equal(await a.locator('#bell.lit').count(), 0, 'the author is not notified');

      // B opens the panel with the keyboard: the first notification has the focus.
      await bellButton(b).focus();
      await b.keyboard.press('Enter');
      await b.locator('#bell-panel').waitFor();
      assert.equal(await bellButton(b).getAttribute('aria-expanded'), 'true');
      const item = b.locator('#bell-list .bell-open').first();
      assert.match(await item.textContent(), /admin mentioned you in a comment on “Check the numbers”/);
      assert.match(await item.textContent(), /@nia can you check these numbers\?/);
      assert.equal(await b.evaluate(() => document.activeElement?.classList.contains('bell-open')), true);
      assert.deepEqual(await axeViolations(b), [], 'the open panel passes axe');
      // Escape closes it and gives the focus back to the bell.
      await b.keyboard.press('Escape');
      await b.locator('#bell-panel').waitFor({ state: 'hidden' });
      assert.equal(await b.evaluate(() => document.activeElement?.id), 'bell');

      // Opening the notification lands on the card, on its board.
      await bellButton(b).click();
      await b.locator('#bell-list .bell-open').first().click();
      await b.locator('#task-dialog[open]').waitFor({ timeout: 10000 });
      assert.equal(await b.inputValue('#task-title'), 'Check the numbers');
      assert.equal(await b.evaluate(() => document.getElementById('app').dataset.board), board.id);
      await eventually(async () => (await bellButton(b).getAttribute('aria-label')) === 'Notifications, none unread', {
        what: 'the bell dims once read',
      });
      assert.equal(await b.locator('#bell.lit').count(), 0);
      console.log(`# a mention reached the bell on another node in ${liveMs} ms`);
      assertClean(a);
      assertClean(b);
    } finally {
      await a.context().close();
      await b.context().close();
    }
  });

  test('mark all read, on a phone', async () => {
    const oli = await api.makeUser(url1, 'oli');
    for (const text of ['first @oli', 'second @oli']) {
      const t = await api.create(url1, { title: `Card ${text}`, description: `ping ${text}` });
      assert.ok(t.id);
    }
    const page = await openBoard(env.browser, url2, { login: oli, phone: true });
    try {
      await eventually(async () => (await bellButton(page).getAttribute('aria-label')) === 'Notifications, 2 unread', {
        what: 'two unread',
      });
      await bellButton(page).tap();
      await page.locator('#bell-panel').waitFor();
      assert.equal(await page.locator('#bell-list .bell-item.unread').count(), 2);
      const overflow = await page.evaluate(() => {
        const panel = document.getElementById('bell-panel').getBoundingClientRect();
        return Math.max(0, panel.right - window.innerWidth, -panel.left);
      });
      assert.ok(overflow <= 1, `the panel fits the phone (overflow ${overflow}px)`);
      await page.getByRole('button', { name: 'Mark all read' }).tap();
      await eventually(async () => (await page.locator('#bell-list .bell-item.unread').count()) === 0, { what: 'all read' });
      assert.equal(await bellButton(page).getAttribute('aria-label'), 'Notifications, none unread');
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });
});
