// The cluster panel: every member with its role, term, commit and applied
// index and whether it answers, and which node this page talks to.
//
// Each node's own numbers come from that node's /api/cluster, polled every
// 2 s; the live feed's "cluster" frames update roles and reachability at once.

import { fetchWithTimeout } from './api.js';
import { h } from './util.js';

const POLL_MS = 2000;
const POLL_TIMEOUT_MS = 1500;

export class ClusterPanel extends EventTarget {
  constructor(api, root) {
    super();
    this.api = api;
    this.root = root;
    this.body = root.querySelector('tbody');
    this.summary = root.querySelector('#cluster-summary');
    /** url → {id, url, info, answering, lastSeen, polling} */
    this.nodes = new Map();
    this.pageSeq = 0;
    this.feedState = 'connecting';
    this.timer = null;
  }

  async start() {
    // Learn the members from the node the page came from before anything else.
    await this.pollOne(this.api.current);
    this.render();
    this.pollAll(); // the other members, now that they are known
    this.timer = setInterval(() => this.pollAll(), POLL_MS);
  }

  node(url, id) {
    let n = this.nodes.get(url);
    if (!n) {
      n = { id, url, info: null, answering: null, lastSeen: 0, polling: false, reachable: null };
      this.nodes.set(url, n);
    }
    if (id != null) n.id = id;
    return n;
  }

  learnMembers(info) {
    for (const m of info.members ?? []) {
      const n = this.node(m.url.replace(/\/$/, ''), m.id);
      n.member = m;
    }
    this.api.setMembers(info.members);
  }

  async pollOne(url) {
    const n = this.node(url);
    if (n.polling) return;
    n.polling = true;
    try {
      const res = await fetchWithTimeout(`${url}/api/cluster`, { timeout: POLL_TIMEOUT_MS });
      if (!res.ok) throw new Error(`status ${res.status}`);
      const info = await res.json();
      n.info = info;
      n.id = info.node_id;
      n.answering = true;
      n.lastSeen = Date.now();
      this.learnMembers(info);
    } catch {
      n.answering = false;
    } finally {
      n.polling = false;
    }
  }

  async pollAll() {
    const urls = new Set([...this.nodes.keys(), ...this.api.members.map((m) => m.url), this.api.current]);
    await Promise.all([...urls].map((url) => this.pollOne(url)));
    this.render();
  }

  /** A "cluster" frame from the live feed of node `url`. */
  fromFeed(info, url) {
    const n = this.node(url, info.node_id);
    const before = n.info;
    // Roles, term and leader come from the frame. The indexes only ever grow
    // on one node, so an older number in a frame never replaces a newer one.
    n.info = {
      ...info,
      commit_index: Math.max(info.commit_index ?? 0, before?.commit_index ?? 0),
      applied_index: Math.max(info.applied_index ?? 0, before?.applied_index ?? 0),
    };
    n.answering = true;
    n.lastSeen = Date.now();
    this.learnMembers(info);
    this.render();
  }

  setPage({ seq, feedState }) {
    if (seq != null) this.pageSeq = seq;
    if (feedState) this.feedState = feedState;
    this.renderSummary();
  }

  /** The leader as the node in use sees it, else as any answering node sees it. */
  leader() {
    const current = this.nodes.get(this.api.current)?.info;
    const views = [current, ...[...this.nodes.values()].map((n) => n.answering && n.info)].filter(Boolean);
    const view = views.find((v) => v.leader_id != null);
    return view ? { id: view.leader_id, term: view.term } : null;
  }

  render() {
    const current = this.api.current;
    const viewOfCurrent = this.nodes.get(current)?.info;
    const rows = [...this.nodes.values()]
      .filter((n) => n.id != null)
      .sort((a, b) => a.id - b.id)
      .map((n) => {
        const info = n.info;
        const seenByCurrent = viewOfCurrent?.members?.find((m) => m.id === n.id);
        const isCurrent = n.url === current;
        const down = n.answering === false;
        const role = down ? 'down' : info?.role ?? '…';
        let state = 'up';
        let stateText = 'up';
        let stateTitle = 'answers the page';
        if (down) {
          state = 'down';
          stateText = 'no answer';
          stateTitle = 'does not answer the page';
        } else if (info?.apply_error) {
          state = 'down';
          stateText = 'apply error';
          stateTitle = String(info.apply_error);
        } else if (seenByCurrent && seenByCurrent.reachable === false && !isCurrent) {
          state = 'cut';
          stateText = 'cut off';
          stateTitle = `unreachable from node ${viewOfCurrent.node_id}`;
        }
        const row = h(
          'tr',
          {
            class: [isCurrent && 'is-current', down && 'is-down', role === 'leader' && 'is-leader']
              .filter(Boolean)
              .join(' '),
            dataset: { nodeId: n.id, nodeUrl: n.url, role },
            'aria-current': isCurrent ? 'true' : null,
          },
          h(
            'th',
            { scope: 'row' },
            h('span', { class: `dot dot-${state}`, 'aria-hidden': 'true' }),
            `node ${n.id}`,
            isCurrent ? h('span', { class: 'you', title: 'This page talks to this node' }, 'page') : null,
          ),
          h('td', { class: `role role-${role}` }, role),
          h('td', { class: 'num' }, info?.term ?? '–'),
          h('td', { class: 'num' }, info?.commit_index ?? '–'),
          h('td', { class: 'num' }, info?.applied_index ?? '–'),
          h('td', { class: `state state-${state}`, title: stateTitle }, stateText),
        );
        row.title = n.url;
        return row;
      });
    this.body.replaceChildren(...rows);
    this.renderSummary();
  }

  renderSummary() {
    const leader = this.leader();
    const id = this.api.nodeIdOf(this.api.current);
    this.summary.replaceChildren(
      h('span', null, 'Page uses ', h('strong', null, id != null ? `node ${id}` : this.api.current)),
      h('span', null, `feed ${this.feedState}`),
      h('span', null, `seq ${this.pageSeq}`),
      h('span', null, leader ? `leader node ${leader.id} · term ${leader.term}` : 'no leader known'),
    );
  }
}
