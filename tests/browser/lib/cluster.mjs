// A real taskraft cluster for a test: `taskraft demo --fresh` in a temporary
// directory on free ports, its node URLs and PIDs parsed from its output,
// stopped by PID (SIGINT to the demo, which stops its nodes and MariaDB).
// A node the test killed can be started again with the settings the demo
// gave it (the demo itself does not restart nodes); the test then owns
// that process and stops it by PID.
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.TASKRAFT_BIN ?? join(REPO, 'target/debug/taskraft');

const live = new Set();
process.on('exit', () => {
  // Last resort if a test died without stopping its cluster.
  for (const cluster of live) cluster.killNow();
});

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
    const ports = [];
    for (let i = 0; i < nodes; i++) ports.push(base + i, base + 1000 + i);
    // `--lab` serves its page on base + 90 and a relay per node on
    // base + 2000 + i, and a node the lab adds takes the next ports.
    if (lab) {
      ports.push(base + 90, base + nodes, base + 1000 + nodes);
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startCluster({ nodes = 3, lab = false } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'taskraft-board-'));
  const base = await freeBase(nodes, lab);
  const args = ['demo', '--fresh', '--dir', dir, '--http-port', String(base), '--nodes', String(nodes)];
  if (lab) args.push('--lab');
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
    // The demo's own children; a node the test restarted keeps its new PID.
    for (const m of output.matchAll(/node (\d+) pid (\d+)/g)) if (!pids.has(Number(m[1]))) pids.set(Number(m[1]), Number(m[2]));
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exited = null;
  const exit = new Promise((r) => child.once('exit', (code, signal) => r((exited = { code, signal }))));

  const restarted = new Map(); // id → ChildProcess started by the test
  const cluster = {
    dir,
    base,
    child,
    restarted,
    get output() {
      return output;
    },
    /** `--lab` only: the lab page's URL, as the demo printed it. */
    get labUrl() {
      return labUrl;
    },
    nodes: [],
    killed: new Set(),
    paused: new Set(),
    url(id) {
      return urls.get(id);
    },
    pid(id) {
      return pids.get(id);
    },
    /** SIGKILL one node (kill -9). */
    kill(id) {
      process.kill(pids.get(id), 'SIGKILL');
      this.killed.add(id);
    },
    /** SIGSTOP: the node hangs, its sockets stay open. */
    pause(id) {
      process.kill(pids.get(id), 'SIGSTOP');
      this.paused.add(id);
    },
    resume(id) {
      if (!this.paused.delete(id)) return;
      try {
        process.kill(pids.get(id), 'SIGCONT');
      } catch {
        // gone
      }
    },
    /**
     * Starts a killed node again on its data, with the settings the demo
     * started it with, and waits until it is ready.
     */
    async restart(id) {
      const mysqlPort = /private server on 127\.0\.0\.1:(\d+)/.exec(output)?.[1];
      if (!mysqlPort) throw new Error(`no MySQL port in the demo's output:\n${output}`);
      const http = base + id - 1;
      const raft = base + 1000 + id - 1;
      const peers = this.nodes.map((n) => `${n.id}=127.0.0.1:${base + 1000 + n.id - 1}`).join(',');
      // A killed process lingers a moment: wait until its port is free.
      const url = urls.get(id);
      for (let tries = 0; ; tries++) {
        try {
          await fetch(`${url}/healthz`);
        } catch {
          break;
        }
        if (tries > 100) throw new Error(`node ${id} still answers; kill it first`);
        await sleep(50);
      }
      const log = openSync(join(dir, `n${id}.log`), 'a');
      const node = spawn(BIN, ['serve'], {
        env: {
          ...process.env,
          TASKRAFT_NODE_ID: String(id),
          TASKRAFT_HTTP_ADDR: `127.0.0.1:${http}`,
          TASKRAFT_RAFT_ADDR: `127.0.0.1:${raft}`,
          TASKRAFT_PEERS: peers,
          TASKRAFT_MYSQL_URL: `mysql://root@127.0.0.1:${mysqlPort}/taskraft_demo_n${id}`,
          TASKRAFT_DATA_DIR: join(dir, `n${id}`),
          TASKRAFT_HTTP_WORKERS: '1',
          // The secret the demo made for its nodes: peers refuse a node without it.
          TASKRAFT_CLUSTER_SECRET: readFileSync(join(dir, 'cluster-secret'), 'utf8').trim(),
        },
        stdio: ['ignore', log, log],
      });
      restarted.set(id, node);
      pids.set(id, node.pid);
      this.killed.delete(id);
      const deadline = Date.now() + 60000;
      for (;;) {
        if (node.exitCode !== null) throw new Error(`node ${id} exited on restart (${node.exitCode})`);
        if (Date.now() > deadline) throw new Error(`node ${id} not ready after its restart`);
        try {
          if ((await fetch(`${url}/readyz`)).status === 200) break;
        } catch {
          // not listening yet
        }
        await sleep(100);
      }
      const entry = this.nodes.find((n) => n.id === id);
      if (entry) entry.pid = node.pid;
    },
    killNow() {
      for (const node of restarted.values()) {
        try {
          node.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
      for (const pid of pids.values()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    },
    async stop() {
      live.delete(cluster);
      for (const id of [...this.paused]) this.resume(id);
      for (const node of restarted.values()) {
        if (node.exitCode === null) {
          node.kill('SIGTERM');
          await Promise.race([new Promise((r) => node.once('exit', r)), sleep(15000)]);
          if (node.exitCode === null) node.kill('SIGKILL');
        }
      }
      if (exited === null) {
        child.kill('SIGINT');
        let timer;
        const done = await Promise.race([exit, new Promise((r) => (timer = setTimeout(() => r(null), 20000)))]);
        clearTimeout(timer);
        if (done === null) this.killNow();
      }
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
  live.add(cluster);

  try {
    const deadline = Date.now() + 90000;
    while (pids.size < nodes || urls.size < nodes || (lab && !labUrl)) {
      if (exited) throw new Error(`taskraft demo exited (${JSON.stringify(exited)}):\n${output}`);
      if (Date.now() > deadline) throw new Error(`taskraft demo did not print its nodes:\n${output}`);
      await sleep(100);
    }
    cluster.nodes = [...urls.keys()].sort((a, b) => a - b).map((id) => ({ id, url: urls.get(id), pid: pids.get(id) }));
    for (const { url } of cluster.nodes) {
      for (;;) {
        if (exited) throw new Error(`taskraft demo exited:\n${output}`);
        if (Date.now() > deadline) throw new Error(`${url}/readyz never answered 200:\n${output}`);
        try {
          const res = await fetch(`${url}/readyz`);
          if (res.status === 200) break;
        } catch {
          // not listening yet
        }
        await sleep(150);
      }
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
