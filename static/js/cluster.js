// The cluster panel: every member with its role, term, commit and applied
// index and whether it answers, and which node this page talks to.
//
// The page's node pushes its view of the cluster over the live feed
// ("cluster" frames) the moment its leader, a role or a member's
// reachability changes; that view drives the panel. Each node's own numbers
// (term, indexes, its own role) come from its /api/cluster: asked again at
// once after a leader change, within a second or two of the board changing
// (at most every 2 s), every 5 s otherwise, and ever less often for a node
// that does not answer (2 s, 4 s, … 30 s).
//
// One consistent view at a time: the summary and every row are drawn
// together from the reports in hand, and the leader is the one of the
// newest term any of them knows. A report from an older term is shown as the
// node's last numbers, never as its role; the role then follows the newest
// view (Raft has at most one leader per term, so the two cannot disagree).

import { fetchWithTimeout, normalUrl } from './api.js';
import { h } from './util.js';

const POLL_TIMEOUT_MS = 1500;
/** Each node's own numbers, while it answers. */
const POLL_EVERY_MS = 5000;
/** While the board changes, the indexes move: at most this often. */
const POLL_BUSY_MS = 2000;
/** The page's node without its feed (the frames' fallback). */
const POLL_PAGE_FALLBACK_MS = 2000;
/** A node that does not answer is asked again after 2 s, 4 s, … at most this. */
const BACKOFF_MAX_MS = 30000;
const CHECK_EVERY_MS = 250;

/** How a role reads in the table. */
const ROLE_TEXT = { pre_candidate: 'pre-candidate' };

export class ClusterPanel extends EventTarget {
  constructor(api, root) {
    super();
    this.api = api;
    this.root = root;
    this.body = root.querySelector('tbody');
    this.summary = root.querySelector('#cluster-summary');
    /** id → {id, url, report, at, answering, failures, nextPoll, polling} */
    this.nodes = new Map();
    this.pageSeq = 0;
    this.feedState = 'connecting';
    this.timer = null;
    /** The last (leader, term) drawn, to refresh every node's numbers when it changes. */
    this.shownLeadership = '';
  }

  async start() {
    // The node the page came from names the others.
    const report = await this.fetchReport(this.api.current);
    if (report) this.take(report, this.api.current, 'poll');
    this.render();
    this.timer = setInterval(() => this.pollDue(), CHECK_EVERY_MS);
  }

  /** The entry for member `id`, created on first sight. */
  node(id) {
    let n = this.nodes.get(id);
    if (!n) {
      n = { id, url: null, report: null, at: 0, polledAt: 0, answering: null, failures: 0, nextPoll: 0, polling: false };
      this.nodes.set(id, n);
    }
    return n;
  }

  /** Take a node's own report (a frame from the page's node, or a poll). */
  take(report, url, source) {
    if (!report || !Number.isInteger(report.node_id)) return;
    const n = this.node(report.node_id);
    const before = n.report;
    n.url = normalUrl(url) ?? n.url;
    n.report = report;
    n.at = Date.now();
    n.answering = true;
    n.failures = 0;
    if (source === 'feed' || source === 'poll') n.nextPoll = Date.now() + this.pollEvery(n);
    for (const m of Array.isArray(report.members) ? report.members : []) {
      if (!Number.isInteger(m?.id)) continue;
      const member = this.node(m.id);
      const known = normalUrl(m.url);
      if (known && !member.url) member.url = known;
      // A member this peer reaches again (it did not a moment ago) is worth
      // asking at once, whatever its backoff.
      const was = before?.members?.find?.((o) => o?.id === m.id);
      if (m.reachable && was?.reachable === false && member.answering === false) member.nextPoll = 0;
    }
    this.api.setMembers(report.members);
  }

  pollEvery(n) {
    if (n.url === this.api.current && this.feedState !== 'live') return POLL_PAGE_FALLBACK_MS;
    return POLL_EVERY_MS;
  }

  async fetchReport(url) {
    try {
      const res = await fetchWithTimeout(`${url}/api/cluster`, { timeout: POLL_TIMEOUT_MS });
      if (!res.ok) return null;
      return await res.json();
    } catch {
      return null;
    }
  }

  async poll(n) {
    if (n.polling || !n.url) return;
    n.polling = true;
    n.polledAt = Date.now();
    const report = await this.fetchReport(n.url);
    n.polling = false;
    if (report && report.node_id === n.id) {
      this.take(report, n.url, 'poll');
      if (n.url === this.api.current) this.dispatchEvent(new CustomEvent('view', { detail: { view: report, node: n.url } }));
    } else {
      n.answering = false;
      n.failures++;
      n.nextPoll = Date.now() + Math.min(BACKOFF_MAX_MS, 2000 * 2 ** (n.failures - 1));
    }
    this.render();
  }

  pollDue() {
    const now = Date.now();
    for (const n of this.nodes.values()) {
      if (n.url && !n.polling && n.nextPoll <= now) this.poll(n);
    }
  }

  /** A "cluster" frame from the live feed of node `url`. */
  fromFeed(info, url) {
    this.take(info, url, 'feed');
    this.render();
  }

