// Importing a board (issue 19), in a real Chromium against a real 3-node
// cluster: the sample Trello export chosen in the New board dialog, its
// progress bar filling, and the board it made opened with Trello's lists
// as columns; a malformed file refused with where it goes wrong.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { axeViolations } from './lib/axe.mjs';
import { openBoard } from './lib/browser.mjs';
import { ARTIFACTS, REPO, eventually, setUp, tearDown } from './lib/harness.mjs';

const TRELLO = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'trello', 'board.json');

let env;
let url;

before(async () => {
  env = await setUp();
  url = env.cluster.nodes[1].url;
});

after(async () => {
  await tearDown(env);
});

/** Saves a screenshot in the artifacts, and (UPDATE_DOCS_SCREENSHOT=1) in docs/ for the README. */
async function shoot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name) });
  if (process.env.UPDATE_DOCS_SCREENSHOT) {
    await mkdir(join(REPO, 'docs'), { recursive: true });
    await copyFile(join(ARTIFACTS, name), join(REPO, 'docs', name));
  }
}

const shownColumns = (page) => page.$$eval('#board .column .column-name', (els) => els.map((e) => e.textContent));

async function openImport(page) {
  await page.selectOption('#board-select', { label: 'New board…' });
  await page.locator('#board-dialog').waitFor({ state: 'visible' });
  await page.locator('#board-import summary').click();
}

describe('import', () => {
  test('the sample Trello export, with its progress bar, opens as a board', async () => {
    const page = await openBoard(env.browser, url);
    try {
      const before = await page.$eval('#app', (el) => el.dataset.board);
      await openImport(page);
      assert.deepEqual(await axeViolations(page), [], 'no accessibility violations in the dialog');
      await page.setInputFiles('#import-file', TRELLO);
      assert.equal(await page.inputValue('#import-format'), 'trello');
      await shoot(page, 'import.png');
      // Watch the bar: it shows, and its value moves before the board opens.
      const seen = page.evaluate(
        () =>
          new Promise((resolve) => {
            const bar = document.getElementById('import-progress');
            const values = new Set();
            const timer = setInterval(() => {
              if (!bar.hidden && bar.hasAttribute('value')) values.add(Number(bar.value));
              if (document.getElementById('board-dialog').open === false) {
                clearInterval(timer);
                resolve([...values]);
              }
            }, 5);
          }),
      );
      await page.locator('#import-go').focus();
      await page.keyboard.press('Enter');
      const values = await seen;
      assert.ok(values.length >= 1, `the bar showed progress: ${values}`);
      await eventually(async () => (await page.$eval('#app', (el) => el.dataset.board)) !== before, { what: 'the new board opened', timeout: 30000 });
      await eventually(async () => JSON.stringify(await shownColumns(page)) === JSON.stringify(['Backlog', 'To Do', 'Doing', 'Review ✅', 'Done']), {
        what: 'Trello’s lists as columns',
      });
      assert.equal(await page.locator('#board-select option:checked').textContent(), 'Website relaunch');
      await page.locator('#board .card', { hasText: 'Set up the staging server' }).waitFor();
      await page.locator('#export-menu summary').click();
      await page.waitForTimeout(300); // the new cards' flash fades a little
      await shoot(page, 'export.png');
      assert.deepEqual(page.problems, [], 'no errors in the page');
    } finally {
      await page.context().close();
    }
  });

  test('a malformed file is refused with where it goes wrong', async () => {
    const page = await openBoard(env.browser, url);
    try {
      const dir = await mkdtemp(join(tmpdir(), 'taskraft-import-'));
      const bad = join(dir, 'cards.csv');
      await writeFile(bad, 'title,priority\nfine,low\nbad,someday\n');
      await openImport(page);
      await page.setInputFiles('#import-file', bad);
      assert.equal(await page.inputValue('#import-format'), 'csv', 'the format follows the file name');
      await page.click('#import-go');
      await eventually(async () => /Not imported \(line 3, column priority\)/.test(await page.textContent('#import-status')), {
        what: 'the refusal, with its line',
      });
      assert.equal(await page.locator('#import-progress').isHidden(), true);
      assert.deepEqual(page.problems.filter((p) => !p.includes('status of 400')), [], 'no errors in the page');
    } finally {
      await page.context().close();
    }
  });
});
