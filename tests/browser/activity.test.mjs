// A board's activity and export (issue 19), in a real Chromium against a
// real 3-node cluster: who did what, newest first, a change made by another
// person on another node arriving live, filtered by person, paged with
// "Show more", and closed with Escape, by keyboard only; the board
// downloaded as JSON and CSV from its Export menu.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { axeViolations } from './lib/axe.mjs';
import { openBoard } from './lib/browser.mjs';
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

const items = (page) => page.locator('#activity-list .activity-item .activity-text').allTextContents();

describe('activity', () => {
  test('who did what on the board, live across nodes, by person, paged, by keyboard', async () => {
    const made = await api.call(url1, 'POST', '/api/boards', { body: { name: 'Ops “night” 🌙' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const board = made.body;
    const todo = board.columns[0].id;
    const password = 'ria-password-1';
    const user = await api.call(url1, 'POST', '/api/users', {
      body: { username: 'ria', display_name: 'Ria', password, role: 'member' },
    });
    assert.equal(user.status, 201, JSON.stringify(user.body));
    const riaId = user.body.id ?? user.body.user?.id;
    const joined = await api.call(url1, 'PUT', `/api/boards/${board.id}/members/${riaId}`, { body: { role: 'member' } });
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    // Enough cards for two pages of 50.
    const cards = [];
    for (let i = 0; i < 55; i++) {
      const r = await api.call(url1, 'POST', '/api/tasks', { body: { title: `Card ${i} <b>&amp;</b>`, board_id: board.id, column_id: todo } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      cards.push(r.body);
    }

    const a = await openBoard(env.browser, url1, { query: `?board=${board.id}` });
    const b = await openBoard(env.browser, url2, { query: `?board=${board.id}`, login: { username: 'ria', password } });
    try {
      // A opens the activity from the keyboard.
      await a.locator('#activity-open').focus();
      await a.keyboard.press('Enter');
      await a.locator('#activity').waitFor({ state: 'visible' });
      assert.equal(await a.evaluate(() => document.activeElement?.id), 'activity-title', 'focus on the view');
      await eventually(async () => (await a.locator('#activity-list .activity-item').count()) === 50, { what: 'the first page' });
      const first = await items(a);
      assert.match(first[0], /added “Card 54 <b>&amp;<\/b>” to To do/, 'newest first, the title as text');
      assert.equal(await a.locator('#activity-list b').count(), 0, 'no markup from a title');

      // Show more: the rest, ending with the board's creation.
      await a.locator('#activity-more').focus();
      await a.keyboard.press('Enter');
      await eventually(async () => (await a.locator('#activity-more').isHidden()) && (await items(a)).some((t) => /created the board “Ops “night” 🌙”/.test(t)), {
        what: 'the last page',
      });
      assert.equal(await a.evaluate(() => document.activeElement?.id), 'activity-title', 'focus not lost with "Show more"');
      const all = await items(a);
      assert.match(all.at(-1), /created the board/, 'the board’s first event last');
      assert.equal(all.filter((t) => /added “Card \d+/.test(t)).length, 55, 'every card once');
      const seqs = await a.$$eval('#activity-list .activity-item', (els) => els.map((e) => Number(e.dataset.seq)));
      assert.ok(seqs.every((s, i) => i === 0 || s < seqs[i - 1]), `newest first: ${seqs}`);
      assert.ok(!all.some((t) => /^Ria\b/.test(t)), 'Ria did nothing yet');

      // Ria adds a card on node 2: it comes to A's activity on node 1, on top.
      const column = b.locator('#board .column').first();
      await column.locator('.add-open').click();
      await column.locator('.add-title').fill('From Ria on node 2');
      await column.locator('.add-title').press('Enter');
      let top = '';
      await eventually(async () => /^Ria added “From Ria on node 2” to To do/.test((top = (await items(a))[0] ?? '')), {
        what: `Ria’s card live on node 1 (on top: ${top})`,
      }).catch((err) => assert.fail(`${err.message}; on top: ${top}`));

      // A comment (its event names only its card): the card's title, live.
      const commented = await api.call(url2, 'POST', `/api/tasks/${cards[0].id}/comments`, { body: { body: 'Looks done to me' } });
      assert.equal(commented.status, 201, JSON.stringify(commented.body));
      await eventually(async () => /commented on “Card 0 <b>&amp;<\/b>”/.test((await items(a))[0] ?? ''), { what: 'the comment live, with its card' });

      // Only Ria's part: one change.
      await a.locator('#activity-actor').selectOption({ label: 'Ria' });
      await eventually(async () => (await a.locator('#activity-list .activity-item').count()) === 1, { what: 'Ria only' });
      assert.match((await items(a))[0], /^Ria added “From Ria on node 2”/);
      assert.match(await a.locator('#activity-status').textContent(), /1 change by Ria/);
      assert.deepEqual(await axeViolations(a), [], 'no accessibility violations');

      // Escape: the live board again, focus on it.
      await a.keyboard.press('Escape');
      await eventually(() => a.locator('#activity').isHidden(), { what: 'the board back' });
      assert.equal(await a.locator('#board').isHidden(), false);
      assert.equal(await a.evaluate(() => document.activeElement?.id), 'board');
      assert.deepEqual(a.problems, [], 'no errors in the page');
      assert.deepEqual(b.problems, [], 'no errors in the page');
    } finally {
      await a.context().close();
      await b.context().close();
    }
  });

  test('the Export menu downloads the board as JSON and its cards as CSV', async () => {
    const made = await api.call(url1, 'POST', '/api/boards', { body: { name: 'Export me' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const board = made.body;
    for (const title of ['=1+1', 'Plain “quoted”, with a comma']) {
      const r = await api.call(url1, 'POST', '/api/tasks', { body: { title, board_id: board.id, column_id: board.columns[1].id } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const page = await openBoard(env.browser, url2, { query: `?board=${board.id}` });
    try {
      const download = async (name) => {
        await page.locator('#export-menu summary').focus();
        await page.keyboard.press('Enter');
        const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name }).click()]);
        const chunks = [];
        for await (const chunk of await file.createReadStream()) chunks.push(chunk);
        return { name: file.suggestedFilename(), text: Buffer.concat(chunks).toString('utf8') };
      };
      const json = await download('Board as JSON');
      assert.equal(json.name, 'Export-me.json');
      const parsed = JSON.parse(json.text);
      assert.equal(parsed.board.name, 'Export me');
      assert.deepEqual(parsed.cards.map((c) => c.title).sort(), ['=1+1', 'Plain “quoted”, with a comma']);
      assert.equal(await page.locator('#export-menu').getAttribute('open'), null, 'the menu closed');
      const csv = await download('Cards as CSV');
      assert.equal(csv.name, 'Export-me.csv');
      assert.match(csv.text, /^id,title,description,column,/);
      assert.match(csv.text, /"'=1\+1"/, 'a formula is defused');
      assert.match(csv.text, /"Plain “quoted”, with a comma"/);
      assert.deepEqual(page.problems, [], 'no errors in the page');
    } finally {
      await page.context().close();
    }
  });
});
