// The board in a real Chromium against a real 3-node cluster: creating,
// editing, moving, deleting (with and without undo), live updates across
// nodes, conflicts, untrusted text, the keyboard, filters in the URL.
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { assertClean, card, cardIds, openBoard, waitForSeq } from './lib/browser.mjs';
import { ARTIFACTS, REPO, dragTo, eventually, setUp, tearDown } from './lib/harness.mjs';

let env;
let url1;
let url2;
let url3;

before(async () => {
  env = await setUp();
  [url1, url2, url3] = env.cluster.nodes.map((n) => n.url);
});

after(async () => {
  await tearDown(env);
});

const column = (page, status) => page.locator(`#board .column[data-status="${status}"]`);

describe('the board', () => {
  test('a populated board, with the cluster panel (screenshot)', async () => {
    const seeded = await api.seedBoard(url1);
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, seeded.at(-1).seq);
      for (const status of ['todo', 'in_progress', 'done']) {
        assert.ok((await column(page, status).locator('.card').count()) >= 3, `several cards in ${status}`);
      }
      // Overdue highlighted, labels and avatars drawn.
      const overdue = card(page, seeded[0].id).locator('.due-overdue');
      await overdue.waitFor();
      assert.match(await overdue.textContent(), /Overdue/);
      assert.equal(await card(page, seeded[0].id).locator('.label').count(), 2);
      // The cluster panel lists the three nodes, one of them leader, with indexes.
      await page.waitForFunction(() => document.querySelectorAll('#cluster tbody tr').length === 3);
      await page.waitForSelector('#cluster tbody tr[data-role="leader"]');
      await page.waitForSelector('#cluster tbody tr.is-current[data-node-id="1"]');
      await page.waitForTimeout(300); // let the flash highlight of the last cards fade a little
      const height = await page.evaluate(() => Math.ceil(document.getElementById('app').getBoundingClientRect().bottom) + 4);
      await page.screenshot({ path: join(ARTIFACTS, 'board.png'), clip: { x: 0, y: 0, width: 1440, height: Math.min(900, height) } });
      if (process.env.UPDATE_DOCS_SCREENSHOT) {
        await mkdir(join(REPO, 'docs'), { recursive: true });
        await copyFile(join(ARTIFACTS, 'board.png'), join(REPO, 'docs/board.png'));
      }
      const dark = await openBoard(env.browser, url2, { colorScheme: 'dark' });
      await dark.screenshot({ path: join(ARTIFACTS, 'board-dark.png') });
      await dark.context().close();
      const phone = await openBoard(env.browser, url3, { viewport: { width: 390, height: 844 } });
      await phone.screenshot({ path: join(ARTIFACTS, 'board-phone.png') });
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);
      await phone.context().close();
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('create, edit, drag to another column, delete with undo and without', async () => {
    const page = await openBoard(env.browser, url1);
    try {
      // Create with the form of the "To do" column.
      await column(page, 'todo').locator('.add-open').click();
      const input = column(page, 'todo').locator('.add-title');
      await input.fill('Ship the board');
      await input.press('Enter');
      const created = column(page, 'todo').locator('.card', { hasText: 'Ship the board' });
      await created.waitFor();
      const id = await created.getAttribute('data-task-id');
      assert.equal((await api.get(url2, id)).body.status, 'todo');

      // Edit every field in the dialog.
      await created.click();
      const dialog = page.locator('#task-dialog');
      await dialog.waitFor();
      await page.fill('#task-title', 'Ship the live board');
      await page.selectOption('#task-priority', 'high');
      await page.fill('#task-assignee', 'zoe');
      await page.fill('#task-labels', 'ui, release');
      await page.fill('#task-due', '2031-03-04');
      await page.click('#desc-tab-write');
      await page.fill('#task-description', 'Needs **review** and `tests`:\n\n- drag and drop\n- keyboard\n\n[spec](https://example.com/spec)');
      await page.click('#task-save');
      await dialog.waitFor({ state: 'hidden' });
      const saved = (await api.get(url3, id)).body;
      assert.equal(saved.title, 'Ship the live board');
      assert.equal(saved.priority, 'high');
      assert.equal(saved.assignee, 'zoe');
      assert.deepEqual([...saved.labels].sort(), ['release', 'ui']);
      assert.equal(saved.due_date, '2031-03-04');
      assert.match(saved.description, /\*\*review\*\*/);
      await card(page, id).locator('.card-title', { hasText: 'Ship the live board' }).waitFor();
      await card(page, id).locator('.label', { hasText: 'release' }).waitFor();

      // Reopen: the description is rendered, the history says what changed.
      await card(page, id).click();
      await dialog.waitFor();
      const preview = page.locator('#desc-preview');
      assert.equal(await preview.locator('strong').textContent(), 'review');
      assert.equal(await preview.locator('code').textContent(), 'tests');
      assert.equal(await preview.locator('li').count(), 2);
      assert.equal(await preview.locator('a').getAttribute('href'), 'https://example.com/spec');
      const history = page.locator('#history-list');
      await history.locator('.history-item.kind-task_updated').waitFor();
      const changed = await history.locator('.history-item.kind-task_updated').first().textContent();
      assert.match(changed, /Title\s*Ship the board\s*→\s*Ship the live board/);
      assert.match(changed, /Priority\s*Medium\s*→\s*High/);
      await history.locator('.history-item.kind-task_created').waitFor();
      await page.click('#task-cancel');
      await dialog.waitFor({ state: 'hidden' });

      // Drag it to the end of "In progress".
      const list = await column(page, 'in_progress').locator('.cards').boundingBox();
      await dragTo(page, card(page, id), list.x + list.width / 2, list.y + list.height - 4);
      await column(page, 'in_progress').locator(`.card[data-task-id="${id}"]`).waitFor();
      await eventually(async () => (await api.get(url2, id)).body.status === 'in_progress', { what: 'the move saved' });
      await page.waitForSelector(`.card[data-task-id="${id}"]:not(.pending)`);
      let inProgress = (await api.list(url1)).tasks.filter((t) => t.status === 'in_progress');
      assert.equal(inProgress.at(-1).id, id, 'dropped at the end of the column');

      // Drag it to the top of the same column (a reorder).
      const first = await column(page, 'in_progress').locator('.card').first().boundingBox();
      await dragTo(page, card(page, id), first.x + first.width / 2, first.y + 4);
      await eventually(
        async () => {
          inProgress = (await api.list(url1)).tasks.filter((t) => t.status === 'in_progress');
          return inProgress[0].id === id;
        },
        { what: 'the card first in its column' },
      );
      await page.waitForSelector(`.card[data-task-id="${id}"]:not(.pending)`);
      assert.deepEqual(
        await column(page, 'in_progress').locator('.card').evaluateAll((els) => els.map((e) => e.dataset.taskId)),
        inProgress.map((t) => t.id),
        'the page shows the column in the server order',
      );

      // Delete, then undo: the card stays, also after the undo window.
      await card(page, id).click();
      await dialog.waitFor();
      await page.click('#task-delete');
      await card(page, id).waitFor({ state: 'detached' });
      await page.locator('.toast', { hasText: 'Deleted' }).getByRole('button', { name: 'Undo' }).click();
      await card(page, id).waitFor();
      await page.waitForTimeout(5600);
      assert.equal((await api.get(url2, id)).status, 200, 'undone: not deleted');
      assert.equal(await card(page, id).count(), 1);

      // Delete without undo (Shift+Delete on the focused card; Delete alone
      // archives): gone everywhere.
      await card(page, id).focus();
      await page.keyboard.press('Shift+Delete');
      await card(page, id).waitFor({ state: 'detached' });
      for (const url of [url1, url2, url3]) {
        await eventually(async () => (await api.get(url, id)).status === 404, {
          timeout: 12000,
          what: `the task gone on ${url}`,
        });
      }
      // And it does not come back on the page once the delete event arrived.
      const { lastSeq } = await api.list(url1);
      await waitForSeq(page, lastSeq);
      assert.equal(await card(page, id).count(), 0);
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('two pages on two different nodes see each other within a second', async () => {
    const a = await openBoard(env.browser, url1);
    const b = await openBoard(env.browser, url2);
    try {
      assert.equal(await a.$eval('#app', (el) => el.dataset.nodeUrl), url1);
      assert.equal(await b.$eval('#app', (el) => el.dataset.nodeUrl), url2);

      // Created on A (node 1) → on B (node 2).
      await column(a, 'todo').locator('.add-open').click();
      await column(a, 'todo').locator('.add-title').fill('Seen from node 2');
      let t0 = Date.now();
      await column(a, 'todo').locator('.add-title').press('Enter');
      const onB = b.locator('#board .card', { hasText: 'Seen from node 2' });
      await onB.waitFor({ timeout: 1000 });
      const createMs = Date.now() - t0;
      const id = await onB.getAttribute('data-task-id');
      // The change is highlighted briefly.
      await b.waitForSelector(`.card[data-task-id="${id}"].flash`, { timeout: 1000 });

      // Moved on B (keyboard) → on A.
      await card(b, id).focus();
      await b.keyboard.press('m');
      await b.keyboard.press('ArrowRight');
      t0 = Date.now();
      await b.keyboard.press('Enter');
      await column(a, 'in_progress').locator(`.card[data-task-id="${id}"]`).waitFor({ timeout: 1000 });
      const moveMs = Date.now() - t0;

      // Changed through node 3's API → on both.
      const task = (await api.get(url3, id)).body;
      t0 = Date.now();
      await api.patch(url3, id, { title: 'Renamed on node 3' }, task.version);
      await Promise.all([
        card(a, id).locator('.card-title', { hasText: 'Renamed on node 3' }).waitFor({ timeout: 1000 }),
        card(b, id).locator('.card-title', { hasText: 'Renamed on node 3' }).waitFor({ timeout: 1000 }),
      ]);
      const patchMs = Date.now() - t0;
      console.log(`# live: create A→B ${createMs} ms, move B→A ${moveMs} ms, API node 3→A,B ${patchMs} ms`);

      // Both pages end at the same seq with the same cards as the server.
      const truth = await api.list(url1);
      await waitForSeq(a, truth.lastSeq);
      await waitForSeq(b, truth.lastSeq);
      const ids = truth.tasks.map((t) => t.id).sort();
      assert.deepEqual((await cardIds(a)).sort(), ids);
      assert.deepEqual((await cardIds(b)).sort(), ids);
      assertClean(a);
      assertClean(b);
    } finally {
      await a.context().close();
      await b.context().close();
    }
  });

  test('a conflict (412) is shown and resolved, never silently lost', async () => {
    const task = await api.create(url2, { title: 'Conflict me', description: 'original' });
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, task.seq);
      const dialog = page.locator('#task-dialog');

      // Round 1: keep mine. Someone edits the card (via node 3) while the dialog is open.
      await card(page, task.id).click();
      await dialog.waitFor();
      await page.fill('#task-title', 'Conflict me — mine');
      const theirs = await api.patch(url3, task.id, { title: 'Conflict me — theirs', description: 'theirs too' }, task.version);
      await page.locator('#task-notice', { hasText: 'changed elsewhere' }).waitFor();
      await page.click('#task-save');
      const conflict = page.locator('#task-conflict');
      await conflict.waitFor();
      const rows = await conflict.textContent();
      assert.match(rows, /Conflict me — theirs/);
      assert.match(rows, /Conflict me — mine/);
      assert.match(rows, /both changed/);
      assert.equal((await api.get(url1, task.id)).body.title, 'Conflict me — theirs', 'nothing overwritten yet');
      await page.click('#conflict-mine');
      await dialog.waitFor({ state: 'hidden' });
      let now = (await api.get(url2, task.id)).body;
      assert.equal(now.title, 'Conflict me — mine', 'my title applied');
      assert.equal(now.description, 'theirs too', 'their other change kept');
      assert.equal(now.version, theirs.version + 1);
      await card(page, task.id).locator('.card-title', { hasText: 'Conflict me — mine' }).waitFor();

      // Round 2: discard mine.
      await waitForSeq(page, (await api.list(url1)).lastSeq);
      await card(page, task.id).click();
      await dialog.waitFor();
      await page.selectOption('#task-priority', 'low');
      await api.patch(url2, task.id, { priority: 'urgent' }, now.version);
      await page.locator('#task-notice', { hasText: 'changed elsewhere' }).waitFor();
      await page.click('#task-save');
      await conflict.waitFor();
      await page.click('#conflict-theirs');
      await conflict.waitFor({ state: 'hidden' });
      assert.equal(await page.inputValue('#task-priority'), 'urgent', 'the form shows their version');
      await page.click('#task-cancel');
      await dialog.waitFor({ state: 'hidden' });
      now = (await api.get(url1, task.id)).body;
      assert.equal(now.priority, 'urgent');
      assertClean(page, { allowStatus: [412] });
    } finally {
      await page.context().close();
    }
  });

  test('untrusted text is shown as text, never run', async () => {
    const evil = '<img src=x onerror=alert(1)>';
    const task = await api.create(url1, {
      title: evil,
      labels: ['<b>label</b>'],
      assignee: '<svg onload=alert(2)>',
      description:
        '<script>alert(3)</script>\n\n[click](javascript:alert(4)) [data](data:text/html,<b>x</b>) **<i>x</i>**\n\n```\n<img src=y onerror=alert(5)>\n```',
    });
    const page = await openBoard(env.browser, url2);
    try {
      await waitForSeq(page, task.seq);
      const el = card(page, task.id);
      assert.equal(await el.locator('.card-title').textContent(), evil);
      assert.equal(await el.locator('.label').textContent(), '<b>label</b>');
      assert.equal(await page.locator('#board img, #board svg[onload], #board script, #board b').count(), 0);
      await el.click();
      await page.locator('#task-dialog').waitFor();
      assert.equal(await page.inputValue('#task-title'), evil);
      const preview = page.locator('#desc-preview');
      assert.equal(await preview.locator('script, img, i, b').count(), 0, 'no markup from the description');
      assert.equal(await preview.locator('a').count(), 0, 'no javascript: or data: links');
      assert.match(await preview.textContent(), /<script>alert\(3\)<\/script>/);
      assert.match(await preview.textContent(), /\[click\]\(javascript:alert\(4\)\)/);
      assert.equal(await preview.locator('pre code').textContent(), '<img src=y onerror=alert(5)>');
      assert.equal(await page.locator('#history-list img').count(), 0);
      await page.click('#task-cancel');

      // Typed into the form, too.
      await column(page, 'todo').locator('.add-open').click();
      await column(page, 'todo').locator('.add-title').fill('<script>alert(6)</script>');
      await column(page, 'todo').locator('.add-title').press('Enter');
      await page.locator('#board .card-title', { hasText: '<script>alert(6)</script>' }).waitFor();
      await page.waitForTimeout(300);
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('the keyboard: n creates a card, m and the arrows move it', async () => {
    const done = await api.create(url1, { title: 'Already done', status: 'done' });
    const page = await openBoard(env.browser, url3);
    try {
      await waitForSeq(page, done.seq);
      await page.locator('body').press('n');
      const input = column(page, 'todo').locator('.add-title');
      await input.waitFor();
      assert.equal(await page.evaluate(() => document.activeElement.classList.contains('add-title')), true);
      await page.keyboard.type('Made with the keyboard');
      await page.keyboard.press('Enter');
      const created = column(page, 'todo').locator('.card', { hasText: 'Made with the keyboard' });
      await created.waitFor();
      const id = await created.getAttribute('data-task-id');
      await page.keyboard.press('Escape');

      // Cards are focusable, named and described for assistive technology;
      // the focused one is its column's Tab stop.
      await created.focus();
      assert.equal(await created.getAttribute('tabindex'), '0');
      assert.match(await created.getAttribute('aria-label'), /Made with the keyboard/);
      assert.equal(await created.getAttribute('aria-describedby'), 'card-help');
      assert.equal(await column(page, 'todo').locator('ol[role="list"]').getAttribute('aria-labelledby'), 'col-todo-title');

      // m, → →, Enter: to Done (at the same row, as far as Done has rows).
      await created.focus();
      await page.keyboard.press('m');
      await page.waitForSelector(`.card[data-task-id="${id}"].moving`);
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowRight');
      await page.waitForFunction(() => /Done, position/.test(document.getElementById('announcer').textContent));
      await page.keyboard.press('Enter');
      await column(page, 'done').locator(`.card[data-task-id="${id}"]:not(.pending)`).waitFor();
      await eventually(async () => (await api.get(url1, id)).body.status === 'done', { what: 'moved to done' });
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.taskId), id, 'focus stays on the card');

      // m, ↑ (or ↓ when first), Enter: one place up (down) within Done.
      const before = (await api.list(url1)).tasks.filter((t) => t.status === 'done').map((t) => t.id);
      const at = before.indexOf(id);
      assert.ok(before.length >= 2);
      const to = at > 0 ? at - 1 : at + 1;
      await page.keyboard.press('m');
      await page.keyboard.press(at > 0 ? 'ArrowUp' : 'ArrowDown');
      await page.keyboard.press('Enter');
      const expected = [...before];
      expected.splice(at, 1);
      expected.splice(to, 0, id);
      await eventually(
        async () => JSON.stringify((await api.list(url1)).tasks.filter((t) => t.status === 'done').map((t) => t.id)) === JSON.stringify(expected),
        { what: 'moved one place' },
      );

      // Escape cancels a move: nothing is written.
      const version = (await api.get(url1, id)).body.version;
      await page.waitForSelector(`.card[data-task-id="${id}"]:not(.pending)`);
      await page.keyboard.press('m');
      await page.keyboard.press('ArrowLeft');
      await page.keyboard.press('Escape');
      await column(page, 'done').locator(`.card[data-task-id="${id}"]`).waitFor();
      await page.waitForTimeout(300);
      assert.equal((await api.get(url1, id)).body.version, version);

      // Delete, then Ctrl+Z: back at once, and still there on the server.
      await page.keyboard.press('Delete');
      await card(page, id).waitFor({ state: 'detached' });
      await page.keyboard.press('Control+z');
      await card(page, id).waitFor();
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.taskId), id);
      assert.equal((await api.get(url1, id)).status, 200);

      // Enter opens the card; Escape closes it and gives the focus back.
      await page.keyboard.press('Enter');
      await page.locator('#task-dialog').waitFor();
      await page.keyboard.press('Escape');
      await page.locator('#task-dialog').waitFor({ state: 'hidden' });
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.taskId), id);
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('the live feed recovers from a lost event (gap) and from a resync', async () => {
    const page = await openBoard(env.browser, url2);
    const sockets = [];
    let mode = 'pass'; // 'drop-one' | 'blackhole'
    try {
      await page.routeWebSocket(/\/ws\?since=/, (ws) => {
        const since = Number(new URL(ws.url()).searchParams.get('since'));
        const entry = { since, ws };
        sockets.push(entry);
        const server = ws.connectToServer();
        server.onMessage((msg) => {
          const frame = JSON.parse(msg);
          if (frame.type === 'event' && mode === 'drop-one') {
            mode = 'pass';
            return; // lost on the way
          }
          if (frame.type === 'event' && mode === 'blackhole') return;
          ws.send(msg);
        });
      });
      // The routed socket only applies to new connections: reload to get one.
      await page.reload();
      await page.waitForSelector('#app[data-live="true"]');
      assert.equal(sockets.length, 1);

      // One event lost: the next one shows a gap, and the page resumes from its last seq.
      mode = 'drop-one';
      const a = await api.create(url1, { title: 'Lost on the way' });
      const b = await api.create(url1, { title: 'Shows the gap' });
      await card(page, a.id).waitFor();
      await card(page, b.id).waitFor();
      await waitForSeq(page, b.seq);
      assert.equal(sockets.length, 2, 'reconnected once');
      assert.equal(sockets[1].since, a.seq - 1, 'resumed after the last applied event');

      // resync + close 4000: the page reloads the list and follows from its seq.
      mode = 'blackhole';
      const c = await api.create(url3, { title: 'Only in the reloaded list' });
      await page.waitForTimeout(200);
      assert.equal(await card(page, c.id).count(), 0, 'not seen over the feed');
      const lists = [];
      page.on('request', (req) => {
        if (/\/api\/boards\/[^/]+\/tasks\?/.test(req.url())) lists.push(req.url());
      });
      mode = 'pass';
      sockets[1].ws.send(JSON.stringify({ type: 'resync' }));
      await sockets[1].ws.close({ code: 4000, reason: 'resync' });
      await card(page, c.id).waitFor();
      await waitForSeq(page, c.seq);
      assert.ok(lists.length >= 1, 'the list was loaded again');
      assert.equal(sockets.length, 3);
      assert.equal(sockets[2].since, c.seq, 'the new feed starts at the reloaded seq');
      const truth = await api.list(url1);
      assert.deepEqual((await cardIds(page)).sort(), truth.tasks.map((t) => t.id).sort());
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('Esc cancels a mouse drag: nothing moves, nothing is written', async () => {
    const task = await api.create(url1, { title: 'Carried, then Esc' });
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, task.seq);
      await card(page, task.id).scrollIntoViewIfNeeded();
      const from = await card(page, task.id).boundingBox();
      const to = await column(page, 'done').locator('.cards').boundingBox();
      await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
      await page.mouse.down();
      await page.mouse.move(from.x + from.width / 2 + 8, from.y + from.height / 2 + 8, { steps: 2 });
      await page.mouse.move(to.x + to.width / 2, to.y + 20, { steps: 10 });
      await page.waitForSelector('.drag-ghost');
      await page.keyboard.press('Escape');
      await page.waitForSelector('.drag-ghost', { state: 'detached' });
      await page.mouse.up();
      await page.waitForTimeout(300);
      assert.equal(await column(page, 'todo').locator(`.card[data-task-id="${task.id}"]`).count(), 1, 'still in To do');
      assert.equal((await api.get(url2, task.id)).body.version, task.version, 'nothing written');
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('the cluster panel follows the feed: one consistent view through a leader change', async () => {
    const page = await openBoard(env.browser, url1);
    try {
      await page.waitForSelector('#cluster tbody tr[data-role="leader"]');
      // Every render of the panel, as the person sees it.
      await page.evaluate(() => {
        window.panelLog = [];
        const root = document.getElementById('cluster');
        const snap = () => {
          const leaders = [...root.querySelectorAll('tbody tr[data-role="leader"]')].map((r) => Number(r.dataset.nodeId));
          const said = /leader node (\d+)/.exec(root.querySelector('#cluster-summary').textContent)?.[1];
          window.panelLog.push({ at: performance.now(), leaders, summary: said == null ? null : Number(said) });
        };
        snap();
        new MutationObserver(snap).observe(root, { childList: true, subtree: true, characterData: true, attributes: true });
      });
      const info = await (await fetch(`${url1}/api/cluster`)).json();
      const target = [1, 2, 3].find((id) => id !== info.leader_id);
      const t0 = await page.evaluate(() => performance.now());
      const res = await fetch(`${info.leader_url}/api/cluster/leader`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: target }),
      });
      assert.equal(res.status, 202);
      await eventually(
        async () => (await (await fetch(`${url1}/api/cluster`)).json()).leader_id === target,
        { what: 'the transfer' },
      );
      const t1 = await page.evaluate(() => performance.now());
      // Within a second of the change, table and summary both name the new leader.
      await page.waitForFunction(
        (id) => {
          const last = window.panelLog.at(-1);
          return last.summary === id && last.leaders.length === 1 && last.leaders[0] === id;
        },
        target,
        { timeout: 1000 },
      );
      const shownAt = await page.evaluate(() => performance.now());
      await page.waitForTimeout(2500); // and stays consistent while the polls come in
      const log = await page.evaluate(() => window.panelLog);
      const torn = log.filter((e) => e.leaders.length > 1 || (e.leaders[0] ?? null) !== e.summary);
      assert.deepEqual(torn, [], 'never a table that contradicts its summary');
      console.log(`# panel: leader change shown ${Math.round(shownAt - t1)} ms after /api/cluster said so (${Math.round(t1 - t0)} ms transfer)`);
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('a member the node names without a URL does not break the page', async () => {
    const page = await openBoard(env.browser, url2, { query: '?nourl' });
    try {
      await page.route(`${url2}/api/cluster`, async (route) => {
        const res = await route.fetch();
        const view = await res.json();
        for (const m of view.members) if (m.id !== view.node_id) m.url = null;
        delete view.leader_url;
        await route.fulfill({ response: res, json: view });
      });
      await page.routeWebSocket(/\/ws\?since=/, (ws) => {
        const server = ws.connectToServer();
        server.onMessage((msg) => {
          const frame = JSON.parse(msg);
          if (frame.type === 'cluster') {
            for (const m of frame.members) if (m.id !== frame.node_id) m.url = null;
            delete frame.leader_url;
          }
          ws.send(JSON.stringify(frame));
        });
      });
      await page.reload();
      await page.waitForSelector('#app[data-live="true"]');
      await page.waitForTimeout(2500);
      await page.waitForSelector('#cluster tbody tr[data-node-id="2"]:not(.is-down)');
      assert.equal(await page.locator('#cluster tbody tr.is-down').count(), 0, 'no healthy node shown down');
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('the dialog: no stale form under a conflict, a plain meta line', async () => {
    const task = await api.create(url1, { title: 'Meta and conflict', status: 'in_progress', labels: ['infra'] });
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, task.seq);
      await card(page, task.id).click();
      await page.locator('#task-dialog').waitFor();
      const meta = await page.textContent('#task-meta');
      assert.doesNotMatch(meta, /In In/);
      assert.match(meta, /In progress/);
      await page.fill('#task-title', 'Meta and conflict — mine');
      await api.patch(url3, task.id, { labels: ['infra', 'observability'] }, task.version);
      await page.locator('#task-notice', { hasText: 'changed elsewhere' }).waitFor();
      await page.click('#task-save');
      await page.locator('#task-conflict').waitFor();
      assert.equal(await page.locator('#task-labels').isVisible(), false, 'the stale form is not shown under the table');
      assert.equal(await page.locator('#task-description').isVisible(), false);
      await page.click('#conflict-theirs');
      await page.locator('#task-conflict').waitFor({ state: 'hidden' });
      assert.equal(await page.inputValue('#task-labels'), 'infra, observability', 'the form is back, with the saved version');
      await page.click('#task-cancel');
      assertClean(page, { allowStatus: [412] });
    } finally {
      await page.context().close();
    }
  });

  test('Markdown: images (http(s) only, lazy, under the CSP), tables, task lists ticked with If-Match', async () => {
    const image = `${url2}/favicon.svg`;
    const task = await api.create(url1, {
      title: 'Rich description',
      description: `![the logo](${image}) ![bad](javascript:alert(1)) ![data](data:image/png;base64,AAAA)\n\n| Step | Owner |\n| :--- | ---: |\n| build | ana |\n| ship \\| test | bo |\n\n- [ ] write the plan\n- [x] review it\n`,
    });
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, task.seq);
      await card(page, task.id).click();
      await page.locator('#task-dialog').waitFor();
      const preview = page.locator('#desc-preview');
      const img = preview.locator('img');
      assert.equal(await img.count(), 1, 'only the http(s) image');
      assert.equal(await img.getAttribute('src'), image);
      assert.equal(await img.getAttribute('alt'), 'the logo');
      assert.equal(await img.getAttribute('loading'), 'lazy');
      await page.waitForFunction(() => document.querySelector('#desc-preview img')?.naturalWidth > 0, null, { timeout: 5000 });
      assert.match(await preview.textContent(), /!\[bad\]\(javascript:alert\(1\)\)/);
      assert.deepEqual(await preview.locator('table th').allTextContents(), ['Step', 'Owner']);
      assert.deepEqual(await preview.locator('table tbody td').allTextContents(), ['build', 'ana', 'ship | test', 'bo']);
      assert.equal(await preview.locator('table th').nth(1).evaluate((e) => getComputedStyle(e).textAlign), 'right');

      // The task list: real, labelled checkboxes.
      const plan = page.getByRole('checkbox', { name: 'write the plan' });
      assert.equal(await plan.isChecked(), false);
      assert.equal(await page.getByRole('checkbox', { name: 'review it' }).isChecked(), true);
      const patches = [];
      page.on('request', (req) => {
        if (req.method() === 'PATCH') patches.push({ ifMatch: req.headers()['if-match'], body: req.postDataJSON() });
      });
      await plan.check();
      const saved = await eventually(
        async () => {
          const t = (await api.get(url3, task.id)).body;
          return t.version > task.version ? t : null;
        },
        { what: 'the tick saved' },
      );
      assert.match(saved.description, /- \[x\] write the plan/);
      assert.match(saved.description, /- \[x\] review it/);
      assert.equal(patches.length, 1);
      assert.equal(patches[0].ifMatch, `"${task.version}"`, 'a conditional write');
      assert.deepEqual(Object.keys(patches[0].body), ['description']);
      assert.equal(await page.locator('#task-dialog').isVisible(), true, 'the dialog stays open');
      await page.waitForFunction((v) => document.getElementById('task-dialog').dataset.version === String(v), saved.version);
      assert.equal(await page.getByRole('checkbox', { name: 'write the plan' }).isChecked(), true);
      await page.click('#task-cancel');
      await page.locator('#task-dialog').waitFor({ state: 'hidden' });
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('the keyboard: one Tab stop per column, arrows inside, Undo reachable, move instructions on screen', async () => {
    const made = [];
    for (let i = 0; i < 8; i++) made.push(await api.create(url1, { title: `Roving ${i}` }));
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, made.at(-1).seq);
      const todo = column(page, 'todo');
      assert.equal(await todo.locator('.card[tabindex="0"]').count(), 1, 'one Tab stop in To do');
      for (const status of ['in_progress', 'done']) {
        assert.ok((await column(page, status).locator('.card[tabindex="0"]').count()) <= 1);
      }
      // From the search box, Tab reaches To do's "Add a card" in a few presses.
      await page.focus('#filter-q');
      let presses = 0;
      while (presses < 15) {
        await page.keyboard.press('Tab');
        presses++;
        if (await page.evaluate(() => document.activeElement?.getAttribute('aria-label') === 'Add a card to To do')) break;
      }
      // (The column's menu button is one stop before its cards, "Search
      // all boards" one after the filters, and the notifications bell one in
      // the header's actions.)
      assert.ok(presses <= 12, `"Add a card" reached in ${presses} presses`);

      // Arrows move within the column, and the Tab stop follows.
      const first = todo.locator('.card').first();
      await first.focus();
      await page.keyboard.press('ArrowDown');
      const second = await todo.locator('.card').nth(1).getAttribute('data-task-id');
      assert.equal(await page.evaluate(() => document.activeElement.dataset.taskId), second);
      assert.equal(await todo.locator('.card[tabindex="0"]').getAttribute('data-task-id'), second);

      // m shows what to press.
      await page.keyboard.press('m');
      const help = page.locator('#move-help');
      await help.waitFor();
      assert.match(await help.textContent(), /Enter/);
      assert.match(await help.textContent(), /Esc/);
      await page.keyboard.press('Escape');
      await help.waitFor({ state: 'hidden' });

      // Delete: the toast's Undo is a few Tab presses away.
      await page.keyboard.press('Delete');
      await card(page, second).waitFor({ state: 'detached' });
      presses = 0;
      while (presses < 12) {
        await page.keyboard.press('Tab');
        presses++;
        if (await page.evaluate(() => document.activeElement?.classList.contains('toast-action'))) break;
      }
      // (Each later column's menu button and "Add a column" are stops before
      // it: 3 more than the 6 of a board without column menus.)
      assert.ok(presses <= 9, `Undo reached in ${presses} presses`);
      await page.keyboard.press('Enter');
      await card(page, second).waitFor();
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('search and filters live in the URL and survive a reload', async () => {
    const tag = `flt${Date.now() % 100000}`;
    const made = [];
    for (const t of [
      { title: 'Tune the load balancer', labels: [tag], assignee: 'kai', priority: 'high' },
      { title: 'Load more cards on scroll', labels: [tag, 'ui'], assignee: 'kai', status: 'in_progress' },
      { title: 'Unrelated work', labels: [tag], assignee: 'lea' },
      { title: 'Load without the label', assignee: 'kai' },
    ]) {
      made.push(await api.create(url2, t));
    }
    const page = await openBoard(env.browser, url1, { query: `?label=${tag}` });
    try {
      await waitForSeq(page, made.at(-1).seq);
      const shown = await page.$$eval('#board .card .card-title', (els) => els.map((e) => e.textContent));
      assert.deepEqual(shown.sort(), ['Load more cards on scroll', 'Tune the load balancer', 'Unrelated work']);
      assert.equal(await page.inputValue('#filter-label'), tag);

      await page.selectOption('#filter-assignee', 'kai');
      await page.fill('#filter-q', 'load');
      await page.waitForFunction(() => new URL(location.href).searchParams.get('q') === 'load');
      const url = new URL(page.url());
      assert.equal(url.searchParams.get('label'), tag);
      assert.equal(url.searchParams.get('assignee'), 'kai');
      await page.reload();
      await page.waitForSelector('#app[data-live="true"]');
      assert.equal(await page.inputValue('#filter-q'), 'load');
      assert.equal(await page.inputValue('#filter-assignee'), 'kai');
      assert.equal(await page.inputValue('#filter-label'), tag);
      const titles = await page.$$eval('#board .card .card-title', (els) => els.map((e) => e.textContent));
      assert.deepEqual(titles.sort(), ['Load more cards on scroll', 'Tune the load balancer']);
      // The counts say how many of the column's cards are shown.
      assert.match(await column(page, 'todo').locator('.count').textContent(), /^1\/\d+$/);

      // A live change moves a card into view; the filter applies to events too.
      await api.patch(url3, made[3].id, { labels: [tag] }, made[3].version);
      await card(page, made[3].id).waitFor();

      await page.selectOption('#filter-priority', 'high');
      await page.waitForFunction(() => new URL(location.href).searchParams.get('priority') === 'high');
      assert.deepEqual(await cardIds(page), [made[0].id]);
      await page.click('#filter-clear');
      await page.waitForFunction(() => location.search === '');
      // The board is loaded again, unfiltered.
      const every = (await api.list(url1)).tasks.length;
      await eventually(async () => (await cardIds(page)).length === every, { what: 'every card again' });
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });

  test('a filter finds the cards of a column beyond its first page (the server filters)', async () => {
    // 60 cards at the end of To do: the last of them is past the first
    // page of 50 the board loads, and only it has the label.
    const tag = `deep${Date.now() % 100000}`;
    const made = [];
    for (let i = 0; i < 60; i += 10) {
      made.push(
        ...(await Promise.all(
          Array.from({ length: 10 }, (_, k) =>
            api.create(url2, { title: `Filler ${i + k}`, ...(i + k === 59 ? { labels: [tag], title: 'The needle' } : {}) }),
          ),
        )),
      );
    }
    const needle = made.find((t) => t.title === 'The needle');
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, Math.max(...made.map((t) => t.seq)));
      assert.equal(await card(page, needle.id).count(), 0, 'not loaded before filtering');
      await page.goto(`${url1}/?label=${tag}`);
      await card(page, needle.id).waitFor();
      assert.deepEqual(await cardIds(page), [needle.id]);
      // And typed into the filter bar, with words the server searches for.
      await page.click('#filter-clear');
      await page.waitForFunction(() => location.search === '');
      // The needle may still be drawn from the label's answer: wait for
      // the page to show the server's answer to the words, not for it.
      await page.fill('#filter-q', 'needle');
      await page.waitForFunction(() => new URL(location.href).searchParams.get('q') === 'needle');
      await eventually(async () => (await cardIds(page)).length === 1, { what: 'only the needle shown' });
      assert.deepEqual(await cardIds(page), [needle.id]);
      // A q the server has no word for (too short) is left to the page: no error.
      await page.fill('#filter-q', 'ne');
      await page.waitForFunction(() => new URL(location.href).searchParams.get('q') === 'ne');
      await page.waitForSelector('#app[data-live="true"]');
      assertClean(page, { allowStatus: [400] });
    } finally {
      await page.context().close();
    }
  });
});
