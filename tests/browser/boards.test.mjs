// Boards and columns a team shapes itself (issue 17), in a real Chromium
// against a real 3-node cluster: creating a board, adding columns and
// reordering them with the pointer and the keyboard, a WIP limit exceeded,
// a card moved to another board, archived and restored, switching boards
// by URL, two people on two nodes seeing each other's column changes live,
// a column edited under a stale version refused and shown as it is, a
// viewer of a board offered nothing that changes it, and its members
// managed from the board settings (the person's page following live).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { axeViolations } from './lib/axe.mjs';
import { LIVE_MS, assertClean, card, openBoard, seenLive, waitForSeq } from './lib/browser.mjs';
import { eventually, setUp, tearDown } from './lib/harness.mjs';

let env;
let url1;
let url2;
let defaultId;

before(async () => {
  env = await setUp();
  [url1, url2] = env.cluster.nodes.map((n) => n.url);
  const { body } = await api.call(url1, 'GET', '/api/boards');
  defaultId = body.boards.find((b) => b.default).id;
});

after(async () => {
  await tearDown(env);
});

async function board(url, id) {
  const res = await api.call(url, 'GET', `/api/boards/${id}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

async function newBoard(name) {
  const res = await api.call(url1, 'POST', '/api/boards', { body: { name } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

/** The column names of board `id` in the server's order. */
async function columnNames(id) {
  return (await board(url1, id)).columns.map((c) => c.name);
}

/** The column names the page shows, left to right. */
const shownColumns = (page) => page.$$eval('#board .column .column-name', (els) => els.map((e) => e.textContent));
const columnNamed = (page, name) => page.locator('#board .column', { has: page.locator('.column-name', { hasText: new RegExp(`^${name}$`) }) });

/** The board the page shows. */
const shownBoard = (page) => page.$eval('#app', (el) => el.dataset.board);

async function setMember(boardId, user, role) {
  const res = await api.call(url1, 'PUT', `/api/boards/${boardId}/members/${user.id}`, { body: { role } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

describe('boards and columns', () => {
  test('a new board from the switcher; columns added, reordered by drag and by keyboard', async () => {
    const page = await openBoard(env.browser, url1);
    try {
      assert.equal(await shownBoard(page), defaultId, '/ opens the default board');
      await page.selectOption('#board-select', { label: 'New board…' });
      await page.locator('#board-dialog').waitFor();
      await page.fill('#board-name', 'Launch plan');
      await page.click('#board-dialog button[type=submit]');
      await page.waitForFunction((d) => document.getElementById('app').dataset.board !== d, defaultId);
      const id = await shownBoard(page);
      assert.equal(new URL(page.url()).pathname, `/b/${id}`, 'the URL names the board');
      assert.equal(await page.inputValue('#board-select'), id);
      assert.deepEqual(await shownColumns(page), ['To do', 'In progress', 'Done']);

      // Add a column at the end.
      await page.click('#board .add-column');
      await page.locator('#column-dialog').waitFor();
      await page.fill('#column-name', 'Review');
      await page.click('#column-save');
      await page.locator('#column-dialog').waitFor({ state: 'hidden' });
      await columnNamed(page, 'Review').waitFor();
      assert.deepEqual(await shownColumns(page), ['To do', 'In progress', 'Done', 'Review']);
      assert.deepEqual(await columnNames(id), ['To do', 'In progress', 'Done', 'Review']);

      // The keyboard: Alt+← in Review's header (its menu button), one place left.
      await columnNamed(page, 'Review').locator('.column-menu-open').focus();
      await page.keyboard.press('Alt+ArrowLeft');
      await eventually(async () => (await columnNames(id)).join() === 'To do,In progress,Review,Done', {
        what: 'Review before Done on the server',
      });
      assert.deepEqual(await shownColumns(page), ['To do', 'In progress', 'Review', 'Done']);
      assert.equal(
        await page.evaluate(() => document.activeElement?.getAttribute('aria-label')),
        'Column menu: Review',
        'the focus stays on the moved column',
      );

      // The menu: "Move right" puts it back after Done.
      await page.keyboard.press('Enter');
      await page.locator('#column-menu').waitFor();
      await page.getByRole('menuitem', { name: 'Move right' }).click();
      await eventually(async () => (await columnNames(id)).join() === 'To do,In progress,Done,Review', {
        what: 'Review last again',
      });

      // The pointer: Review's header dragged onto the left half of To do.
      const from = await columnNamed(page, 'Review').locator('.column-head h2').boundingBox();
      const to = await columnNamed(page, 'To do').boundingBox();
      await page.mouse.move(from.x + 10, from.y + from.height / 2);
      await page.mouse.down();
      await page.mouse.move(from.x + 20, from.y + from.height / 2, { steps: 2 });
      await page.mouse.move(to.x + 20, to.y + 20, { steps: 15 });
      await page.mouse.up();
      await eventually(async () => (await columnNames(id)).join() === 'Review,To do,In progress,Done', {
        what: 'Review first on the server',
      });
      await page.waitForFunction(
        () => [...document.querySelectorAll('#board .column .column-name')].map((e) => e.textContent).join() === 'Review,To do,In progress,Done',
      );
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('column moves made faster than their events arrive land where they were shown', async () => {
    const b = await newBoard('Quick moves');
    const quick = await api.call(url1, 'POST', `/api/boards/${b.id}/columns`, { body: { name: 'Last' } });
    assert.equal(quick.status, 201);
    const page = await openBoard(env.browser, url1, { query: `?board=${b.id}` });
    // The page's events are held back and let through one at a time.
    const held = [];
    let holding = false;
    await page.routeWebSocket(/\/ws\?since=/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((msg) => {
        if (holding && JSON.parse(msg).type === 'event') held.push(() => ws.send(msg));
        else ws.send(msg);
      });
    });
    try {
      // The routed socket only applies to new connections: load the page again.
      await page.goto(`${url1}/?board=${b.id}`);
      await page.waitForSelector('#app[data-live="true"]');
      await columnNamed(page, 'Last').waitFor();
      holding = true;
      const answered = () => page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/api/columns/'));
      await columnNamed(page, 'Last').locator('.column-menu-open').focus();
      for (let i = 0; i < 2; i++) {
        const res = answered();
        await page.keyboard.press('Alt+ArrowLeft');
        assert.equal((await res).status(), 200);
      }
      assert.deepEqual(await shownColumns(page), ['To do', 'Last', 'In progress', 'Done']);
      // The event of the first move arrives (it says where that move put the
      // column), then the third move is made: from where the page shows it.
      await eventually(() => held.length === 2, { what: 'two events held' });
      held.shift()();
      await page.waitForTimeout(200);
      assert.deepEqual(await shownColumns(page), ['To do', 'Last', 'In progress', 'Done'], 'an older event does not undo a newer move');
      const res = answered();
      await page.keyboard.press('Alt+ArrowLeft');
      await res;
      assert.deepEqual(await shownColumns(page), ['Last', 'To do', 'In progress', 'Done']);
      holding = false;
      for (const send of held.splice(0)) send();
      await eventually(async () => (await columnNames(b.id)).join() === 'Last,To do,In progress,Done', {
        what: 'Last first on the server',
      });
      await page.waitForTimeout(300);
      assert.deepEqual(await shownColumns(page), ['Last', 'To do', 'In progress', 'Done']);
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('a WIP limit: set in the column dialog, exceeded, said in red and in words', async () => {
    const b = await newBoard('WIP board');
    const doing = b.columns.find((c) => c.key === 'in_progress');
    const page = await openBoard(env.browser, url1, { query: `?board=${b.id}` });
    try {
      assert.equal(await shownBoard(page), b.id, '?board= opens that board');
      const column = columnNamed(page, 'In progress');
      await column.locator('.column-menu-open').click();
      await page.getByRole('menuitem', { name: 'Edit column…' }).click();
      await page.locator('#column-dialog').waitFor();
      await page.fill('#column-wip', '1');
      await page.selectOption('#column-color', { label: 'Purple' });
      // Auto-archive: days out of range are said in words, 30 is saved.
      await page.fill('#column-archive', '0');
      await page.click('#column-save');
      await page.locator('#column-error', { hasText: '1 to 3650' }).waitFor();
      await page.fill('#column-archive', '30');
      await page.click('#column-save');
      await page.locator('#column-dialog').waitFor({ state: 'hidden' });
      await eventually(async () => (await board(url1, b.id)).columns.find((c) => c.id === doing.id).wip_limit === 1, {
        what: 'the limit saved',
      });
      assert.equal((await board(url1, b.id)).columns.find((c) => c.id === doing.id).archive_after_days, 30);
      await page.waitForFunction(
        (id) => document.querySelector(`.column[data-column-id="${id}"] .count`)?.textContent === '0 / 1',
        doing.id,
      );
      assert.equal(await column.getAttribute('data-over'), 'false');

      // One card: at the limit. A second, added on the page: over it.
      const first = await api.create(url2, { title: 'First in progress', board_id: b.id, column_id: doing.id });
      await waitForSeq(page, first.seq);
      await page.waitForFunction((id) => document.querySelector(`.column[data-column-id="${id}"] .count`)?.textContent === '1 / 1', doing.id);
      await column.locator('.add-open').click();
      await column.locator('.add-title').fill('One too many');
      await column.locator('.add-title').press('Enter');
      await column.locator('.card', { hasText: 'One too many' }).waitFor();
      await page.waitForFunction((id) => document.querySelector(`.column[data-column-id="${id}"]`)?.dataset.over === 'true', doing.id);
      assert.equal(await column.locator('.count').textContent(), '2 / 1');
      assert.equal(await column.locator('.wip-over').isVisible(), true, 'said in words');
      assert.equal(await column.locator('.wip-over').textContent(), 'Over limit');
      assert.match(await column.locator('h2').textContent(), /limit 1, over the limit/, 'and to a screen reader');
      const red = await column.locator('.count').evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.notEqual(red, await columnNamed(page, 'To do').locator('.count').evaluate((el) => getComputedStyle(el).backgroundColor));
      await page.locator('.toast', { hasText: 'over its WIP limit' }).waitFor();
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('a card moved to another board, archived, and restored from the archived cards', async () => {
    const target = await newBoard('Ops board');
    const task = await api.create(url1, { title: 'Travel between boards', status: 'in_progress' });
    const page = await openBoard(env.browser, url1, { query: `?board=${defaultId}` });
    try {
      await waitForSeq(page, task.seq);
      await card(page, task.id).click();
      await page.locator('#task-dialog').waitFor();
      await page.click('#task-move-open');
      await page.selectOption('#task-board', { label: 'Ops board' });
      const patches = [];
      page.on('request', (req) => {
        if (req.method() === 'PATCH') patches.push({ ifMatch: req.headers()['if-match'], body: req.postDataJSON() });
      });
      await page.click('#task-move-go');
      await page.locator('#task-dialog').waitFor({ state: 'hidden' });
      await card(page, task.id).waitFor({ state: 'detached' });
      assert.deepEqual(patches, [{ ifMatch: `"${task.version}"`, body: { board_id: target.id } }]);
      const moved = (await api.get(url2, task.id)).body;
      assert.equal(moved.board_id, target.id);
      const inProgress = target.columns.find((c) => c.key === 'in_progress');
      assert.equal(moved.column_id ?? null, inProgress.id, 'it lands in the column with the same key');

      // On the other board, in its In progress.
      await page.selectOption('#board-select', { label: 'Ops board' });
      await page.waitForFunction((id) => document.getElementById('app').dataset.board === id, target.id);
      await columnNamed(page, 'In progress').locator(`.card[data-task-id="${task.id}"]`).waitFor();

      // Delete archives it (undo for 5 s, then written).
      await card(page, task.id).focus();
      await page.keyboard.press('Delete');
      await card(page, task.id).waitFor({ state: 'detached' });
      await page.locator('.toast', { hasText: 'Archived' }).waitFor();
      await eventually(async () => (await api.get(url1, task.id)).body?.archived === true, {
        timeout: 12000,
        what: 'the card archived',
      });
      await columnNamed(page, 'In progress').locator('.count', { hasText: /^0$/ }).waitFor();

      // The archived cards: listed, restored.
      await page.click('#archived-open');
      const row = page.locator('#archived-list .archived-card', { hasText: 'Travel between boards' });
      await row.waitFor();
      assert.equal(await page.locator('#board').isVisible(), false, 'instead of the board');
      await row.getByRole('button', { name: 'Restore' }).click();
      await row.waitFor({ state: 'detached' });
      await eventually(async () => (await api.get(url1, task.id)).body?.archived !== true, { what: 'restored' });
      await page.click('#archived-back');
      await columnNamed(page, 'In progress').locator(`.card[data-task-id="${task.id}"]`).waitFor();
      await columnNamed(page, 'In progress').locator('.count', { hasText: /^1$/ }).waitFor();
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('switching boards: the URL names the board, a reload keeps it, / goes to the last one', async () => {
    const other = await newBoard('Switch me');
    const page = await openBoard(env.browser, url1, { query: `?board=${defaultId}` });
    try {
      assert.equal(new URL(page.url()).pathname, `/b/${defaultId}`);
      await page.selectOption('#board-select', { label: 'Switch me' });
      await page.waitForFunction((id) => document.getElementById('app').dataset.board === id, other.id);
      assert.equal(new URL(page.url()).pathname, `/b/${other.id}`);
      assert.match(await page.title(), /^Switch me/);
      await page.reload();
      await page.waitForSelector('#app[data-live="true"]');
      assert.equal(await shownBoard(page), other.id, 'a reload keeps the board');
      assert.equal(await page.inputValue('#board-select'), other.id);
      await page.goto(`${url1}/`);
      await page.waitForSelector('#app[data-live="true"]');
      assert.equal(await shownBoard(page), other.id, '/ opens the board last opened');
      assert.equal(new URL(page.url()).pathname, `/b/${other.id}`);
      // Back goes to the board before the switch.
      await page.selectOption('#board-select', { value: defaultId });
      await page.waitForFunction((id) => document.getElementById('app').dataset.board === id, defaultId);
      await page.goBack();
      await page.waitForFunction((id) => document.getElementById('app').dataset.board === id, other.id);
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('two people on two nodes see each other’s column changes live', async () => {
    const shared = await newBoard('Shared board');
    const mia = await api.makeUser(url1, 'mia');
    await setMember(shared.id, mia, 'member');
    const a = await openBoard(env.browser, url1, { query: `?board=${shared.id}` });
    const b = await openBoard(env.browser, url2, { query: `?board=${shared.id}`, login: mia });
    try {
      assert.equal(await shownBoard(b), shared.id);
      // A adds a column on node 1: B sees it on node 2.
      await a.click('#board .add-column');
      await a.fill('#column-name', 'QA');
      await a.click('#column-save');
      let t0 = Date.now();
      await columnNamed(b, 'QA').waitFor({ timeout: LIVE_MS });
      const addMs = Date.now() - t0;

      // B renames it and sets a limit: A sees both.
      await columnNamed(b, 'QA').locator('.column-menu-open').click();
      await b.getByRole('menuitem', { name: 'Edit column…' }).click();
      await b.fill('#column-name', 'Quality');
      await b.fill('#column-wip', '3');
      t0 = Date.now();
      await b.click('#column-save');
      await seenLive(columnNamed(a, 'Quality').locator('.count', { hasText: '0 / 3' }), { a, b }, '#column-error');
      const editMs = Date.now() - t0;

      // A moves it first with the keyboard: B's order follows.
      await columnNamed(a, 'Quality').locator('.column-menu-open').focus();
      for (let i = 0; i < 3; i++) await a.keyboard.press('Alt+ArrowLeft');
      await b.waitForFunction(() => document.querySelector('#board .column .column-name')?.textContent === 'Quality', null, {
        timeout: 5000,
      });

      // B deletes it (empty): gone on A.
      await columnNamed(b, 'Quality').locator('.column-menu-open').click();
      await b.getByRole('menuitem', { name: 'Delete column…' }).click();
      await b.click('#column-delete-confirm');
      await columnNamed(a, 'Quality').waitFor({ state: 'detached', timeout: LIVE_MS });
      assert.deepEqual(await shownColumns(a), ['To do', 'In progress', 'Done']);
      console.log(`# live columns: added A→B ${addMs} ms, edited B→A ${editMs} ms`);
      assertClean(a);
      assertClean(b);
    } finally {
      await a.context().close();
      await b.context().close();
    }
  });

  test('a column changed by someone else meanwhile is not overwritten: the dialog says so and shows it as it is', async () => {
    const b = await newBoard('Column conflicts');
    const doing = b.columns.find((c) => c.key === 'in_progress');
    const page = await openBoard(env.browser, url1, { query: `?board=${b.id}` });
    try {
      await columnNamed(page, 'In progress').locator('.column-menu-open').click();
      await page.getByRole('menuitem', { name: 'Edit column…' }).click();
      await page.fill('#column-name', 'Doing');
      // Someone renames it through node 2 while the dialog is open.
      const theirs = await api.call(url2, 'PATCH', `/api/columns/${doing.id}`, { body: { name: 'Working' } });
      assert.equal(theirs.status, 200, JSON.stringify(theirs.body));
      await page.click('#column-save');
      await page.locator('#column-error', { hasText: 'Someone else changed this column' }).waitFor();
      assert.equal(await page.inputValue('#column-name'), 'Working', 'the dialog shows the column as it is now');
      assert.deepEqual(await columnNames(b.id), ['To do', 'Working', 'Done'], 'their change stands');
      // Made again, the change goes through under the version it now names.
      await page.fill('#column-name', 'Doing');
      await page.click('#column-save');
      await page.locator('#column-dialog').waitFor({ state: 'hidden' });
      assert.deepEqual(await columnNames(b.id), ['To do', 'Doing', 'Done']);
      await columnNamed(page, 'Doing').waitFor();
      assertClean(page, { allowStatus: [412] });
    } finally {
      await page.context().close();
    }
  });

  test('board settings: its admin renames and archives it, another page sees both live', async () => {
    const b = await newBoard('Old name');
    const ida = await api.makeUser(url1, 'ida');
    await setMember(b.id, ida, 'member');
    const admin = await openBoard(env.browser, url1, { query: `?board=${b.id}` });
    const member = await openBoard(env.browser, url2, { query: `?board=${defaultId}`, login: ida });
    try {
      assert.equal(await member.locator('#board-settings-open').isVisible(), false, 'not for a member of the default board');
      await member.locator('#board-select option', { hasText: 'Old name' }).waitFor({ state: 'attached' });
      await admin.click('#board-settings-open');
      await admin.locator('#board-settings').waitFor();
      await admin.fill('#board-rename', 'New name');
      await admin.click('#board-settings button[type=submit]');
      await admin.locator('#board-settings').waitFor({ state: 'hidden' });
      await member.locator('#board-select option', { hasText: 'New name' }).waitFor({ state: 'attached', timeout: LIVE_MS });
      await admin.waitForFunction(() => document.title.startsWith('New name'));
      assert.equal((await board(url1, b.id)).name, 'New name');

      await admin.click('#board-settings-open');
      await admin.check('#board-archive');
      await admin.click('#board-settings button[type=submit]');
      await member.locator('#board-select option', { hasText: 'New name' }).waitFor({ state: 'detached', timeout: LIVE_MS });
      await admin.locator('#board-select option', { hasText: 'New name (archived)' }).waitFor({ state: 'attached' });
      assert.equal((await board(url1, b.id)).archived, true);
      assertClean(admin);
      assertClean(member);
    } finally {
      await admin.context().close();
      await member.context().close();
    }
  });

  test('a column with cards is deleted only once its cards have somewhere to go', async () => {
    const b = await newBoard('Tidy board');
    const [todo, doing] = b.columns;
    const made = [];
    for (const title of ['Keep me', 'And me']) made.push(await api.create(url1, { title, board_id: b.id, column_id: doing.id }));
    const page = await openBoard(env.browser, url1, { query: `?board=${b.id}` });
    try {
      await waitForSeq(page, made.at(-1).seq);
      await columnNamed(page, 'In progress').locator('.column-menu-open').click();
      await page.getByRole('menuitem', { name: 'Delete column…' }).click();
      await page.locator('#column-delete-dialog').waitFor();
      assert.match(await page.textContent('#column-delete-text'), /holds 2 cards/);
      await page.selectOption('#column-move-to', { label: 'To do' });
      await page.click('#column-delete-confirm');
      await columnNamed(page, 'In progress').waitFor({ state: 'detached' });
      for (const t of made) {
        await columnNamed(page, 'To do').locator(`.card[data-task-id="${t.id}"]`).waitFor();
        assert.equal((await api.get(url2, t.id)).body.column_id ?? todo.id, todo.id);
      }
      await columnNamed(page, 'To do').locator('.count', { hasText: /^2$/ }).waitFor();
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('opening a board reads one page per column; the rest comes as the column scrolls', async () => {
    const b = await newBoard('Long history');
    const todo = b.columns[0];
    const made = await Promise.all(
      Array.from({ length: 120 }, (_, i) => api.create(url1, { title: `Old card ${i}`, board_id: b.id, column_id: todo.id })),
    );
    const lastSeq = Math.max(...made.map((t) => t.seq));
    const page = await openBoard(env.browser, url1, { query: `?board=${defaultId}` });
    const reads = [];
    page.on('request', (req) => {
      if (req.method() === 'GET' && /\/api\/(tasks|boards\/[^/]+\/tasks)\?/.test(req.url())) reads.push(new URL(req.url()));
    });
    try {
      await page.selectOption('#board-select', { label: 'Long history' });
      await page.waitForFunction((id) => document.getElementById('app').dataset.board === id, b.id);
      await waitForSeq(page, lastSeq);
      const column = columnNamed(page, 'To do');
      assert.equal(await column.locator('.count').textContent(), '120', 'the count is the server total');
      assert.equal(await column.locator('.card').count(), 50, 'one page drawn');
      assert.equal(reads.length, 3, `one read per column: ${reads.map(String).join(' ')}`);
      for (const url of reads) {
        assert.equal(url.pathname, `/api/boards/${b.id}/tasks`);
        assert.equal(url.searchParams.get('limit'), '50');
      }
      // Scrolled to its end, the column loads on, a page at a time, to the last card.
      await eventually(
        async () => {
          await column.locator('.cards').evaluate((el) => {
            el.scrollTop = el.scrollHeight;
          });
          return (await column.locator('.card').count()) === 120;
        },
        { what: 'every card loaded by scrolling' },
      );
      assert.equal(reads.length, 5, 'two more pages of To do');
      const titles = await column.locator('.card-title').allTextContents();
      assert.deepEqual(new Set(titles).size, 120, 'no card twice');
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('a viewer of a board is offered nothing that changes it', async () => {
    const b = await newBoard('Look, do not touch');
    const task = await api.create(url1, { title: 'Only to read', board_id: b.id, column_id: b.columns[0].id });
    const noah = await api.makeUser(url1, 'noah');
    await setMember(b.id, noah, 'viewer');
    const page = await openBoard(env.browser, url2, { query: `?board=${b.id}`, login: noah });
    try {
      await card(page, task.id).waitFor();
      assert.equal(await page.getAttribute('body', 'data-board-role'), 'viewer');
      assert.equal(await page.locator('#board .add-open:visible').count(), 0, 'no "Add a card"');
      assert.equal(await page.locator('#board .add-column:visible').count(), 0, 'no "Add a column"');
      assert.equal(await page.locator('#board .column-menu-open:visible').count(), 0, 'no column menus');
      // No drag: a card carried and dropped elsewhere writes nothing.
      const from = await card(page, task.id).boundingBox();
      const to = await columnNamed(page, 'Done').boundingBox();
      await page.mouse.move(from.x + 10, from.y + 10);
      await page.mouse.down();
      await page.mouse.move(to.x + 30, to.y + 40, { steps: 10 });
      assert.equal(await page.locator('.drag-ghost').count(), 0, 'nothing is picked up');
      await page.mouse.up();
      // Nor with the keyboard.
      await card(page, task.id).focus();
      await page.keyboard.press('m');
      await page.keyboard.press('Delete');
      assert.equal(await page.locator('#move-help:visible').count(), 0);
      assert.equal(await card(page, task.id).count(), 1, 'Delete does nothing');
      // The card opens to read: no Save, Archive, Delete or Move.
      await page.keyboard.press('Escape');
      await card(page, task.id).click();
      await page.locator('#task-dialog').waitFor();
      for (const id of ['#task-save', '#task-archive', '#task-delete', '#task-move-open']) {
        assert.equal(await page.locator(id).isVisible(), false, `no ${id}`);
      }
      await page.click('#task-cancel');
      // The archived cards: listed without Restore.
      await page.click('#archived-open');
      await page.locator('#archived-status', { hasText: 'No archived cards' }).waitFor();
      await page.click('#archived-back');
      await page.waitForTimeout(300);
      assert.equal((await api.get(url1, task.id)).body.version, task.version, 'nothing written');
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('members: an admin adds a viewer, promotes and removes them from the settings; their page follows live', async () => {
    const b = await newBoard('Team board');
    const task = await api.create(url1, { title: 'For the team', board_id: b.id, column_id: b.columns[0].id });
    const pia = await api.makeUser(url1, 'pia');
    const admin = await openBoard(env.browser, url1, { query: `?board=${b.id}` });
    const other = await openBoard(env.browser, url2, { query: `?board=${defaultId}`, login: pia });
    const members = async () => (await board(url1, b.id)).members;
    const row = admin.locator(`#members-list .member[data-user-id="${pia.id}"]`);
    const announced = (page, text) => page.waitForFunction((t) => document.getElementById('announcer').textContent === t, text);
    try {
      await card(admin, task.id).waitFor();
      assert.equal(await other.locator('#board-select option', { hasText: 'Team board' }).count(), 0, 'not hers yet');

      // Keyboard only: open the settings, pick pia by name, as a viewer, Add.
      await admin.locator('#board-settings-open').focus();
      await admin.keyboard.press('Enter');
      await admin.locator('#board-settings').waitFor();
      assert.equal(await admin.evaluate(() => document.activeElement?.id), 'board-rename');
      await admin.locator('#member-user option', { hasText: /^pia$/ }).waitFor({ state: 'attached' });
      await admin.locator('#member-user').focus();
      await admin.keyboard.type('pia');
      assert.equal(await admin.inputValue('#member-user'), pia.id, 'type-ahead picks her by name');
      await admin.keyboard.press('Tab');
      assert.equal(await admin.evaluate(() => document.activeElement?.id), 'member-role');
      await admin.keyboard.type('v');
      assert.equal(await admin.inputValue('#member-role'), 'viewer');
      await admin.keyboard.press('Tab');
      await admin.keyboard.press('Enter');
      await row.waitFor();
      await announced(admin, 'Added pia as viewer.');
      assert.equal(await admin.evaluate(() => document.activeElement?.id), 'member-user', 'ready to add another');
      assert.equal(await row.locator('select').inputValue(), 'viewer');
      assert.deepEqual(
        (await members()).filter((m) => m.user_id === pia.id).map((m) => m.role),
        ['viewer'],
      );
      assert.deepEqual(await axeViolations(admin), [], 'axe: the settings with their members');

      // Her page (node 2): the board arrives in her list; she opens it, read-only.
      await other.locator('#board-select option', { hasText: 'Team board' }).waitFor({ state: 'attached', timeout: 10000 });
      await other.selectOption('#board-select', { label: 'Team board' });
      await card(other, task.id).waitFor();
      assert.equal(await other.getAttribute('body', 'data-board-role'), 'viewer');
      assert.equal(await other.locator('#board .add-open:visible').count(), 0, 'no "Add a card" for a viewer');
      // She sees who is on it, read-only.
      assert.equal(await other.textContent('#board-settings-open'), 'Members');
      await other.click('#board-settings-open');
      await other.locator(`#members-list .member[data-user-id="${pia.id}"]`, { hasText: 'Viewer' }).waitFor();
      assert.equal(await other.locator('#members-list select, #members-list button').count(), 0, 'nothing to change');
      assert.equal(await other.locator('#member-add').isVisible(), false);
      assert.equal(await other.locator('#board-rename').isVisible(), false);
      assert.deepEqual(await axeViolations(other), [], 'axe: the members, read-only');
      await other.keyboard.press('Escape');
      await other.locator('#board-settings').waitFor({ state: 'hidden' });

      // A refusal is said in words, and the role shown goes back.
      await admin.route(`**/api/boards/${b.id}/members/${pia.id}`, (route) =>
        route.fulfill({
          status: 403,
          contentType: 'application/json',
          body: JSON.stringify({ error: { code: 'forbidden', message: 'only an admin of this board can do that' } }),
        }),
        { times: 1 },
      );
      await row.locator('select').focus();
      await admin.keyboard.press('ArrowDown');
      await admin.locator('#members-error', { hasText: 'The role of pia was not changed: only an admin of this board can do that' }).waitFor();
      assert.equal(await row.locator('select').inputValue(), 'viewer');

      // Promoted to member (the arrow key again): her page gets the controls.
      await admin.keyboard.press('ArrowDown');
      await announced(admin, 'pia is now member.');
      assert.equal(await admin.locator('#members-error').isVisible(), false);
      await other.waitForFunction(() => document.body.dataset.boardRole === 'member', null, { timeout: 10000 });
      await other.locator('#board .add-open').first().waitFor({ state: 'visible' });
      assert.deepEqual(
        (await members()).filter((m) => m.user_id === pia.id).map((m) => m.role),
        ['member'],
      );

      // Removed (Tab to Remove, Enter, then confirm): the board leaves her page.
      await admin.keyboard.press('Tab');
      assert.equal(await admin.evaluate(() => document.activeElement?.textContent), 'Remove');
      await admin.keyboard.press('Enter');
      assert.equal(await admin.evaluate(() => document.activeElement?.textContent), 'Remove pia');
      await admin.keyboard.press('Escape');
      assert.equal(await admin.evaluate(() => document.activeElement?.textContent), 'Remove', 'Escape keeps her');
      assert.equal(await admin.locator('#board-settings').isVisible(), true, 'and the dialog open');
      await admin.keyboard.press('Enter');
      await admin.keyboard.press('Enter');
      await row.waitFor({ state: 'detached' });
      await announced(admin, 'Removed pia from the board.');
      await other.waitForFunction((id) => document.getElementById('app').dataset.board === id, defaultId, { timeout: 10000 });
      await other.locator('.toast', { hasText: 'no longer on the board Team board' }).waitFor();
      await other.locator('#board-select option', { hasText: 'Team board' }).waitFor({ state: 'detached', timeout: 10000 });
      assert.equal((await members()).some((m) => m.user_id === pia.id), false);
      assertClean(admin, { allowStatus: [403] });
      assertClean(other, { allowStatus: [404] });
    } finally {
      await admin.context().close();
      await other.context().close();
    }
  });
});
