// Presence in a real Chromium against a real 3-node cluster: two people on
// two nodes open the same board and each sees the other; one opens a card
// and the other sees who is editing it (on the card, and in the dialog);
// a tab that closes is gone from the other's board within seconds.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { axeViolations } from './lib/axe.mjs';
import { assertClean, card, openBoard } from './lib/browser.mjs';
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

/** A new board with `user` on it as a member; its id. */
async function boardWith(name, user) {
  const board = await api.call(url1, 'POST', '/api/boards', { body: { name } });
  assert.equal(board.status, 201, JSON.stringify(board.body));
  const member = await api.call(url1, 'PUT', `/api/boards/${board.body.id}/members/${user.id}`, { body: { role: 'member' } });
  assert.equal(member.status, 200, JSON.stringify(member.body));
  return board.body.id;
}

/** The ids the page lists as viewing the board now (others than itself). */
const viewers = (page) => page.$eval('#presence', (el) => (el.dataset.viewers ? el.dataset.viewers.split(',') : []));

describe('presence', () => {
  test('two people on two nodes see each other, who has a card open, and a closed tab go', async () => {
    const pia = await api.makeUser(url1, 'pia');
    const boardId = await boardWith('Presence board', pia);
    const task = await api.call(url1, 'POST', '/api/tasks', { body: { title: 'Pick the launch date', board_id: boardId } });
    assert.equal(task.status, 201, JSON.stringify(task.body));
    const taskId = task.body.id;
    const users = await api.call(url1, 'GET', '/api/users');
    const adminId = users.body.users.find((u) => u.username === env.cluster.admin.username).id;

    const a = await openBoard(env.browser, url1, { query: `?board=${boardId}` });
    const b = await openBoard(env.browser, url2, { query: `?board=${boardId}`, login: pia });
    try {
      // Each sees the other (and not themselves), named for the eye and the ear.
      let t0 = Date.now();
      await eventually(async () => (await viewers(a)).join() === pia.id, { what: 'A sees pia', timeout: 10000 });
      await eventually(async () => (await viewers(b)).join() === adminId, { what: 'B sees the admin', timeout: 10000 });
      const seenMs = Date.now() - t0;
      assert.equal(await a.locator('#presence').isVisible(), true);
      assert.equal(await a.getAttribute('#presence', 'title'), 'Viewing now: pia');
      assert.equal(await a.locator('#presence .presence-chip').count(), 1);
      assert.equal(await a.getAttribute('#presence .presence-chip', 'title'), 'pia');
      await eventually(async () => (await a.textContent('#presence [role=status]')) === 'Viewing now: pia', {
        what: 'the polite announcement',
      });

      // B opens the card: A's card says who has it open (and A's focus
      // stays where it was); A's own dialog too.
      await a.focus('#filter-q');
      await card(b, taskId).click();
      await b.locator('#task-dialog[open]').waitFor();
      t0 = Date.now();
      await card(a, taskId).and(a.locator('[data-editing="pia"]')).waitFor({ timeout: 10000 });
      const editingMs = Date.now() - t0;
      assert.equal(await card(a, taskId).getAttribute('aria-description'), 'pia is editing');
      assert.equal(await a.evaluate(() => document.activeElement?.id), 'filter-q', 'no focus stealing');
      await card(a, taskId).click();
      await a.locator('#task-dialog[open]').waitFor();
      await a.locator('#task-presence', { hasText: 'pia is editing this card' }).waitFor({ timeout: 10000 });
      // And B's dialog names the admin, who now has the same card open.
      const adminName = env.cluster.admin.username;
      await b.locator('#task-presence', { hasText: `${adminName} is editing this card` }).waitFor({ timeout: 10000 });
      assert.deepEqual(await axeViolations(a), [], 'axe: the dialog with who is editing');
      await a.keyboard.press('Escape');
      await a.locator('#task-dialog').waitFor({ state: 'hidden' });
      assert.deepEqual(await axeViolations(a), [], 'axe: the board with who is viewing');

      // B's tab closes: A's board forgets B within seconds.
      t0 = Date.now();
      await b.context().close();
      await eventually(async () => (await viewers(a)).length === 0, { what: 'pia gone from A', timeout: 10000 });
      await eventually(async () => (await card(a, taskId).getAttribute('data-editing')) === null, {
        what: 'the card no longer marked',
      });
      const goneMs = Date.now() - t0;
      assert.equal(await a.locator('#presence').isVisible(), false, 'the row hides when nobody else is here');
      console.log(`presence: seen after ${seenMs} ms, editing after ${editingMs} ms, gone after ${goneMs} ms`);
      assertClean(a);
    } finally {
      await a.context().close();
      await b.context().close().catch(() => {});
    }
  });

  test('at phone width the row fits beside the board picker', async () => {
    const qin = await api.makeUser(url1, 'qin');
    const boardId = await boardWith('Phone board', qin);
    const phone = await openBoard(env.browser, url2, { query: `?board=${boardId}`, phone: true, login: qin });
    const desk = await openBoard(env.browser, url1, { query: `?board=${boardId}` });
    try {
      await eventually(async () => (await viewers(phone)).length === 1, { what: 'the phone sees the admin' });
      const box = await phone.locator('#presence').boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `within the screen: ${JSON.stringify(box)}`);
      assert.deepEqual(await axeViolations(phone), [], 'axe: phone with who is viewing');
      assertClean(phone);
    } finally {
      await phone.context().close();
      await desk.context().close();
    }
  });
});
