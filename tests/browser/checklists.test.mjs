// Checklists on a card, in a real Chromium against a real 3-node cluster:
// a checklist and its items added from the card dialog, an item ticked
// with the keyboard only (Tab to it, Space), another person on another
// node seeing the tick live, and the card's ☑ 1/2 on both boards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { LIVE_MS, assertClean, card, openBoard, waitForSeq } from './lib/browser.mjs';
import { setUp, tearDown } from './lib/harness.mjs';

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

async function openCard(page, id) {
  await card(page, id).click();
  await page.locator('#task-dialog').waitFor();
}

const item = (page, text) => page.locator('#checklist-lists .checklist-item', { hasText: text });
const badge = (page, id) => card(page, id).locator('.checklist-badge');

describe('checklists', () => {
  test('a checklist ticked with the keyboard, seen live on another node, 1/2 on the card', async () => {
    const kim = await api.makeUser(url1, 'kim');
    const made = await api.call(url1, 'POST', '/api/boards', { body: { name: 'Lists' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const board = made.body;
    const set = await api.call(url1, 'PUT', `/api/boards/${board.id}/members/${kim.id}`, { body: { role: 'member' } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const task = await api.create(url1, { title: 'Ship', board_id: board.id, column_id: board.columns[0].id });
    const a = await openBoard(env.browser, url1, { query: `?board=${board.id}` });
    const b = await openBoard(env.browser, url2, { query: `?board=${board.id}`, login: kim });
    try {
      await waitForSeq(a, task.seq);
      await waitForSeq(b, task.seq);
      await openCard(a, task.id);
      await openCard(b, task.id);

      // A adds a checklist and two items with the keyboard (Enter).
      await a.locator('#checklist-title').fill('Launch "day" 🚀');
      await a.locator('#checklist-title').press('Enter');
      const add = a.getByRole('textbox', { name: 'Add an item to Launch "day" 🚀' });
      await add.waitFor({ timeout: LIVE_MS });
      await add.fill('Write it');
      await add.press('Enter');
      await item(a, 'Write it').waitFor({ timeout: LIVE_MS });
      await add.fill('Review <b>it</b> \\ ok');
      await add.press('Enter');
      await item(a, 'Review <b>it</b>').waitFor({ timeout: LIVE_MS });
      assert.equal(await a.locator('#checklist-lists b').count(), 0, 'hostile text stays text');
      await item(b, 'Review <b>it</b>').waitFor({ timeout: LIVE_MS });

      // B ticks "Write it" with the keyboard only: focus moves by Tab to
      // the checkbox, Space ticks it.
      const box = b.getByRole('checkbox', { name: 'Write it' });
      await b.getByRole('textbox', { name: /^Add an item to/ }).focus();
      for (let i = 0; i < 40; i++) {
        if (await box.evaluate((el) => el === document.activeElement)) break;
        await b.keyboard.press('Shift+Tab');
      }
      assert.ok(await box.evaluate((el) => el === document.activeElement), 'the checkbox is reached with the keyboard');
      await b.keyboard.press('Space');

      // A sees the tick live, and both cards say 1/2.
      await a.getByRole('checkbox', { name: 'Write it' }).and(a.locator(':checked')).waitFor({ timeout: LIVE_MS });
      await a.locator('.checklist-count', { hasText: '1/2' }).waitFor({ timeout: LIVE_MS });
      for (const page of [a, b]) {
        await badge(page, task.id).filter({ hasText: '1/2' }).waitFor({ timeout: LIVE_MS });
      }

      // Alt+↓ moves the focused item down, for everyone.
      await box.focus();
      await b.keyboard.press('Alt+ArrowDown');
      await a.locator('#checklist-lists .checklist-item').last().filter({ hasText: 'Write it' }).waitFor({ timeout: LIVE_MS });

      // Renamed from the keyboard: B sees the new title.
      await a.getByRole('button', { name: 'Rename checklist Launch "day" 🚀' }).click();
      const rename = a.getByRole('textbox', { name: /^New title for/ });
      await rename.fill('Launch night');
      await rename.press('Enter');
      await b.locator('#checklist-lists h4', { hasText: 'Launch night' }).waitFor({ timeout: LIVE_MS });

      // A phone-width window keeps the list usable.
      await b.setViewportSize({ width: 360, height: 740 });
      const width = await b.evaluate(() => document.querySelector('#task-checklists').scrollWidth <= window.innerWidth);
      assert.ok(width, 'no horizontal overflow at phone width');
      assertClean(a);
      assertClean(b);
    } finally {
      await a.context().close();
      await b.context().close();
    }
  });
});
