// What the page can truthfully say about its connection, in the header and
// beside a change that waits: live, its node not answering (and the page
// switching away), the cluster without a majority, reconnecting.
//
// Sources: the live feed's state and its stall detection (a ping left
// unanswered: the node hangs), the page's node's own view of the cluster (no
// leader: it cannot reach a majority, or one is being elected), and the
// switches the api makes. The feed's cluster frames arrive as soon as the
// node's leader changes, so "Live" is withdrawn within about two seconds.

/** No leader for this long before the page says it waits for a majority (a
 * leadership transfer leaves none for a few milliseconds). */
const LEADERLESS_GRACE_MS = 300;
/** Without a leader this long, the page looks for a node that has one. */
const LOOK_ELSEWHERE_MS = 1500;
const LOOK_EVERY_MS = 3000;

export class Health extends EventTarget {
  constructor(api, feed) {
    super();
    this.api = api;
    this.feed = feed;
    /** The node whose feed stopped answering, while the page has not moved. */
    this.stalledNode = null;
    /** Whether a switch away from the stalled node found nobody. */
    this.nobodyElse = false;
    /** Since when the page's node has known no leader (ms), or 0. */
    this.leaderlessSince = 0;
    this.lookedAt = 0;
    this.kind = 'connecting';
    this.timer = setInterval(() => this.tick(), 250);

    feed.addEventListener('state', () => this.update());
    feed.addEventListener('stall', (e) => this.onStall(e.detail.node));
    feed.addEventListener('unstall', () => {
      this.stalledNode = null;
      this.update();
    });
    api.addEventListener('switch', () => {
      this.stalledNode = null;
      this.leaderlessSince = 0;
      this.update();
    });
  }

  /** The page's node's view of the cluster (a feed frame or a poll). */
  onView(view, node) {
    if (node !== this.api.current || !view) return;
    if (view.leader_id == null) {
      if (!this.leaderlessSince) this.leaderlessSince = Date.now();
    } else {
      this.leaderlessSince = 0;
    }
    this.update();
  }

  async onStall(node) {
    if (node !== this.api.current) return;
    this.stalledNode = node;
    this.nobodyElse = false;
    this.update();
    const now = await this.api.failover(node, 'not answering');
    if (now === node && this.stalledNode === node) {
      this.nobodyElse = true;
      this.update();
    }
  }

  tick() {
    this.update();
    if (this.kind !== 'no-majority' || Date.now() - this.leaderlessSince < LOOK_ELSEWHERE_MS) return;
    if (Date.now() - this.lookedAt < LOOK_EVERY_MS) return;
    // This node may be the one cut off: move if another one has a leader.
    this.lookedAt = Date.now();
    this.api.failover(this.api.current, 'no majority', { requireReady: true });
  }

  update() {
    const leaderless = this.leaderlessSince && Date.now() - this.leaderlessSince >= LEADERLESS_GRACE_MS;
    let kind;
    if (this.stalledNode === this.api.current) kind = 'not-answering';
    else if (this.feed.state === 'connecting') kind = 'connecting';
    else if (this.feed.state === 'reconnecting') kind = 'reconnecting';
    else if (leaderless) kind = 'no-majority';
    else kind = 'live';
    const text = this.text(kind);
    if (kind === this.kind && text === this.lastText) return;
    this.kind = kind;
    this.lastText = text;
    this.dispatchEvent(new CustomEvent('change', { detail: { kind, text } }));
  }

  nodeName(url = this.api.current) {
    const id = this.api.nodeIdOf(url);
    return id != null ? `node ${id}` : new URL(url).host;
  }

  /** The header's words for `kind`. */
  text(kind = this.kind) {
    const name = this.nodeName();
    switch (kind) {
      case 'live':
        return `Live · ${name}`;
      case 'not-answering':
        return this.nobodyElse
          ? `${capital(name)} not answering — no other node answers`
          : `${capital(name)} not answering — switching`;
      case 'no-majority':
        return 'Waiting for a majority…';
      case 'reconnecting':
        return `Reconnecting… (${name})`;
      default:
        return 'Connecting…';
    }
  }

  /** A longer explanation (the header's tooltip). */
  detail() {
    const name = this.nodeName();
    switch (this.kind) {
      case 'no-majority':
        return `${capital(name)} cannot reach a majority of the cluster, so no change can be agreed on; changes wait until it can.`;
      case 'not-answering':
        return `${capital(name)} stopped answering; the page moves to another node.`;
      default:
        return `This page talks to ${this.api.current}`;
    }
  }

  /** Why a change is still waiting, in words for the person who made it. */
  waitReason() {
    const name = this.nodeName();
    switch (this.kind) {
      case 'no-majority':
        return `Waiting for a majority: ${name} cannot reach enough nodes to agree on the change. It is saved as soon as it can.`;
      case 'not-answering':
        return `${capital(name)} is not answering; sending it to another node.`;
      case 'reconnecting':
      case 'connecting':
        return 'Reconnecting to the cluster; it is sent again as soon as a node answers.';
      default: {
        const trouble = this.api.trouble;
        if (trouble && Date.now() - trouble.at < 3000) {
          if (trouble.code === 'no_leader') return 'Waiting for the cluster to elect a leader.';
          if (trouble.status === 0) return `${capital(this.nodeName(trouble.node))} did not answer; trying again.`;
          return `The cluster is busy (${trouble.status}); trying again.`;
        }
        return `Waiting for ${name} to confirm it.`;
      }
    }
  }
}

const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);
