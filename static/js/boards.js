// Which boards I have, which one is on screen, and loading it.
//
// The board on screen is named by the URL, `/b/{id}` (or `?board=ID`);
// `/` opens the board last opened in this browser (localStorage), else the
// default board. Opening a board is one round of requests whatever its
// history: its record (columns, my role) and then, together, the first
// page of each column (`GET /api/boards/{id}/tasks?column=…&limit=50`).
// More of a column is asked for as it is scrolled (`more`).
//
// With filters on (assignee, label, priority, q), each column's pages are
// the server's filtered pages (`filterValues`): a filter finds the matching
// cards of a column of any size, not only among those already loaded. A q
// the server has no word to search for (`ab`, `the`) is left to the page.
//
// Each answer says which event it reflects (X-Taskraft-Seq). The store
// starts at the oldest of them: replaying the events after it brings every
// column to the same point (a page already counted an event does not count
// it again, see store.js).

import { errorMessage } from './api.js';
import { normalBoard } from './store.js';

const PAGE_SIZE = 50;
const LAST_BOARD_KEY = 'taskraft.board';

export class BoardNotFound extends Error {}

export class Boards extends EventTarget {
  constructor(api, store) {
    super();
    this.api = api;
    this.store = store;
    /** My boards (not archived), as GET /api/boards lists them. */
    this.list = [];
    /** column id → the promise of a page being loaded */
    this.loading = new Map();
    /** The filters the columns' pages are asked with: { assignee, label, priority, q }. */
    this.filterValues = () => ({});
  }

  get defaultId() {
    return this.list.find((b) => b.default)?.id ?? null;
  }

  get currentId() {
    return this.store.board?.id ?? null;
  }

  async loadList() {
    const res = await this.api.request('GET', '/api/boards');
    if (!res.ok) throw new Error(`listing the boards: ${errorMessage(res)}`);
    this.list = (res.body?.boards ?? []).map(normalBoard).filter((b) => !b.archived || b.id === this.currentId);
    this.store.defaultBoardId = this.defaultId;
    this.dispatchEvent(new Event('list'));
  }

  /** The board the URL names, else the last one opened here (if still mine), else the default. */
  wanted() {
    const fromUrl = boardInUrl();
    if (fromUrl) return fromUrl;
    const last = readLast();
    if (last && this.list.some((b) => b.id === last)) return last;
    return this.defaultId;
  }

  /**
   * Load board `id` into the store. `history`: 'push' (a switch: Back
   * returns), 'replace' (the URL only gets the board's canonical form).
   * Throws BoardNotFound when the board is not (or no longer) mine.
   */
  async open(id, { history: how = 'replace' } = {}) {
    if (!id) throw new Error('no board to show (GET /api/boards listed none)');
    // Only the latest open lands (filters typed fast open the board again and again).
    const opening = (this.opening = (this.opening ?? 0) + 1);
    // One round: the columns my board list knows are asked for together
    // with the board's record; a column the record adds is asked for after.
    const asked = new Map();
    for (const column of this.list.find((b) => b.id === id)?.columns ?? []) {
      asked.set(column.id, this.page(id, column.id, null));
    }
    for (const pending of asked.values()) pending.catch(() => {});
    const res = await this.api.request('GET', `/api/boards/${encodeURIComponent(id)}`);
    if (res.status === 404) throw new BoardNotFound(`board ${id} is not one of yours`);
    if (!res.ok) throw new Error(`loading the board: ${errorMessage(res)}`);
    const board = normalBoard(res.body);
    const pages = new Map();
    await Promise.all(
      board.columns.map(async (column) => {
        pages.set(column.id, await (asked.get(column.id) ?? this.page(board.id, column.id, null)));
      }),
    );
    if (opening !== this.opening) return;
    const seqs = [res.seq, ...[...pages.values()].map((p) => p.seq)].filter((s) => s != null);
    const seq = seqs.length ? Math.min(...seqs) : this.store.lastSeq;
    this.loading.clear();
    this.store.reset(board, pages, seq);
    writeLast(board.id);
    setUrl(board.id, how);
    this.dispatchEvent(new Event('opened'));
  }

