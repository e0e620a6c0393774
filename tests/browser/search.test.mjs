// "Search all boards" (issue 17) in a real Chromium against a real 3-node
// cluster: ranked hits from every board I am on, the words in the URL
// (a reload keeps them), a hit opening its card on its board, the
// keyboard only.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { openBoard, waitForSeq } from './lib/browser.mjs';
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

const hits = (page) => page.$$eval('#search-all-list .search-hit', (els) => els.map((e) => e.dataset.taskId));

describe('search all boards', () => {
  test('hits of every board, most relevant first; the words in the URL; a hit opens its card on its board', async () => {
    const made = await api.call(url1, 'POST', '/api/boards', { body: { name: 'Observatory' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const other = made.body;
    const strong = await api.create(url2, {
      title: 'Quasar alignment',
      description: 'quasar quasar: align the quasar mirrors',
      board_id: other.id,
    });
    const weak = await api.create(url2, { title: 'Tidy the lab', description: 'and a note on the quasar <b>not bold</b>' });
    await api.create(url2, { title: 'Unrelated card', description: 'nothing here' });
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, weak.seq);
      // Keyboard only: the button is in the filter bar, Enter searches.
      await page.locator('#search-all-open').focus();
      await page.keyboard.press('Enter');
      await page.locator('#search-all').waitFor();
      await page.keyboard.type('quasar');
      await page.keyboard.press('Enter');
      await eventually(async () => (await hits(page)).length === 2, { what: 'two hits' });
      assert.deepEqual(await hits(page), [strong.id, weak.id], 'most relevant first');
      const where = await page.$$eval('#search-all-list .search-hit .past-card-meta', (els) => els.map((e) => e.textContent));
      assert.match(where[0], /^Observatory · /, 'the board of each hit is named');
      assert.match(await page.textContent('#search-all-status'), /2 cards found/);
      // Untrusted text stays text.
      assert.equal(await page.locator('#search-all-list b').count(), 0);
      assert.equal(new URL(page.url()).searchParams.get('find'), 'quasar');

      // A reload keeps the search.
      await page.reload();
      await page.locator('#search-all').waitFor();
      await eventually(async () => (await hits(page)).length === 2, { what: 'the hits again' });
      assert.equal(await page.inputValue('#search-all-q'), 'quasar');

      // Words the server cannot search for are said, not an error page.
      await page.fill('#search-all-q', 'the');
      await page.press('#search-all-q', 'Enter');
      await page.locator('#search-all-status', { hasText: 'Nothing to search for' }).waitFor();

      // The hit on the other board opens there, with its card.
      await page.fill('#search-all-q', 'quasar alignment');
      await page.press('#search-all-q', 'Enter');
      await eventually(async () => (await hits(page)).length === 1, { what: 'one hit' });
      await page.locator('#search-all-list .search-hit-open').first().click();
      await page.waitForFunction((id) => document.getElementById('app').dataset.board === id, other.id);
      await page.locator('#task-dialog[open]').waitFor();
      assert.equal(await page.inputValue('#task-title'), 'Quasar alignment');
      assert.equal(await page.locator('#search-all').isVisible(), false);
      assert.equal(new URL(page.url()).pathname, `/b/${other.id}`);
      assert.equal(new URL(page.url()).searchParams.get('find'), null);
      const problems = page.problems.filter((p) => !p.includes('status of 400 '));
      assert.deepEqual(problems, [], 'no errors in the page');
    } finally {
      await page.context().close();
    }
  });

  test("a card whose comment has the words is found, and says so", async () => {
    const card = await api.create(url1, { title: 'Telescope budget', description: 'numbers only' });
    const said = await api.call(url2, 'POST', `/api/tasks/${card.id}/comments`, {
      body: { body: 'Ask the vendor about the nebula filter first' },
    });
    assert.equal(said.status, 201, JSON.stringify(said.body));
    const page = await openBoard(env.browser, url1);
    try {
      await page.locator('#search-all-open').click();
      await page.locator('#search-all').waitFor();
      await page.fill('#search-all-q', 'nebula filter');
      await page.press('#search-all-q', 'Enter');
      await eventually(async () => (await hits(page)).length === 1, { what: 'one hit' });
      assert.deepEqual(await hits(page), [card.id]);
      const where = await page.textContent('#search-all-list .search-hit .past-card-meta');
      assert.match(where, / · found in a comment$/);
    } finally {
      await page.context().close();
    }
  });
});
