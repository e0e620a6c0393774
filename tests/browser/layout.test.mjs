// The board's layout and its accessibility: axe-core finds nothing on the
// board, the card dialog (both tabs) and the help, in light and dark, at
// desktop and phone widths; with 500 cards the page stays one screen tall
// (columns scroll on their own under their headers), the cluster panel fits
// its box and stays in reach, and a phone reaches every column at once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as api from './lib/api.mjs';
import { axeViolations } from './lib/axe.mjs';
import { card, openBoard, waitForSeq } from './lib/browser.mjs';
import { setUp, tearDown } from './lib/harness.mjs';

let env;
let url1;
let url2;
let lastSeq = 0;
const LONG_TITLE =
  'Investigate the intermittent memory leak in the websocket gateway that only shows up after several days of uptime under mixed read and write load from the mobile clients';

before(async () => {
  env = await setUp();
  [url1, url2] = env.cluster.nodes.map((n) => n.url);
  const seeded = await api.seedBoard(url1);
  const rich = await api.create(url1, {
    title: LONG_TITLE,
    status: 'in_progress',
    priority: 'high',
    assignee: 'grace lee',
    labels: ['perf', 'websocket', 'mobile'],
    due_date: api.day(-1),
    description:
      `## Plan\n\n- [ ] reproduce with the load tool\n- [x] capture a heap profile\n\n| Day | RSS |\n| --- | ---: |\n| 1 | 80 MB |\n| 3 | 310 MB |\n\n![the board](${url2}/favicon.svg)\n\nSee [the runbook](https://example.com/runbook).`,
  });
  lastSeq = Math.max(rich.seq, seeded.at(-1).seq);
});

after(async () => {
  await tearDown(env);
});

/** Many cards at once (a few requests in flight). */
async function createMany(url, count, make) {
  let next = 0;
  let seq = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const made = await api.create(url, make(i));
      seq = Math.max(seq, made.seq);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return seq;
}

function assertNoViolations(violations, where) {
  assert.deepEqual(violations, [], `axe found violations on ${where}:\n${JSON.stringify(violations, null, 2)}`);
}

describe('accessibility (axe-core)', () => {
  for (const colorScheme of ['light', 'dark']) {
    for (const phone of [false, true]) {
      const where = `${colorScheme}, ${phone ? 'phone' : 'desktop'}`;
      test(`zero violations: board, keyboard move, undo toast, card dialog (both tabs), help — ${where}`, async () => {
        const page = await openBoard(env.browser, url1, { colorScheme, phone });
        try {
          await waitForSeq(page, lastSeq);
          await page.waitForSelector('#cluster tbody tr[data-role="leader"]');
          await page.waitForTimeout(1700); // the highlight of fresh cards fades
          assertNoViolations(await axeViolations(page), `the board (${where})`);

          const rich = page.locator('#board .card', { hasText: 'memory leak' });
          await rich.click();
          await page.locator('#task-dialog').waitFor();
          await page.waitForFunction(() => document.querySelector('#desc-preview img')?.complete);
          assertNoViolations(await axeViolations(page), `the card dialog, Preview (${where})`);
          await page.click('#desc-tab-write');
          assertNoViolations(await axeViolations(page), `the card dialog, Write (${where})`);
          await page.click('#task-cancel');
          await page.locator('#task-dialog').waitFor({ state: 'hidden' });

          // A card picked up with the keyboard (its instructions on screen),
          // then deleted (the toast with its Undo).
          const first = page.locator('#board .card[tabindex="0"]').first();
          await first.focus();
          // The key goes where the focus is: on the card, not on the page.
          await page.waitForFunction(() => document.activeElement?.matches('#board .card'), null, { timeout: 5000 });
          await page.keyboard.press('m');
          await page.locator('#move-help').waitFor();
          assertNoViolations(await axeViolations(page), `a keyboard move (${where})`);
          await page.keyboard.press('Escape');
          await page.keyboard.press('Delete');
          const undo = page.locator('.toast').getByRole('button', { name: 'Undo' });
          await undo.waitFor();
          assertNoViolations(await axeViolations(page), `the undo toast (${where})`);
          await undo.click();

          await page.click('#help-open');
          await page.locator('#help-dialog').waitFor();
          assertNoViolations(await axeViolations(page), `the help (${where})`);
          await page.keyboard.press('Escape');
          assert.deepEqual(page.problems, []);
        } finally {
          await page.context().close();
        }
      });
    }
  }
});

