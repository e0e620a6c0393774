// "This board on <date>": the board as it was at a past time, read-only,
// from GET /api/tasks?as_of=, reached and left with the keyboard.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { card, openBoard, waitForSeq } from './lib/browser.mjs';
import { eventually, setUp, tearDown } from './lib/harness.mjs';

let env;
let url;

before(async () => {
  env = await setUp();
  url = env.cluster.nodes[0].url;
});

after(async () => {
  await tearDown(env);
});

describe('the board on a past date', () => {
  test('shows the cards as they were, offers no writes, and goes back with Escape', async () => {
    const early = await api.create(url, { title: 'Written before', labels: ['old'] });
    // A whole second after it (the field has second precision), then changes.
    const then = Math.ceil(Date.parse(early.created_at) / 1000) * 1000;
    while (Date.now() < then + 300) await new Promise((r) => setTimeout(r, 50));
    await api.create(url, { title: 'Written after' });
    const moved = await api.patch(url, early.id, { status: 'done' });

    const page = await openBoard(env.browser, url);
    try {
      await waitForSeq(page, moved.seq);
      await card(page, early.id).waitFor();
      const local = await page.evaluate((ms) => {
        const d = new Date(ms);
        const pad = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      }, then);
      // The d shortcut opens the view, focus on its date field.
      await page.locator('#board').focus();
      await page.keyboard.press('d');
      await eventually(() => page.evaluate(() => document.activeElement?.id === 'past-time'), { what: 'focus on the date' });
      await page.locator('#past-time').fill(local);
      await page.locator('#past-time').press('Enter');

      const past = page.locator('#past');
      await past.waitFor();
      await eventually(async () => /1 card, as of event/.test(await page.locator('#past-status').textContent()), { what: 'the past board' });
      assert.equal(await page.locator('#board').isHidden(), true, 'the live board is out of reach');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'past-title', 'focus on the view');
      const todo = past.locator('.past-column[data-status="todo"] .past-card');
      assert.deepEqual(await todo.locator('.past-card-title').allTextContents(), ['Written before']);
      assert.equal(await past.locator('.past-column[data-status="done"] .past-card').count(), 0, 'not yet moved');
      assert.equal(await past.getByText('Written after').count(), 0, 'not yet written');
      // Read-only: nothing on the cards can be pressed, typed or dragged; shortcuts do nothing.
      const controls = 'button, input, select, textarea, a, [tabindex], [contenteditable], [draggable="true"]';
      assert.equal(await page.locator('#past-columns').locator(controls).count(), 0, 'no control on the cards');
      await page.locator('#past-title').focus();
      await page.keyboard.press('n');
      assert.equal(await page.locator('#board').isHidden(), true, 'n opened nothing');
      assert.equal(await past.isVisible(), true);

      await page.keyboard.press('Escape');
      await eventually(() => past.isHidden(), { what: 'the live board back' });
      assert.equal(await page.locator('#board').isHidden(), false);
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'board', 'focus back on the board');
      assert.equal(await card(page, early.id).isVisible(), true);
      assert.deepEqual(page.problems, [], 'no errors in the page');
    } finally {
      await page.context().close();
    }
  });

  test('the keyboard help offers it too', async () => {
    const page = await openBoard(env.browser, url);
    try {
      await page.keyboard.press('?');
      await page.locator('#past-open').click();
      await eventually(() => page.evaluate(() => document.activeElement?.id === 'past-time'), { what: 'focus on the date' });
      assert.equal(await page.locator('#help-dialog').evaluate((d) => d.open), false, 'the help closed');
      assert.equal(await page.locator('#board').isHidden(), true);
      assert.deepEqual(page.problems, [], 'no errors in the page');
    } finally {
      await page.context().close();
    }
  });
});