  setPage({ seq, feedState }) {
    if (seq != null && seq !== this.pageSeq) {
      this.pageSeq = seq;
      // The board changed, so did every node's indexes: ask soon.
      for (const n of this.nodes.values()) {
        if (n.answering !== false) n.nextPoll = Math.min(n.nextPoll, Math.max(Date.now() + 500, n.polledAt + POLL_BUSY_MS));
      }
    }
    if (feedState && feedState !== this.feedState) {
      this.feedState = feedState;
      // Without the feed, the page's node is polled as a fallback.
      for (const n of this.nodes.values()) {
        if (n.url === this.api.current) n.nextPoll = Math.min(n.nextPoll, Date.now() + this.pollEvery(n));
      }
    }
    this.renderSummary(this.model());
  }

  /** The panel's content, from the reports in hand, consistent with itself. */
  model() {
    const current = this.api.current;
    const nodes = [...this.nodes.values()];
    const answering = nodes.filter((n) => n.report && n.answering !== false);
    const pageNode = nodes.find((n) => n.url === current) ?? null;
    // The newest view: highest term; the page's node's first, then the freshest.
    const views = answering
      .map((n) => ({ n, term: Number(n.report.term) || 0 }))
      .sort((a, b) => b.term - a.term || (b.n === pageNode) - (a.n === pageNode) || b.n.at - a.n.at);
    const newest = views[0]?.n.report ?? null;
    const term = newest ? Number(newest.term) || 0 : null;
    let leader = newest?.leader_id ?? null;
    if (leader == null && term != null) {
      // Someone of that term may already say it leads (at most one can).
      leader = answering.find((n) => n.report.term === term && n.report.role === 'leader')?.id ?? null;
    }
    const members = new Map();
    for (const m of Array.isArray(newest?.members) ? newest.members : []) if (Number.isInteger(m?.id)) members.set(m.id, m);
    const pageView = pageNode?.report ?? null;
    const rows = nodes
      .filter((n) => members.has(n.id) || n.report)
      .sort((a, b) => a.id - b.id)
      .map((n) => {
        const own = n.report;
        const fresh = own && n.answering !== false && own.term === term;
        const member = members.get(n.id);
        let role;
        if (n.answering === false) role = 'down';
        else if (fresh) role = own.role;
        else if (n.id === leader) role = 'leader';
        else role = member?.role === 'learner' ? 'learner' : 'follower';
        if (fresh && own.role === 'follower' && member?.role === 'learner') role = 'learner';
        const seen = pageView?.members?.find?.((m) => m?.id === n.id);
        let state = 'up';
        if (n.answering === false) state = 'down';
        else if (own?.apply_error) state = 'error';
        else if (seen && seen.reachable === false && n.url !== current) state = 'cut';
        return { n, own, fresh, role, state, isCurrent: n.url === current, viewer: pageView?.node_id };
      });
    return { rows, leader, term, pageId: pageNode?.id ?? null };
  }

  render() {
    const model = this.model();
    const rows = model.rows.map(({ n, own, fresh, role, state, isCurrent, viewer }) => {
      const [stateText, stateTitle] = {
        up: ['up', 'answers the page'],
        down: ['no answer', 'does not answer the page'],
        error: ['apply error', String(own?.apply_error ?? '')],
        cut: ['cut off', `unreachable from node ${viewer}`],
      }[state];
      const row = h(
        'tr',
        {
          class: [isCurrent && 'is-current', state === 'down' && 'is-down', role === 'leader' && 'is-leader', !fresh && own && 'is-stale']
            .filter(Boolean)
            .join(' '),
          dataset: { nodeId: n.id, nodeUrl: n.url ?? '', role },
          'aria-current': isCurrent ? 'true' : null,
          title: n.url ?? 'no URL known yet',
        },
        h(
          'th',
          { scope: 'row' },
          h('span', { class: 'node-name' }, h('span', { class: `dot dot-${state}`, 'aria-hidden': 'true' }), `node ${n.id}`),
          isCurrent ? h('span', { class: 'you', title: 'This page talks to this node' }, 'page') : null,
        ),
        h('td', { class: `role role-${role}` }, ROLE_TEXT[role] ?? role),
        h('td', { class: 'num' }, own?.term ?? '–'),
        h('td', { class: 'num' }, own?.commit_index ?? '–'),
        h('td', { class: 'num' }, own?.applied_index ?? '–'),
        h('td', { class: `state state-${state}`, title: stateTitle }, stateText),
      );
      return row;
    });
    // Summary and table change in the same task: never one without the other.
    this.body.replaceChildren(...rows);
    this.renderSummary(model);
    const leadership = `${model.leader}/${model.term}`;
    if (leadership !== this.shownLeadership) {
      this.shownLeadership = leadership;
      // A new leader or term: every node's own numbers, now.
      for (const n of this.nodes.values()) if (n.url !== this.api.current && n.answering !== false) n.nextPoll = 0;
    }
  }

  renderSummary(model) {
    const id = this.api.nodeIdOf(this.api.current);
    this.summary.replaceChildren(
      h('span', null, 'Page uses ', h('strong', null, id != null ? `node ${id}` : this.api.current)),
      h('span', null, `feed ${this.feedState}`),
      h('span', null, `seq ${this.pageSeq}`),
      h(
        'span',
        null,
        model.leader != null ? `leader node ${model.leader} · term ${model.term}` : `no leader known${model.term != null ? ` · term ${model.term}` : ''}`,
      ),
    );
  }
}
