// A card's comments in its dialog: the thread (author, time, Markdown read
// through the safe renderer), a composer (Ctrl/Cmd+Enter sends), and edit
// and delete on one's own comments (delete on any, for the board's admins).
//
// The thread is read whole when the dialog opens, then kept up to date from
// the live feed's comment_* events, so everyone looking at the card sees a
// comment the moment it is added, edited or deleted, on whichever node. The
// answer to one's own write and the feed's event for it are the same
// comment: merged by id, the newer version wins.
//
// Viewers see no composer and no buttons (the server refuses them anyway).

import { errorMessage } from './api.js';
import { renderMarkdown } from './markdown.js';
import { formatTime, h, relativeTime, uuid } from './util.js';

/** The server's limit on a comment's body (characters, after trimming). */
const BODY_MAX = 10000;
const PAGE = 500;
/** Threads longer than this many pages are not read further. */
const MAX_PAGES = 20;

/** A comment's text in a sentence: flat, and cut. */
function short(text) {
  const flat = String(text ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `${flat.slice(0, 77)}…` : flat;
}

export class CommentThread {
  /**
   * `perms()` says, when asked, what the person may do on the board on
   * screen: {canWrite, canModerate, me (their user id)}.
   */
  constructor({ root, api, toasts, announce, perms, onCount }) {
    this.root = root;
    this.api = api;
    this.toasts = toasts;
    this.announce = announce;
    this.perms = perms;
    this.onCount = onCount ?? (() => {});
    this.taskId = null;
    /** id → comment, and whether the thread has been read. */
    this.comments = new Map();
    this.loaded = false;
    /** The comment being edited (id) and the one asking to be deleted. */
    this.editing = null;
    this.confirming = null;
    /** What is typed in the editor, kept across renders; and what it was told. */
    this.draft = '';
    this.editError = null;
    const $ = (sel) => root.querySelector(sel);
    this.el = {
      list: $('#comment-list'),
      heading: $('#comments-heading'),
      form: $('#comment-form'),
      body: $('#comment-body'),
      send: $('#comment-send'),
      error: $('#comment-error'),
      status: $('#comments-status'),
    };
    this.el.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.add();
    });
    this.el.body.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        e.stopPropagation();
        this.add();
      }
    });
    this.el.body.addEventListener('input', () => {
      this.el.error.hidden = true;
    });
  }

  /** Shows the thread of `taskId` (read afresh). */
  open(taskId) {
    this.taskId = taskId;
    this.comments.clear();
    this.loaded = false;
    this.editing = null;
    this.confirming = null;
    this.el.body.value = '';
    this.el.error.hidden = true;
    this.el.status.textContent = 'Loading comments…';
    this.el.status.hidden = false;
    this.render();
    this.load();
  }

  /** Whether a comment is written and not sent (or an edit not saved). */
  hasDraft() {
    if (!this.taskId) return false;
    const editing = this.editing && this.comments.get(this.editing);
    return this.el.body.value.trim() !== '' || Boolean(editing && editing.body !== this.draft);
  }

  close() {
    this.taskId = null;
    this.editing = null;
    this.el.body.value = '';
    this.comments.clear();
    this.loaded = false;
  }

  async load() {
    const id = this.taskId;
    const read = new Map();
    let cursor = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = `limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      let res;
      try {
        res = await this.api.request('GET', `/api/tasks/${encodeURIComponent(id)}/comments?${query}`, { deadlineMs: 10000 });
      } catch {
        res = null;
      }
      if (this.taskId !== id) return;
      if (!res?.ok) {
        this.el.status.textContent = 'The comments could not be loaded.';
        this.el.status.hidden = false;
        return;
      }
      for (const c of res.body.comments ?? []) read.set(c.id, c);
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    // Events that arrived while reading are newer than what was read.
    for (const [cid, c] of this.comments) {
      const r = read.get(cid);
      if (c === null) read.delete(cid);
      else if (!r || r.version < c.version) read.set(cid, c);
    }
    this.comments = read;
    this.loaded = true;
    this.el.status.hidden = true;
    this.render();
  }

  /** A feed event: comment_* of this card updates the thread. */
  onEvent(ev) {
    if (!this.taskId || ev.task_id !== this.taskId || !ev.kind?.startsWith('comment_') || !ev.comment) return;
    if (ev.kind === 'comment_deleted') {
      // Before the thread is read: remembered as gone (null), so the read does not bring it back.
      if (this.loaded) this.comments.delete(ev.comment.id);
      else this.comments.set(ev.comment.id, null);
      if (this.editing === ev.comment.id) this.editing = null;
    } else {
      this.merge(ev.comment);
    }
    this.render();
  }

  merge(comment) {
    const known = this.comments.get(comment.id);
    if (known === null) return; // deleted already
    if (!known || known.version < comment.version) this.comments.set(comment.id, comment);
  }

  /** The comments shown, oldest first. */
  list() {
    return [...this.comments.values()]
      .filter(Boolean)
      .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
  }

  render() {
    const { canWrite, canModerate, me } = this.perms();
    const comments = this.list();
    const count = comments.length;
    this.el.heading.textContent = count ? `Comments (${count})` : 'Comments';
    this.onCount(this.loaded ? count : null);
    this.el.form.hidden = !canWrite;
    const focused = document.activeElement;
    const keep = focused && this.el.list.contains(focused) ? focused.dataset.keep : null;
    this.el.list.replaceChildren(
      ...comments.map((c) => this.item(c, { mine: c.author?.id === me && canWrite, canModerate })),
    );
    if (this.loaded && !count) this.el.list.append(h('li', { class: 'muted comment-empty' }, 'No comments yet.'));
    if (keep) this.el.list.querySelector(`[data-keep="${CSS.escape(keep)}"]`)?.focus();
  }

  item(c, { mine, canModerate }) {
    const when = h('time', { datetime: c.created_at, title: formatTime(c.created_at) }, relativeTime(c.created_at));
    const head = h(
      'div',
      { class: 'comment-head' },
      h('strong', { class: 'comment-author' }, c.author?.name || 'someone'),
      ' ',
      when,
      c.version > 1
        ? h('span', { class: 'muted', title: `Edited ${formatTime(c.updated_at)}` }, ' · edited')
        : null,
    );
    const li = h('li', { class: 'comment', dataset: { commentId: c.id } }, head);
    if (this.editing === c.id) {
      li.append(this.editor(c));
      return li;
    }
    const body = h('div', { class: 'markdown comment-body' });
    body.append(renderMarkdown(c.body));
    // Task-list boxes in a comment are read, not ticked.
    for (const box of body.querySelectorAll('input')) box.disabled = true;
    li.append(body);
    const actions = h('div', { class: 'comment-actions' });
    const label = `comment by ${c.author?.name || 'someone'} ${relativeTime(c.created_at)}`;
    if (this.confirming === c.id) {
      actions.append(
        h('span', { role: 'status' }, 'Delete this comment? '),
        h(
          'button',
          { type: 'button', class: 'button danger small', dataset: { keep: `del-yes-${c.id}` }, onclick: () => this.remove(c) },
          'Delete',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'button small',
            dataset: { keep: `del-no-${c.id}` },
            onclick: () => {
              this.confirming = null;
              this.render();
            },
          },
          'Keep',
        ),
      );
    } else {
      if (mine) {
        actions.append(
          h(
            'button',
            {
              type: 'button',
              class: 'button subtle small',
              'aria-label': `Edit ${label}`,
              dataset: { keep: `edit-${c.id}` },
              onclick: () => {
                this.editing = c.id;
                this.draft = c.body;
                this.editError = null;
                this.confirming = null;
                this.render();
                this.el.list.querySelector(`[data-comment-id="${CSS.escape(c.id)}"] textarea`)?.focus();
              },
            },
            'Edit',
          ),
        );
      }
      if (mine || canModerate) {
        actions.append(
          h(
            'button',
            {
              type: 'button',
              class: 'button subtle small danger',
              'aria-label': `Delete ${label}`,
              dataset: { keep: `del-${c.id}` },
              onclick: () => {
                this.confirming = c.id;
                this.render();
                this.el.list.querySelector(`[data-keep="del-no-${CSS.escape(c.id)}"]`)?.focus();
              },
            },
            'Delete',
          ),
        );
      }
    }
    if (actions.childElementCount) li.append(actions);
    return li;
  }

  editor(c) {
    const id = `comment-edit-${c.id}`;
    const area = h('textarea', { id, rows: '4', maxlength: String(BODY_MAX) });
    area.value = this.draft;
    area.addEventListener('input', () => {
      this.draft = area.value;
    });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: !this.editError }, this.editError);
    const save = () => this.edit(c, area.value, error);
    area.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        e.stopPropagation();
        save();
      } else if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.editing = null;
        this.render();
      }
    });
    return h(
      'div',
      { class: 'comment-editor' },
      h('label', { class: 'visually-hidden', for: id }, 'Edit the comment (Markdown)'),
      area,
      error,
      h(
        'div',
        { class: 'comment-actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'button small',
            onclick: () => {
              this.editing = null;
              this.render();
            },
          },
          'Cancel',
        ),
        h('button', { type: 'button', class: 'button primary small', onclick: save }, 'Save'),
      ),
    );
  }

  /** The body as the server takes it, or null after saying what is wrong. */
  checked(text, error) {
    const body = text.trim();
    let problem = null;
    if (!body) problem = 'Write something first.';
    else if ([...body].length > BODY_MAX) problem = `A comment holds at most ${BODY_MAX.toLocaleString()} characters.`;
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return null;
    }
    error.hidden = true;
    return body;
  }

  async add() {
    const id = this.taskId;
    const body = this.checked(this.el.body.value, this.el.error);
    if (!id || body == null || this.el.send.disabled) return;
    this.el.send.disabled = true;
    // Emptied at once (the comment may reach the others before the answer
    // reaches here); put back if it was not sent.
    const sent = this.el.body.value;
    this.el.body.value = '';
    let res;
    try {
      res = await this.api.request('POST', `/api/tasks/${encodeURIComponent(id)}/comments`, {
        body: { body },
        idempotencyKey: uuid(),
      });
    } catch (err) {
      res = { ok: false, status: 0, body: { error: { message: err.message } } };
    } finally {
      this.el.send.disabled = false;
    }
    if (this.taskId !== id) return;
    if (!res.ok) {
      if (!this.el.body.value) this.el.body.value = sent;
      this.el.error.textContent = `Not sent: ${errorMessage(res)}`;
      this.el.error.hidden = false;
      return;
    }
    this.merge(res.body);
    this.render();
    this.announce?.('Comment added.');
  }

  async edit(c, text, error) {
    const body = this.checked(text, error);
    if (body == null) return;
    const id = this.taskId;
    let res;
    try {
      res = await this.api.request('PATCH', `/api/comments/${encodeURIComponent(c.id)}`, {
        body: { body },
        ifMatch: c.version,
        idempotencyKey: uuid(),
      });
    } catch (err) {
      res = { ok: false, status: 0, body: { error: { message: err.message } } };
    }
    if (this.taskId !== id) return;
    if (res.status === 412) {
      // Saved again from here, it goes over the version now saved.
      const current = res.body?.error?.current_comment;
      if (current) this.merge(current);
      this.editError = `Someone changed this comment while you were editing (now: “${short(current?.body)}”). Your text is still here: Save puts it over theirs.`;
      this.render();
      this.el.list.querySelector(`#comment-edit-${CSS.escape(c.id)}`)?.focus();
      return;
    }
    if (!res.ok) {
      error.textContent = `Not saved: ${errorMessage(res)}`;
      error.hidden = false;
      return;
    }
    this.editing = null;
    this.editError = null;
    this.merge(res.body);
    this.render();
    this.announce?.('Comment saved.');
    this.el.list.querySelector(`[data-keep="edit-${CSS.escape(c.id)}"]`)?.focus();
  }

  async remove(c) {
    const id = this.taskId;
    let res;
    try {
      res = await this.api.request('DELETE', `/api/comments/${encodeURIComponent(c.id)}`, { idempotencyKey: uuid() });
    } catch (err) {
      res = { ok: false, status: 0, body: { error: { message: err.message } } };
    }
    if (this.taskId !== id) return;
    this.confirming = null;
    if (!res.ok && res.status !== 404) {
      this.toasts.show(`The comment was not deleted: ${errorMessage(res)}`, { kind: 'error' });
      this.render();
      return;
    }
    this.comments.delete(c.id);
    this.render();
    this.announce?.('Comment deleted.');
    this.el.body.focus({ preventScroll: true });
  }
}
