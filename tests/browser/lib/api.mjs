// The REST API from Node, for setting things up and checking the truth.
import { randomUUID } from 'node:crypto';

export async function call(url, method, path, { body, ifMatch, key } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (ifMatch != null) headers['if-match'] = `"${ifMatch}"`;
  headers['idempotency-key'] = key ?? randomUUID();
  const res = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, seq: Number(res.headers.get('x-taskraft-seq')) || null };
}

/** A user made by the admin, with the password `<username>-password-1`. */
export async function makeUser(url, username, role = 'member') {
  const password = `${username}-password-1`;
  const res = await call(url, 'POST', '/api/users', { body: { username, display_name: username, password, role } });
  if (res.status !== 201) throw new Error(`make user ${username}: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, username, password };
}

export async function create(url, task) {
  const res = await call(url, 'POST', '/api/tasks', { body: task });
  if (res.status !== 201) throw new Error(`create ${JSON.stringify(task)}: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body, seq: res.seq };
}

export async function patch(url, id, changes, ifMatch) {
  const res = await call(url, 'PATCH', `/api/tasks/${id}`, { body: changes, ifMatch });
  if (res.status !== 200) throw new Error(`patch ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body, seq: res.seq };
}

/** Every task, all pages. */
export async function list(url) {
  const tasks = [];
  let cursor = null;
  let lastSeq = null;
  do {
    const res = await fetch(`${url}/api/tasks?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (res.status !== 200) throw new Error(`list: ${res.status}`);
    const page = await res.json();
    lastSeq ??= page.last_seq;
    tasks.push(...page.tasks);
    cursor = page.next_cursor;
  } while (cursor);
  return { tasks, lastSeq };
}

export async function get(url, id) {
  const res = await fetch(`${url}/api/tasks/${id}`);
  return { status: res.status, body: res.status === 200 ? await res.json() : null };
}

/** YYYY-MM-DD, `days` from today (local time, as the page computes it). */
export function day(days) {
  const d = new Date();
  d.setDate(d.getDate() + days);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** A board that looks like a team's: several cards per column, labels, people, dates. */
export async function seedBoard(url) {
  const cards = [
    { title: 'Rotate the TLS certificates', status: 'todo', priority: 'urgent', assignee: 'bo', labels: ['ops', 'security'], due_date: day(-2) },
    { title: 'Write the onboarding guide', status: 'todo', priority: 'medium', assignee: 'ana', labels: ['docs'], due_date: day(6),
      description: 'For new team members:\n\n- how to run `scripts/demo`\n- how to read the **cluster panel**\n- where the logs are\n\nSee [the README](https://example.com/readme).' },
    { title: 'Investigate slow board load with 5k cards', status: 'todo', priority: 'high', assignee: 'chen', labels: ['perf'] },
    { title: 'Add CSV export', status: 'todo', priority: 'low', labels: ['feature'] },
    { title: 'Raft snapshots and log compaction', status: 'in_progress', priority: 'high', assignee: 'dmitri', labels: ['raft', 'backend'], due_date: day(3),
      description: 'Snapshot the projection every *N* entries, then truncate the log.\n\n```\nsnapshot_every = 10000\n```' },
    { title: 'Load test: honest 3-node numbers', status: 'in_progress', priority: 'medium', assignee: 'chen', labels: ['perf'], due_date: day(0) },
    { title: 'Dark mode polish', status: 'in_progress', priority: 'low', assignee: 'ana', labels: ['ui'] },
    { title: 'WebSocket live feed with resume', status: 'done', priority: 'high', assignee: 'dmitri', labels: ['backend'], due_date: day(-5) },
    { title: 'Idempotency keys on every write', status: 'done', priority: 'medium', assignee: 'ana', labels: ['api'] },
    { title: 'Kubernetes manifests', status: 'done', priority: 'medium', assignee: 'bo', labels: ['ops'] },
  ];
  const out = [];
  for (const c of cards) out.push(await create(url, c));
  return out;
}
