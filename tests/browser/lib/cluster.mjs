// A real taskraft cluster for a test, from the project's shared harness:
// `testbed-cluster` (tests/testbed) starts a private MariaDB and the nodes,
// waits for an agreed leader and prints them as one JSON line; it then takes
// commands on its stdin (restart, stop) and every process it started dies
// with it. kill/pause/resume are signals sent here, by PID, at once.
//
// `--lab` clusters are `taskraft demo --lab --fresh` itself (the lab is a
// feature of the demo), its URLs parsed from its output, stopped with SIGINT.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.TASKRAFT_BIN ?? join(REPO, 'target/debug/taskraft');
export const TESTBED = process.env.TASKRAFT_TESTBED ?? join(REPO, 'target/debug/testbed-cluster');

const live = new Set();
process.on('exit', () => {
  // Last resort if a test died without stopping its cluster.
  for (const cluster of live) cluster.killNow();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Sends `sig` to a PID or a ChildProcess, if it is still there. */
function signalQuietly(target, sig) {
  try {
    if (typeof target === 'number') process.kill(target, sig);
    else target.kill(sig);
  } catch {
    // already gone
  }
}

/** Asks a child to stop (`ask()`), waits for `exit` up to `ms`, then SIGKILLs what is left (`killNow()`). */
async function stopChild(exit, ask, ms, killNow) {
  ask();
  let timer;
  const done = await Promise.race([exit, new Promise((r) => (timer = setTimeout(() => r(null), ms)))]);
  clearTimeout(timer);
  if (done === null) killNow();
}

/** Signals that act at once, by PID; `nodes[i].pid` follows restarts. */
function signals(cluster) {
  return {
    killed: new Set(),
    paused: new Set(),
    pid(id) {
      return cluster.nodes.find((n) => n.id === id)?.pid;
    },
    /** SIGKILL one node (kill -9). */
    kill(id) {
      process.kill(this.pid(id), 'SIGKILL');
      this.killed.add(id);
    },
    /** SIGSTOP: the node hangs, its sockets stay open. */
    pause(id) {
      process.kill(this.pid(id), 'SIGSTOP');
      this.paused.add(id);
    },
    resume(id) {
      if (this.paused.delete(id)) signalQuietly(this.pid(id), 'SIGCONT');
    },
  };
}

/** `env`: more `KEY=VALUE` settings for every node (`{url}`: the node's own URL). */
export async function startCluster({ nodes = 3, lab = false, env = [] } = {}) {
  return lab ? startDemo(nodes) : startTestbed(nodes, env);
}

/**
 * The nodes run with accounts on, as `serve` does by default. What these
 * tests do from Node (seeding, checking the truth) they do as the cluster's
 * admin-level service token: every `fetch` to a node carries it unless the
 * test sets its own `Authorization` (or asks for none with `authorization:
 * 'none'`). The pages sign in as the first admin (`cluster.admin`).
 */
let serviceToken = null;
const plainFetch = globalThis.fetch;
globalThis.fetch = (url, init = {}) => {
  const headers = new Headers(init.headers ?? {});
  if (headers.get('authorization') === 'none') headers.delete('authorization');
  else if (serviceToken && !headers.has('authorization')) headers.set('authorization', `Bearer ${serviceToken}`);
  return plainFetch(url, { ...init, headers });
};

async function startTestbed(nodes, env = []) {
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const extra = env.flatMap((pair) => ['--env', pair]);
  const child = spawn(TESTBED, ['--nodes', String(nodes), '--bin', BIN, '--auth', password, ...extra], {
    env: process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (buf) => (output += buf.toString()));
  let exited = null;
  const exit = new Promise((r) => child.once('exit', (code, signal) => r((exited = { code, signal }))));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (what) => {
    const line = await Promise.race([lines.next(), exit.then(() => ({ done: true }))]);
    if (line.done) throw new Error(`testbed-cluster exited (${JSON.stringify(exited)}) waiting for ${what}:\n${output}`);
    output += `${line.value}\n`;
    return JSON.parse(line.value);
  };
  // One command at a time, each answered by one line.
  let queue = Promise.resolve();
  const send = (command) => {
    const answer = queue.then(async () => {
      child.stdin.write(`${command}\n`);
      const reply = await next(command);
      if (!reply.ok) throw new Error(`${command}: ${reply.error}`);
      return reply;
    });
    queue = answer.catch(() => {});
    return answer;
  };

  const cluster = {
    child,
    dir: null,
    nodes: [],
    get output() {
      return output;
    },
    labUrl: null,
    url(id) {
      return this.nodes.find((n) => n.id === id)?.url;
    },
    /** Starts a stopped node again on its data and waits until it is ready. */
    async restart(id) {
      const { pid } = await send(`restart ${id}`);
      this.nodes.find((n) => n.id === id).pid = pid;
      this.killed.delete(id);
      this.paused.delete(id);
    },
    killNow() {
      // The nodes and the server die with it.
      signalQuietly(child, 'SIGKILL');
    },
    async stop() {
      live.delete(cluster);
      for (const id of [...this.paused]) this.resume(id);
      if (exited === null) await stopChild(exit, () => child.stdin.end('stop\n'), 60000, () => this.killNow());
    },
  };
  Object.assign(cluster, signals(cluster));
  live.add(cluster);
  try {
    const ready = await next('the cluster');
    cluster.dir = ready.dir;
    cluster.nodes = ready.nodes;
    cluster.admin = ready.admin;
    serviceToken = ready.api_token;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

function portFree(port) {
  return new Promise((ok) => {
    const srv = net.createServer();
    srv.once('error', () => ok(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok(true)));
  });
}

/** A base port whose nodes' HTTP ports (base+i) and Raft ports (base+1000+i) are free (and the lab's). */
async function freeBase(nodes, lab = false) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 700) * 10;
    const ports = [base + 90];
    for (let i = 0; i < nodes; i++) ports.push(base + i, base + 1000 + i);
    // The lab serves its page on base + 90; `--lab` adds a relay per node on
    // base + 2000 + i, and a node the lab adds takes the next ports.
    if (lab) {
      ports.push(base + nodes, base + 1000 + nodes);
      for (let i = 0; i <= nodes; i++) ports.push(base + 2000 + i);
    }
    let ok = true;
    for (const p of ports) {
      if (!(await portFree(p))) {
        ok = false;
        break;
      }
    }
    if (ok) return base;
  }
  throw new Error('no free ports');
}

async function startDemo(nodes) {
  const dir = await mkdtemp(join(tmpdir(), 'taskraft-board-'));
  const base = await freeBase(nodes, true);
  const args = ['demo', '--lab', '--fresh', '--dir', dir, '--http-port', String(base), '--nodes', String(nodes)];
  const child = spawn(BIN, args, {
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let labUrl = null;
  const urls = new Map();
  const pids = new Map();
  const onData = (buf) => {
    output += buf.toString();
    for (const m of output.matchAll(/node (\d+)\s+board\s+(http\S+)/g)) urls.set(Number(m[1]), m[2].replace(/\/$/, ''));
    labUrl ??= /^lab {2}(http\S+)$/m.exec(output)?.[1] ?? null;
    for (const m of output.matchAll(/node (\d+) pid (\d+)/g)) pids.set(Number(m[1]), Number(m[2]));
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exited = null;
  const exit = new Promise((r) => child.once('exit', (code, signal) => r((exited = { code, signal }))));

  const cluster = {
    dir,
    child,
    nodes: [],
    get output() {
      return output;
    },
    /** The lab page's URL, as the demo printed it. */
    get labUrl() {
      return labUrl;
    },
    url(id) {
      return urls.get(id);
    },
    async restart() {
      throw new Error('a --lab cluster restarts its nodes from the lab page');
    },
    killNow() {
      for (const pid of pids.values()) signalQuietly(pid, 'SIGKILL');
      signalQuietly(child, 'SIGKILL');
    },
    async stop() {
      live.delete(cluster);
      for (const id of [...this.paused]) this.resume(id);
      if (exited === null) await stopChild(exit, () => child.kill('SIGINT'), 20000, () => this.killNow());
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
  Object.assign(cluster, signals(cluster));
  live.add(cluster);

  try {
    const deadline = Date.now() + 90000;
    while (pids.size < nodes || urls.size < nodes || !labUrl) {
      if (exited) throw new Error(`taskraft demo exited (${JSON.stringify(exited)}):\n${output}`);
      if (Date.now() > deadline) throw new Error(`taskraft demo did not print its nodes:\n${output}`);
      await sleep(100);
    }
    cluster.nodes = [...urls.keys()].sort((a, b) => a - b).map((id) => ({ id, url: urls.get(id), pid: pids.get(id) }));
    // The demo prints the first admin's login and keeps the service token
    // it gives the nodes (and the lab) in its directory.
    const login = /^\s*login\s+user (\S+)\s+password (\S+)$/m.exec(output);
    if (login) cluster.admin = { username: login[1], password: login[2] };
    serviceToken = (await readFile(join(dir, 'api-token'), 'utf8').catch(() => '')).trim() || null;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