  /** The board on screen again, from scratch (a resync, a column gone with its cards). */
  reload() {
    return this.open(this.currentId ?? this.wanted());
  }

  /** One page of column `columnId` of board `boardId`, after `cursor`. */
  async page(boardId, columnId, cursor) {
    const query = new URLSearchParams({ column: columnId, limit: String(PAGE_SIZE) });
    if (cursor) query.set('cursor', cursor);
    for (const [key, value] of Object.entries(this.filterValues())) {
      if (value) query.set(key, value);
    }
    const path = `/api/boards/${encodeURIComponent(boardId)}/tasks?`;
    let res = await this.api.request('GET', `${path}${query}`);
    if (res.status === 400 && res.body?.error?.field === 'q') {
      query.delete('q');
      res = await this.api.request('GET', `${path}${query}`);
    }
    if (!res.ok) throw new Error(`loading a column: ${errorMessage(res)}`);
    return {
      tasks: Array.isArray(res.body?.tasks) ? res.body.tasks : [],
      next_cursor: res.body?.next_cursor ?? null,
      total: Number.isFinite(res.body?.total) ? res.body.total : null,
      seq: res.body?.last_seq ?? res.seq,
    };
  }

  /** The next page of column `columnId`, once (a second ask while one loads waits for it). */
  more(columnId) {
    const win = this.store.window(columnId);
    if (!win || win.complete || !win.cursor) return Promise.resolve();
    if (this.loading.has(columnId)) return this.loading.get(columnId);
    const boardId = this.currentId;
    const run = this.page(boardId, columnId, win.cursor)
      .then((page) => {
        if (this.currentId === boardId && this.store.window(columnId) === win) this.store.addPage(columnId, page);
      })
      .finally(() => {
        if (this.loading.get(columnId) === run) this.loading.delete(columnId);
      });
    this.loading.set(columnId, run);
    return run;
  }

  /** The board's record again: my role and its members may have changed, the counts are fresh. */
  async refreshRecord() {
    const id = this.currentId;
    if (!id) return;
    const res = await this.api.request('GET', `/api/boards/${encodeURIComponent(id)}`);
    if (this.currentId !== id) return;
    if (res.status === 404) throw new BoardNotFound(`board ${id} is no longer one of yours`);
    if (!res.ok) return;
    const fresh = normalBoard(res.body);
    const board = this.store.board;
    board.role = fresh.role;
    board.members = fresh.members;
    board.name = fresh.name;
    board.archived = fresh.archived;
    this.store.boardStale = false;
    if (res.seq != null) this.store.recount(fresh, res.seq);
    this.dispatchEvent(new Event('opened'));
  }
}

/** The board id the URL names: /b/{id}, or ?board=ID. */
export function boardInUrl() {
  const m = /^\/b\/([^/]+)\/?$/.exec(location.pathname);
  if (m) return decodeURIComponent(m[1]);
  return new URLSearchParams(location.search).get('board') || null;
}

/** /b/{id}, keeping the filters of the query string. */
function setUrl(id, how) {
  const params = new URLSearchParams(location.search);
  params.delete('board');
  const query = params.toString();
  const url = `/b/${encodeURIComponent(id)}${query ? `?${query}` : ''}${location.hash}`;
  if (url === `${location.pathname}${location.search}${location.hash}`) return;
  if (how === 'push') history.pushState({ board: id }, '', url);
  else history.replaceState({ board: id }, '', url);
}

function readLast() {
  try {
    return localStorage.getItem(LAST_BOARD_KEY);
  } catch {
    return null; // storage may be unavailable
  }
}

function writeLast(id) {
  try {
    localStorage.setItem(LAST_BOARD_KEY, id);
  } catch {
    // storage may be unavailable
  }
}
