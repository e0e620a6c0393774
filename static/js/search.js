// "Search all boards": the cards of every board I am on whose title or
// description has the words, most relevant first, from GET /api/search
// (ranked by the server's full-text index, paged by its cursor). The words
// live in the URL (`?find=`), so a search can be reloaded and shared.
//
// Like the archived cards (archived.js) it is shown instead of the live
// board, which keeps running behind it. Choosing a result opens its board
// and the card; "Back to the board" (or Escape) returns.

import { errorMessage } from './api.js';
import { ShownView } from './shown-view.js';
import { h } from './util.js';

const PAGE_SIZE = 20;
const SNIPPET_CHARS = 160;

export class SearchView extends ShownView {
  /**
   * `onShown(shown)`: the live board hides while shown. `boardName(id)`,
   * `columnName(task)`: where a card is. `openCard(boardId, taskId)`.
   */
  constructor({ api, announce, onShown, boardName, columnName, openCard }) {
    super('search-all', onShown);
    this.api = api;
    this.announce = announce;
    this.boardName = boardName;
    this.columnName = columnName;
    this.openCard = openCard;
    this.form = document.getElementById('search-all-form');
    this.input = document.getElementById('search-all-q');
    this.words = '';
    /** id → the task of each hit shown. */
    this.lastHits = new Map();
    /** Only the newest search lands. */
    this.asked = 0;
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.search(this.input.value);
    });
  }

  /** Show the view and search for `words` (the URL's `find`, or the board's search box). */
  openView(words) {
    this.show();
    this.input.value = words ?? '';
    this.input.focus();
    if (this.input.value.trim()) this.search(this.input.value);
    else {
      this.list.replaceChildren();
      this.more.hidden = true;
      this.status.textContent = 'Type words to find cards on every board you are on.';
    }
  }

  search(words) {
    this.words = words.trim();
    this.cursor = null;
    this.list.replaceChildren();
    this.lastHits.clear();
    this.more.hidden = true;
    setFind(this.words);
    if (!this.words) {
      this.status.textContent = 'Type words to find cards on every board you are on.';
      return Promise.resolve();
    }
    return this.load();
  }

  async load() {
    const asked = ++this.asked;
    const query = new URLSearchParams({ q: this.words, limit: String(PAGE_SIZE) });
    if (this.cursor) query.set('cursor', this.cursor);
    this.status.textContent = 'Searching…';
    let res;
    try {
      res = await this.api.request('GET', `/api/search?${query}`);
    } catch (err) {
      if (asked === this.asked) this.status.textContent = `No node answered: ${err.message}`;
      return;
    }
    if (asked !== this.asked || !this.open) return;
    if (!res.ok) {
      this.status.textContent =
        res.status === 400 && res.body?.error?.field === 'q'
          ? `Nothing to search for: ${errorMessage(res)}`
          : `The search failed: ${errorMessage(res)}`;
      return;
    }
    const results = Array.isArray(res.body?.results) ? res.body.results : [];
    this.cursor = res.body?.next_cursor ?? null;
    const added = results.map((r) => this.row(r.task, r.matched));
    this.list.append(...added);
    // The last page: focus (if on "Show more", which goes) to its first hit.
    this.paged(this.cursor, added[0]?.querySelector('button') ?? this.input);
    const n = this.list.children.length;
    const text = n === 0 ? `No card has “${this.words}”.` : `${n} card${n === 1 ? '' : 's'} found${this.cursor ? ' so far' : ''}, most relevant first.`;
    const searched = res.body?.searched;
    const newest =
      searched?.tasks === 'newest'
        ? ` These words are on many cards: the newest ${Number(searched.window).toLocaleString()} cards were searched; add a rarer word to search them all.`
        : '';
    const comments =
      searched?.comments === 'newest'
        ? ` These words are in many comments: the newest ${Number(searched.comment_window).toLocaleString()} comments were searched.`
        : '';
    this.status.textContent = `${text}${newest}${comments}`;
  }

  /** A hit: `matched` is "comments" when only a comment holds the words. */
  row(task, matched) {
    this.lastHits.set(String(task.id), task);
    const board = this.boardName(String(task.board_id ?? '')) ?? 'Board';
    const column = this.columnName(task);
    const found = matched === 'comments' ? 'found in a comment' : null;
    const where = [board, task.archived ? 'archived' : column, found].filter(Boolean).join(' · ');
    const description = String(task.description ?? '').replace(/\s+/g, ' ').trim();
    const snippet = description.length > SNIPPET_CHARS ? `${description.slice(0, SNIPPET_CHARS)}…` : description;
    const open = h('button', { type: 'button', class: 'search-hit-open' }, String(task.title ?? ''));
    open.addEventListener('click', () => {
      this.close({ keepFocus: true });
      this.openCard(String(task.board_id), String(task.id));
    });
    return h(
      'li',
      { class: 'search-hit', dataset: { taskId: String(task.id), boardId: String(task.board_id ?? '') } },
      open,
      h('span', { class: 'past-card-meta' }, where),
      snippet ? h('span', { class: 'search-hit-snippet' }, snippet) : null,
    );
  }

  closed() {
    this.asked++;
    setFind('');
  }

}

/** The words searched for, from the URL (`?find=`). */
export function findInUrl() {
  return new URLSearchParams(location.search).get('find') ?? '';
}

function setFind(words) {
  const params = new URLSearchParams(location.search);
  if (words) params.set('find', words);
  else params.delete('find');
  const query = params.toString();
  const url = `${location.pathname}${query ? `?${query}` : ''}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(history.state, '', url);
}
