// Accounts in the board: signing in, who is signed in, what a viewer is not
// offered, actors in a card's history, and a session that ends while a card
// is being edited (the edit is kept, and saved after signing in again), and
// a logout on another node, which closes the live feed (code 4001): the
// board asks to sign in at once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from './lib/api.mjs';
import { openBoard, signIn } from './lib/browser.mjs';
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

const column = (page, status) => page.locator(`#board .column[data-status="${status}"]`);

test('a wrong password is refused in the dialog; the right one shows who is signed in', async () => {
  const page = await openBoard(env.browser, url1, { login: null });
  try {
    await page.waitForSelector('#login-dialog[open]');
    await page.fill('#login-username', env.cluster.admin.username);
    await page.fill('#login-password', 'not the password');
    await page.click('#login-dialog button[type=submit]');
    await eventually(async () => /do not match/.test(await page.textContent('#login-error')), { what: 'the refusal' });
    assert.equal(await page.locator('#login-dialog[open]').count(), 1, 'still asking');
    await signIn(page, env.cluster.admin);
    await page.waitForSelector('#app[data-live="true"]');
    assert.match(await page.textContent('#who'), /admin/);
    assert.equal(await page.getAttribute('body', 'data-role'), 'admin');
  } finally {
    await page.context().close();
  }
});

test('a viewer reads the board but is offered no way to change it', async () => {
  const created = await api.call(url1, 'POST', '/api/users', {
    body: { username: 'vera', display_name: 'Vera Viewer', password: 'vera-reads-only-1', role: 'viewer' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const task = await api.create(url1, { title: 'Read me, do not move me' });
  const page = await openBoard(env.browser, url2, { login: { username: 'vera', password: 'vera-reads-only-1' } });
  try {
    await page.locator(`.card[data-task-id="${task.id}"]`).waitFor();
    assert.match(await page.textContent('#who'), /Vera Viewer/);
    assert.equal(await column(page, 'todo').locator('.add-open').isVisible(), false, 'no "add a card"');
    await page.click(`.card[data-task-id="${task.id}"]`);
    await page.locator('#task-dialog').waitFor();
    assert.equal(await page.locator('#task-save').isVisible(), false, 'no Save');
    assert.equal(await page.locator('#task-delete').isVisible(), false, 'no Delete');
    assert.equal(await page.locator('#task-title').getAttribute('readonly'), '', 'the title is read-only');
  } finally {
    await page.context().close();
  }
});

test('a session that ends while a card is edited: sign in again, the edit is saved', async () => {
  const task = await api.create(url1, { title: 'Edit me across a sign-in' });
  const page = await openBoard(env.browser, url1);
  try {
    await page.click(`.card[data-task-id="${task.id}"]`);
    await page.locator('#task-dialog').waitFor();
    await page.fill('#task-title', 'Edited, then signed in again');
    // The session ends behind the page's back (as a logout in another tab does).
    const ended = await page.evaluate(async () => {
      const { csrf } = await (await fetch('/api/session')).json();
      return (await fetch('/api/session', { method: 'DELETE', headers: { 'x-taskraft-csrf': csrf } })).status;
    });
    assert.equal(ended, 204);
    // The node closes the live feed: the board asks at once, over the card.
    await page.waitForSelector('#login-dialog[open]');
    assert.match(await page.textContent('#login-error'), /Signed out \(the session was logged out\)/);
    assert.equal(await page.inputValue('#task-title'), 'Edited, then signed in again', 'the edit is still there');
    await signIn(page, env.cluster.admin);
    await page.click('#task-save');
    await page.locator('#task-dialog').waitFor({ state: 'hidden' });
    await eventually(async () => (await api.get(url2, task.id)).body?.title === 'Edited, then signed in again', {
      what: 'the edit saved',
    });
    // The card's history names who changed it.
    await page.click(`.card[data-task-id="${task.id}"]`);
    await page.locator('#task-dialog').waitFor();
    await eventually(async () => (await page.locator('#history-list .actor').count()) >= 2, { what: 'actors in history' });
    const actors = await page.locator('#history-list .actor').allTextContents();
    assert.ok(actors.some((a) => /by admin/.test(a)), JSON.stringify(actors));
  } finally {
    await page.context().close();
  }
});

test('the assignee field offers the users by name, and a card is given to one', async () => {
  const created = await api.call(url1, 'POST', '/api/users', {
    body: { username: 'bob', display_name: 'Bob Builder', password: 'bob-builds-things-1', role: 'member' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const task = await api.create(url1, { title: 'Give me to Bob' });
  const page = await openBoard(env.browser, url2);
  try {
    await page.click(`.card[data-task-id="${task.id}"]`);
    await page.locator('#task-dialog').waitFor();
    await page.focus('#task-assignee');
    const bob = page.locator('#people option[value="bob"]');
    await eventually(async () => (await bob.count()) === 1, { what: 'bob offered' });
    assert.equal(await bob.getAttribute('label'), 'Bob Builder');
    assert.equal(await page.locator('#people option[value="admin"]').count(), 1, 'the admin too');
    await page.fill('#task-assignee', 'bob');
    await page.click('#task-save');
    await page.locator('#task-dialog').waitFor({ state: 'hidden' });
    await eventually(
      async () => (await api.get(url1, task.id)).body?.assignee === 'bob',
      { what: 'the card assigned to bob' },
    );
  } finally {
    await page.context().close();
  }
});

test('a logout on another node closes the live feed and the board asks to sign in', async () => {
  const page = await openBoard(env.browser, url1);
  try {
    // The page's own session, logged out through node 2 (as another tab on
    // another node would): the cookie is HttpOnly, so the test reads it
    // from the browser.
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'taskraft_session');
    assert.ok(session, JSON.stringify(cookies.map((c) => c.name)));
    const cookie = `taskraft_session=${session.value}`;
    // (`authorization: 'none'`: without the harness's service token.)
    const headers = { cookie, authorization: 'none' };
    const who = await fetch(`${url2}/api/session`, { headers });
    assert.equal(who.status, 200);
    const { csrf, user } = await who.json();
    assert.equal(user.username, env.cluster.admin.username);
    const out = await fetch(`${url2}/api/session`, { method: 'DELETE', headers: { ...headers, 'x-taskraft-csrf': csrf } });
    assert.equal(out.status, 204);
    await page.waitForSelector('#login-dialog[open]', { timeout: 5000 });
    assert.match(await page.textContent('#login-error'), /Signed out \(the session was logged out\)/);
    // Signed in again, the feed is live again and carries new events.
    await signIn(page, env.cluster.admin);
    await page.waitForSelector('#app[data-live="true"]', { timeout: 10000 });
    const task = await api.create(url2, { title: 'After signing in again' });
    await page.locator(`.card[data-task-id="${task.id}"]`).waitFor({ timeout: 10000 });
  } finally {
    await page.context().close();
  }
});
