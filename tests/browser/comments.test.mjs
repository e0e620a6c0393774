// Comments on a card ("Working together on a card"), in a real Chromium
// against a real 3-node cluster: two people on two nodes commenting on the
// same card each see the other's comment, edit and deletion live, with the
// count on the card and in its dialog following; Markdown is rendered and
// hostile text stays text; the keyboard sends (Ctrl+Enter); a viewer reads
// and is offered nothing that writes; the thread fits a phone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { axeViolations } from './lib/axe.mjs';
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

async function boardWithCard(name, members) {
  const res = await api.call(url1, 'POST', '/api/boards', { body: { name } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const board = res.body;
  for (const [user, role] of members) {
    const set = await api.call(url1, 'PUT', `/api/boards/${board.id}/members/${user.id}`, { body: { role } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
  }
  const task = await api.create(url1, { title: 'Talk it through', board_id: board.id, column_id: board.columns[0].id });
  return { board, task };
}

async function openCard(page, id) {
  await card(page, id).click();
  await page.locator('#task-dialog').waitFor();
  await page.locator('#comments-status').waitFor({ state: 'hidden' });
}

const comment = (page, text) => page.locator('#comment-list .comment', { hasText: text });
const badge = (page, id) => card(page, id).locator('.comment-count');

describe('comments', () => {
  test('two people on two nodes comment on the same card and see each other live', async () => {
    const mia = await api.makeUser(url1, 'mia');
    const { board, task } = await boardWithCard('Together', [[mia, 'member']]);
    const a = await openBoard(env.browser, url1, { query: `?board=${board.id}` });
    const b = await openBoard(env.browser, url2, { query: `?board=${board.id}`, login: mia });
    try {
      await waitForSeq(a, task.seq);
      await waitForSeq(b, task.seq);
      assert.equal(await badge(a, task.id).count(), 0, 'no badge without comments');
      await openCard(a, task.id);
      await openCard(b, task.id);
      assert.match(await a.textContent('#comment-list'), /No comments yet/);

      // A writes with the keyboard (Ctrl+Enter) on node 1: B sees it on node 2, rendered.
      await a.locator('#comment-body').fill('Hello from **A** 🚀');
      let t0 = Date.now();
      await a.locator('#comment-body').press('Control+Enter');
      await comment(b, 'Hello from').locator('.comment-body strong', { hasText: 'A' }).waitFor({ timeout: LIVE_MS });
      const addMs = Date.now() - t0;
      assert.equal(await a.inputValue('#comment-body'), '', 'the composer empties once sent');
      assert.match(await comment(b, 'Hello from').locator('.comment-author').textContent(), /admin/);

      // B answers with the button: hostile text stays text on A's page.
      const hostile = 'Reply <img src=x onerror="window.pwned=1"> \\"quoted\\" `code` <script>window.pwned=2</script> 🦀';
      await b.locator('#comment-body').fill(hostile);
      await b.click('#comment-send');
      const reply = comment(a, 'Reply');
      await reply.waitFor({ timeout: LIVE_MS });
      assert.equal(await reply.locator('img, script').count(), 0, 'no element from the text');
      assert.match(await reply.locator('.comment-body').textContent(), /<img src=x onerror="window.pwned=1">/);
      assert.equal(await a.evaluate(() => window.pwned), undefined);
      assert.equal(await reply.locator('.comment-body code').textContent(), 'code');

      // The counts: on both cards, and in both dialogs' headers.
      for (const page of [a, b]) {
        await badge(page, task.id).filter({ hasText: '2' }).waitFor({ timeout: LIVE_MS });
        await page.locator('#task-comment-count', { hasText: '💬 2' }).waitFor({ timeout: LIVE_MS });
        assert.equal(await page.textContent('#comments-heading'), 'Comments (2)');
      }

      // Only one's own comment offers Edit; A is the board's admin: Delete on both.
      assert.equal(await comment(b, 'Hello from').getByRole('button', { name: /^Edit/ }).count(), 0);
      assert.equal(await comment(b, 'Hello from').getByRole('button', { name: /^Delete/ }).count(), 0);
      assert.equal(await comment(a, 'Reply').getByRole('button', { name: /^Edit/ }).count(), 0);

      // B edits hers (Ctrl+Enter saves): A sees the new text, marked edited.
      await comment(b, 'Reply').getByRole('button', { name: /^Edit comment by mia/ }).click();
      const editor = b.locator('#comment-list textarea');
      await editor.waitFor();
      assert.equal(await b.evaluate(() => document.activeElement?.tagName), 'TEXTAREA', 'the editor takes the focus');
      await editor.fill('Reply, *edited*');
      t0 = Date.now();
      await editor.press('Control+Enter');
      await comment(a, 'Reply, edited').locator('.comment-body em').waitFor({ timeout: LIVE_MS });
      const editMs = Date.now() - t0;
      assert.match(await comment(a, 'Reply, edited').locator('.comment-head').textContent(), /edited/);

      // A deletes it (asked first): gone on B, and the counts go down.
      await comment(a, 'Reply, edited').getByRole('button', { name: /^Delete comment by mia/ }).click();
      await comment(a, 'Reply, edited').getByRole('button', { name: 'Keep' }).click();
      assert.equal(await comment(a, 'Reply, edited').count(), 1, 'Keep keeps it');
      await comment(a, 'Reply, edited').getByRole('button', { name: /^Delete comment by mia/ }).click();
      t0 = Date.now();
      await comment(a, 'Reply, edited').getByRole('button', { name: 'Delete', exact: true }).click();
      await comment(b, 'Reply, edited').waitFor({ state: 'detached', timeout: LIVE_MS });
      const deleteMs = Date.now() - t0;
      for (const page of [a, b]) {
        await badge(page, task.id).filter({ hasText: '1' }).waitFor({ timeout: LIVE_MS });
        await page.locator('#task-comment-count', { hasText: '💬 1' }).waitFor({ timeout: LIVE_MS });
      }
      const thread = await api.call(url2, 'GET', `/api/tasks/${task.id}/comments`);
      assert.deepEqual(
        thread.body.comments.map((c) => c.body),
        ['Hello from **A** 🚀'],
      );

      // The history says who commented.
      await a.locator('#history-list .kind-comment_added').first().waitFor({ timeout: LIVE_MS });

      // The header's count takes the keyboard to the thread.
      await a.click('#task-comment-count');
      assert.equal(await a.evaluate(() => document.activeElement?.id), 'comments-heading');

      // A comment written and not sent is not lost to Escape.
      await a.locator('#comment-body').fill('half-written');
      await a.locator('#comment-body').press('Escape');
      await a.locator('#task-discard').waitFor();
      await a.click('#discard-no');
      assert.equal(await a.inputValue('#comment-body'), 'half-written');
      assert.equal(await a.locator('#task-dialog').isVisible(), true);

      assert.deepEqual(await axeViolations(a), [], 'the dialog with its comments passes axe');
      console.log(`# live comments: added A→B ${addMs} ms, edited B→A ${editMs} ms, deleted A→B ${deleteMs} ms`);
      assertClean(a);
      assertClean(b);
    } finally {
      await a.context().close();
      await b.context().close();
    }
  });

  test('a viewer reads the thread on a phone and is offered nothing that writes', async () => {
    const vic = await api.makeUser(url1, 'vic');
    const { board, task } = await boardWithCard('Read only', [[vic, 'viewer']]);
    const added = await api.call(url1, 'POST', `/api/tasks/${task.id}/comments`, {
      body: { body: `A long one: ${'word '.repeat(200)}\n\n\`\`\`\n${'x'.repeat(300)}\n\`\`\`` },
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const page = await openBoard(env.browser, url2, { query: `?board=${board.id}`, login: vic, phone: true });
    try {
      await waitForSeq(page, added.seq);
      await badge(page, task.id).filter({ hasText: '1' }).waitFor({ timeout: LIVE_MS });
      await card(page, task.id).tap();
      await page.locator('#task-dialog').waitFor();
      await comment(page, 'A long one').waitFor({ timeout: LIVE_MS });
      assert.equal(await page.locator('#comment-form').isVisible(), false, 'no composer for a viewer');
      assert.equal(await page.locator('#comment-list button').count(), 0, 'no Edit or Delete');
      const overflow = await page.evaluate(() => {
        const list = document.getElementById('comment-list');
        return list.scrollWidth - list.clientWidth;
      });
      assert.ok(overflow <= 1, `the thread fits the phone's width (overflow ${overflow}px)`);
      assertClean(page);
    } finally {
      await page.context().close();
    }
  });
});
