// Headless Chromium (Debian's /usr/bin/chromium; Playwright never downloads a browser).
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/**
 * A new page on `url` (the board of one node), waiting until its live feed is
 * up. The page records its console errors, uncaught errors and any native
 * dialog (alert/confirm/prompt), which no test expects.
 */
/** Who pages sign in as unless told otherwise (set by the harness). */
let defaultLogin = null;
export function setDefaultLogin(login) {
  defaultLogin = login;
}

export async function openBoard(
  browser,
  url,
  { query = '', viewport = { width: 1440, height: 900 }, colorScheme = 'light', phone = false, login = defaultLogin ?? undefined } = {},
) {
  // A phone: touch, a coarse pointer and its viewport.
  const device = phone ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } : { viewport };
  const context = await browser.newContext({ ...device, colorScheme });
  const page = await context.newPage();
  page.problems = [];
  page.dialogs = [];
  page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
  });
  page.on('dialog', async (dialog) => {
    page.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  await page.goto(`${url.replace(/\/$/, '')}/${query}`);
  // `login: null`: the test signs in itself (the page waits in the dialog).
  if (login === null) return page;
  if (login) {
    await signIn(page, login);
    // Asking who is signed in before anyone is answers 401, which Chrome
    // logs as an error: expected, and not what the tests look for.
    page.problems = page.problems.filter((p) => !p.includes('status of 401'));
  }
  await page.waitForSelector('#app[data-live="true"]', { timeout: 20000 });
  return page;
}

/** Signs in through the board's dialog, once it asks. */
export async function signIn(page, { username, password }) {
  await page.waitForSelector('#login-dialog[open]', { timeout: 20000 });
  await page.fill('#login-username', username);
  await page.fill('#login-password', password);
  await page.click('#login-dialog button[type=submit]');
  await page.waitForSelector('#login-dialog', { state: 'hidden', timeout: 20000 });
}

/**
 * How long a change made through one node may take to show on a page of
 * another: about 100 ms here, but on a loaded two-core CI machine a page
 * may judge its node stalled and move to another first. These tests check
 * that changes arrive, not how fast: loadtest/ and the logged figures do.
 * LIVE_MS=3000 in the environment makes a slow arrival fail.
 */
export const LIVE_MS = Number(process.env.LIVE_MS ?? 10000);

/**
 * Waits up to LIVE_MS for `locator`; if it never shows, fails saying what
 * each of `pages` ({name: page}) showed then: its connection header, seq
 * and the text of `also` (a selector, e.g. a dialog's error), if any.
 */
export async function seenLive(locator, pages, also = null) {
  try {
    await locator.waitFor({ timeout: LIVE_MS });
  } catch (err) {
    const seen = {};
    for (const [name, page] of Object.entries(pages)) {
      seen[name] = await page
        .evaluate((sel) => {
          const text = (el) => (el && !el.hidden ? el.textContent.trim() : null);
          return {
            conn: text(document.getElementById('conn')),
            seq: document.getElementById('app')?.dataset.seq,
            also: sel ? text(document.querySelector(sel)) : null,
          };
        }, also)
        .catch((e) => String(e));
    }
    err.message += `\nthe pages then: ${JSON.stringify(seen)}`;
    throw err;
  }
}

/** Wait until the page has applied every event up to `seq`. */
export async function waitForSeq(page, seq, timeout = 10000) {
  await page.waitForFunction(
    (want) => Number(document.getElementById('app').dataset.seq) >= want,
    seq,
    { timeout },
  );
}

/** The task ids of the cards the page shows, in DOM order. */
export function cardIds(page) {
  return page.$$eval('#board .card[data-task-id]', (els) => els.map((el) => el.dataset.taskId));
}

export const card = (page, id) => page.locator(`#board .card[data-task-id="${id}"]`);

/**
 * No error in the page and no alert/confirm/prompt. Chrome logs every 4xx
 * answer as a console error: the statuses in `allowStatus` are expected.
 */
export function assertClean(page, { allowStatus = [] } = {}) {
  const expected = (p) => allowStatus.some((status) => p.includes(`status of ${status} `));
  assert.deepEqual(page.problems.filter((p) => !expected(p)), [], 'no errors in the page');
  assert.deepEqual(page.dialogs, [], 'no alert/confirm/prompt');
}
