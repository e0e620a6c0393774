// Presence: who else is looking at this board now, and who has which card
// open. Nothing here is stored: the page tells its node what it looks at
// over the live feed's socket, and the node answers with `presence` frames
// merged from every node (see src/presence in the server).
//
// What the page says: {type: presence, board_id, editing} whenever the
// board on screen or the open card changes, and again on every new socket
// (a reconnect starts with nobody known). What it shows, others only (I
// know I am here; a user with several tabs comes once from the server):
// - in the board bar, a row of initials, named in their title and in the
//   row's label ("Viewing now: Ana, Bo");
// - on a card someone else has open, a small marker (data-editing, and an
//   aria-description "Bo is editing");
// - in the card dialog, "Bo is editing" when someone else has the same card
//   open.
// Changes are told politely (aria-live on the row's and the dialog's text),
// and nothing takes the focus.
//
// Test hooks: #presence carries data-viewers (ids, comma-separated, others
// only); cards carry data-editing (names); #task-presence is the dialog's
// line.

import { h, hashOf, initials } from './util.js';

/** At most this many chips; the rest are counted ("+3"). */
const MAX_CHIPS = 5;

export class Presence {
  /**
   * `feed`: the live feed (sends, and dispatches `presence` and `hello`);
   * `store`: the board on screen; `board`: its cards (`cards`: id →
   * element); `dialog`: the card dialog's <dialog>, whose data-task-id
   * names the open card; `bar`: where the row goes; `me`: my user id.
   */
  constructor({ feed, store, board, dialog, bar, me }) {
    this.feed = feed;
    this.store = store;
    this.board = board;
    this.dialog = dialog;
    this.me = me;
    /** What the current socket was last told, to say each change once. */
    this.told = null;
    /** The last frame for the board on screen. */
    this.view = null;
    /** Cards marked as open elsewhere: id → names. */
    this.marked = new Map();

    this.row = h('div', { id: 'presence', class: 'presence', hidden: true });
    this.chips = h('ul', { class: 'presence-chips', 'aria-hidden': 'true' });
    this.said = h('span', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
    this.row.append(this.chips, this.said);
    bar.append(this.row);

    this.line = h('p', { id: 'task-presence', class: 'task-presence', role: 'status', 'aria-live': 'polite', hidden: true });
    dialog.querySelector('#task-meta')?.after(this.line);

    feed.addEventListener('hello', () => {
      this.told = null;
      this.tell();
    });
    feed.addEventListener('presence', (e) => this.onFrame(e.detail));
    feed.addEventListener('state', (e) => {
      // Not live: what was shown is no longer known.
      if (e.detail.state !== 'live') this.show(null);
    });
    store.addEventListener('change', () => {
      if (this.view && this.view.board_id !== store.board?.id) this.show(null);
      this.tell();
      this.markCards();
    });
    // The dialog names its card in data-task-id while it is open.
    new MutationObserver(() => {
      this.tell();
      this.showLine();
    }).observe(dialog, { attributes: true, attributeFilter: ['data-task-id'] });
  }

  /** Tells the node what this page looks at, if that changed. */
  tell() {
    const boardId = this.store.board?.id ?? null;
    const editing = (boardId && this.dialog.dataset.taskId) || null;
    const said = JSON.stringify({ type: 'presence', board_id: boardId, editing });
    if (said === this.told) return;
    if (this.feed.send(said)) this.told = said;
  }

  onFrame(frame) {
    if (!frame || frame.board_id !== this.store.board?.id || !Array.isArray(frame.viewers)) return;
    this.show(frame);
  }

  /** Others than me, each once. */
  others(users) {
    const me = this.me();
    const seen = new Set();
    return (Array.isArray(users) ? users : []).filter((u) => {
      if (!u || typeof u.id !== 'string' || u.id === me || seen.has(u.id)) return false;
      seen.add(u.id);
      return true;
    });
  }

  show(frame) {
    this.view = frame;
    const others = this.others(frame?.viewers).sort((a, b) => String(a.name).localeCompare(String(b.name)));
    const ids = others.map((u) => u.id).join(',');
    if (this.row.dataset.viewers !== ids) {
      this.row.dataset.viewers = ids;
      const names = others.map((u) => String(u.name));
      const chips = others.slice(0, MAX_CHIPS).map((u) =>
        h('li', { class: `avatar presence-chip ac${hashOf(String(u.name)) % 8}`, title: String(u.name) }, initials(String(u.name))),
      );
      if (others.length > MAX_CHIPS) {
        chips.push(h('li', { class: 'avatar presence-chip presence-more', title: names.slice(MAX_CHIPS).join(', ') }, `+${others.length - MAX_CHIPS}`));
      }
      this.chips.replaceChildren(...chips);
      const text = names.length ? `Viewing now: ${names.join(', ')}` : '';
      this.row.title = text;
      this.row.hidden = !names.length;
      // The live region speaks the change; an empty board says so once.
      this.said.textContent = text || (frame ? 'Nobody else is viewing this board.' : '');
    }
    this.markCards();
    this.showLine();
  }

  /** Names of the others with card `id` open. */
  editors(id) {
    return this.others(this.view?.editing?.[id]).map((u) => String(u.name));
  }

  /** The marker on each card someone else has open. */
  markCards() {
    const now = new Map();
    for (const id of Object.keys(this.view?.editing ?? {})) {
      const names = this.editors(id);
      if (names.length) now.set(id, names);
    }
    for (const [id, card] of this.board.cards) {
      const names = now.get(id);
      const text = names ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} editing` : null;
      if ((card.dataset.editing ?? null) === (names?.join(', ') ?? null)) continue;
      if (names) {
        card.dataset.editing = names.join(', ');
        card.setAttribute('aria-description', text);
        card.title = text;
      } else {
        delete card.dataset.editing;
        card.removeAttribute('aria-description');
        card.removeAttribute('title');
      }
    }
    this.marked = now;
  }

  /** "Bo is editing" in the dialog of a card someone else has open. */
  showLine() {
    const id = this.dialog.dataset.taskId;
    const names = id ? this.editors(id) : [];
    const text = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} editing this card` : '';
    if (this.line.textContent !== text) this.line.textContent = text;
    this.line.hidden = !text;
  }
}