describe('layout', () => {
  before(async () => {
    // 500 cards, most of them in To do.
    const seq = await createMany(url1, 480, (i) => ({
      title: `Card ${i} of the big board`,
      status: i % 6 === 0 ? 'done' : i % 4 === 0 ? 'in_progress' : 'todo',
      labels: i % 5 === 0 ? ['bulk'] : [],
    }));
    lastSeq = Math.max(lastSeq, seq);
  });

  test('desktop, 500 cards: one screen tall, columns scroll under their headers, the cluster table fits', async () => {
    for (const viewport of [
      { width: 1400, height: 900 },
      { width: 1280, height: 720 },
    ]) {
      const page = await openBoard(env.browser, url1, { viewport });
      try {
        await waitForSeq(page, lastSeq, 20000);
        const size = await page.evaluate(() => ({ height: document.documentElement.scrollHeight, inner: innerHeight }));
        assert.ok(size.height <= size.inner + 1, `the page is one screen tall (${size.height} px in ${size.inner})`);
        const list = page.locator('.column[data-status="todo"] .cards');
        const scroll = await list.evaluate((el) => ({ height: el.scrollHeight, client: el.clientHeight }));
        assert.ok(scroll.height > scroll.client * 3, 'To do scrolls on its own');
        await list.evaluate((el) => {
          el.scrollTop = el.scrollHeight;
        });
        const head = await page.locator('.column[data-status="todo"] .column-head').boundingBox();
        const last = await page.locator('.column[data-status="todo"] .card').last().boundingBox();
        assert.ok(head.y >= 0 && head.y + head.height <= last.y, 'its header stays above its last card');
        const add = await page.locator('.column[data-status="todo"] .add-open').boundingBox();
        assert.ok(add.y + add.height <= viewport.height, '"Add a card" stays on screen');

        // The cluster table fits its panel, even with the longest role and state.
        await page.waitForSelector('#cluster tbody tr[data-role="leader"]');
        const fit = await page.evaluate(() => {
          const panel = document.getElementById('cluster');
          const row = panel.querySelector('tbody tr');
          row.querySelector('td.role').textContent = 'pre-candidate';
          row.querySelector('td.state').textContent = 'no answer';
          const table = panel.querySelector('table');
          return { panel: [panel.scrollWidth, panel.clientWidth], table: [table.scrollWidth, table.parentElement.clientWidth] };
        });
        assert.ok(fit.panel[0] <= fit.panel[1], `the panel does not scroll sideways (${fit.panel})`);
        assert.ok(fit.table[0] <= fit.table[1], `the table fits (${fit.table})`);

        // `n` opens the form at the bottom of To do without moving the page.
        await page.locator('body').press('n');
        const input = page.locator('.column[data-status="todo"] .add-title');
        await input.waitFor();
        const box = await input.boundingBox();
        assert.equal(await page.evaluate(() => window.scrollY), 0);
        assert.ok(box.y >= 0 && box.y + box.height <= viewport.height, 'the form is on screen');
        await input.press('Escape');
      } finally {
        await page.context().close();
      }
    }
  });

  test('tablet (1024 px): the cluster panel is on screen, not under every card', async () => {
    const page = await openBoard(env.browser, url1, { viewport: { width: 1024, height: 768 } });
    try {
      await waitForSeq(page, lastSeq, 20000);
      const panel = await page.locator('#cluster').boundingBox();
      assert.ok(panel.y + panel.height <= 768, `the panel is on the first screen (${JSON.stringify(panel)})`);
      const first = await page.locator('.column[data-status="todo"] .card').first().boundingBox();
      assert.ok(first.y < 768, 'and so are the cards');
      const fit = await page.evaluate(() => {
        const panel = document.getElementById('cluster');
        return [panel.scrollWidth, panel.clientWidth];
      });
      assert.ok(fit[0] <= fit[1], `the panel does not scroll sideways (${fit})`);
    } finally {
      await page.context().close();
    }
  });

  test('phone: every column one tap away, Term and State shown, a card opens to read', async () => {
    const page = await openBoard(env.browser, url1, { phone: true });
    try {
      await waitForSeq(page, lastSeq, 20000);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
      assert.ok(overflow <= 0, `no sideways page scroll (${overflow} px)`);
      for (const [status, name] of [
        ['done', 'Done'],
        ['in_progress', 'In progress'],
        ['todo', 'To do'],
      ]) {
        await page.getByRole('navigation', { name: 'Columns' }).getByRole('button', { name: new RegExp(`^${name}`) }).tap();
        await page.waitForFunction(
          (s) => {
            const r = document.querySelector(`.column[data-status="${s}"]`).getBoundingClientRect();
            return Math.abs(r.left - document.getElementById('board').getBoundingClientRect().left) < 2;
          },
          status,
          { timeout: 3000 },
        );
        const box = await page.locator(`.column[data-status="${status}"] .card`).first().boundingBox();
        assert.ok(box.x >= 0 && box.x + box.width <= 390 && box.y < 844, `${name}'s first card on screen`);
        assert.ok((await page.evaluate(() => window.scrollY)) < 50, 'without scrolling the page');
      }
      // The cluster table keeps Term and State, and fits.
      for (const name of ['Term', 'State']) {
        const th = page.locator('#cluster thead th', { hasText: name });
        assert.ok(await th.isVisible(), `${name} shown`);
      }
      const fit = await page.evaluate(() => {
        const panel = document.getElementById('cluster');
        return [panel.scrollWidth, panel.clientWidth];
      });
      assert.ok(fit[0] <= fit[1], `the cluster panel does not scroll sideways (${fit})`);

      // Opening a card to read it: no keyboard raised, the long title whole.
      await page.getByRole('navigation', { name: 'Columns' }).getByRole('button', { name: /^In progress/ }).tap();
      const rich = page.locator('#board .card', { hasText: 'memory leak' });
      await rich.scrollIntoViewIfNeeded();
      await rich.tap();
      await page.locator('#task-dialog').waitFor();
      assert.notEqual(await page.evaluate(() => document.activeElement?.id), 'task-title', 'the title is not focused');
      const title = await page.locator('#task-title').evaluate((el) => ({
        value: el.value,
        scrollTop: el.scrollTop,
        scrollLeft: el.scrollLeft,
        overflowY: el.scrollHeight - el.clientHeight,
        overflowX: el.scrollWidth - el.clientWidth,
      }));
      assert.equal(title.value, LONG_TITLE);
      assert.deepEqual([title.scrollTop, title.scrollLeft], [0, 0], 'shown from its start');
      assert.ok(title.overflowY <= 1 && title.overflowX <= 1, `shown whole (${JSON.stringify(title)})`);
      assert.deepEqual(page.problems, []);
    } finally {
      await page.context().close();
    }
  });

  test('a card added far down a long column is scrolled into its column, not the page', async () => {
    const page = await openBoard(env.browser, url1);
    try {
      await waitForSeq(page, lastSeq, 20000);
      const todo = page.locator('.column[data-status="todo"]');
      await todo.locator('.add-open').click();
      await todo.locator('.add-title').fill('At the very end');
      await todo.locator('.add-title').press('Enter');
      const made = todo.locator('.card', { hasText: 'At the very end' });
      await made.waitFor();
      await page.waitForFunction(() => {
        const el = [...document.querySelectorAll('.column[data-status="todo"] .card')].at(-1);
        const list = el.closest('.cards').getBoundingClientRect();
        const r = el.getBoundingClientRect();
        return r.top >= list.top - 1 && r.bottom <= list.bottom + 1;
      });
      assert.equal(await page.evaluate(() => window.scrollY), 0);
      await card(page, await made.getAttribute('data-task-id')).waitFor();
    } finally {
      await page.context().close();
    }
  });
});
