// A card's checklists in its dialog: each list with its title, a progress
// bar and `done/total`, its items as real checkboxes (Space ticks), an
// input to add an item (Enter adds), and per item: move up/down (buttons,
// or Alt+↑/↓ on the checkbox), "Make a card" and delete.
//
// The lists are read when the dialog opens, then kept up to date from the
// live feed's checklist_changed events (each carries the whole list after
// the change), so everyone looking at the card sees a tick the moment it
// is made, on whichever node. An answer to one's own write and the event
// for it are the same list: merged by id, the higher version wins.
//
// Viewers see the lists read-only (disabled checkboxes, no controls).

import { errorMessage } from './api.js';
import { h, uuid } from './util.js';

const TITLE_MAX = 200;
const ITEM_MAX = 500;

export class ChecklistPanel {
  /** `perms()` says, when asked, whether the person may edit the board on screen. */
  constructor({ root, api, toasts, announce, perms }) {
    this.root = root;
    this.api = api;
    this.toasts = toasts;
    this.announce = announce;
    this.perms = perms;
    this.taskId = null;
    /** id → checklist (null: deleted before the read came back). */
    this.lists = new Map();
    this.loaded = false;
    /** The list whose title is being edited (id). */
    this.renaming = null;
    const $ = (sel) => root.querySelector(sel);
    this.el = {
      lists: $('#checklist-lists'),
      form: $('#checklist-form'),
      title: $('#checklist-title'),
      status: $('#checklists-status'),
    };
    this.el.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.create();
    });
  }

  open(taskId) {
    this.taskId = taskId;
    this.lists.clear();
    this.loaded = false;
    this.el.title.value = '';
    this.el.status.hidden = true;
    this.render();
    this.load();
  }

  close() {
    this.taskId = null;
    this.lists.clear();
    this.loaded = false;
  }

  async load() {
    const id = this.taskId;
    let res;
    try {
      res = await this.api.request('GET', `/api/tasks/${encodeURIComponent(id)}/checklists`, { deadlineMs: 10000 });
    } catch {
      res = null;
    }
    if (this.taskId !== id) return;
    if (!res?.ok) {
      this.el.status.textContent = 'The checklists could not be loaded.';
      this.el.status.hidden = false;
      return;
    }
    const read = new Map((res.body.checklists ?? []).map((c) => [c.id, c]));
    // Events that arrived while reading are newer than what was read.
    for (const [cid, c] of this.lists) {
      const r = read.get(cid);
      if (c === null) read.delete(cid);
      else if (!r || r.version < c.version) read.set(cid, c);
    }
    this.lists = read;
    this.loaded = true;
    this.render();
  }

  /** A feed event: checklist_changed of this card. */
  onEvent(ev) {
    if (!this.taskId || ev.task_id !== this.taskId || ev.kind !== 'checklist_changed' || !ev.checklist) return;
    if (ev.checklist_change?.what === 'deleted') {
      if (this.loaded) this.lists.delete(ev.checklist.id);
      else this.lists.set(ev.checklist.id, null);
    } else {
      this.merge(ev.checklist);
    }
    this.render();
  }

  merge(list) {
    const known = this.lists.get(list.id);
    if (known === null) return;
    if (!known || known.version < list.version) this.lists.set(list.id, list);
  }

  ordered() {
    return [...this.lists.values()]
      .filter(Boolean)
      .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
  }

  render() {
    const { canWrite } = this.perms();
    this.el.form.hidden = !canWrite;
    // Focus survives a re-render: the element with the same data-keep.
    const focused = document.activeElement;
    const keep = focused && this.el.lists.contains(focused) ? focused.dataset.keep : null;
    const typed = new Map(
      [...this.el.lists.querySelectorAll('input[data-add-for]')].map((i) => [i.dataset.addFor, i.value]),
    );
    this.el.lists.replaceChildren(...this.ordered().map((list) => this.section(list, canWrite, typed.get(list.id) ?? '')));
    if (keep) this.el.lists.querySelector(`[data-keep="${CSS.escape(keep)}"]`)?.focus();
  }

  section(list, canWrite, typed) {
    const done = list.items.filter((i) => i.done).length;
    const total = list.items.length;
    const headingId = `checklist-h-${list.id}`;
    const title = h('h4', { id: headingId }, list.title);
    if (canWrite && this.renaming === list.id) {
      const input = h('input', {
        type: 'text',
        maxlength: String(TITLE_MAX),
        'aria-label': `New title for ${list.title}`,
        dataset: { keep: `rename-${list.id}` },
        onkeydown: (e) => {
          if (e.key === 'Enter') {
            e.preventDefault();
            e.stopPropagation();
            const value = this.checked(input.value, TITLE_MAX, 'title');
            if (value == null) return;
            this.renaming = null;
            this.send('PATCH', `/api/checklists/${list.id}`, { title: value }, 'Checklist renamed.').then(() =>
              this.el.lists.querySelector(`[data-keep="rename-button-${CSS.escape(list.id)}"]`)?.focus(),
            );
          } else if (e.key === 'Escape') {
            e.preventDefault();
            e.stopPropagation();
            this.renaming = null;
            this.render();
            this.el.lists.querySelector(`[data-keep="rename-button-${CSS.escape(list.id)}"]`)?.focus();
          }
        },
      });
      input.value = list.title;
      title.replaceChildren(input);
      queueMicrotask(() => input.focus());
    }
    const head = h(
      'div',
      { class: 'checklist-head' },
      title,
      h('span', { class: 'checklist-count', 'aria-hidden': 'true' }, `${done}/${total}`),
      canWrite
        ? h(
            'button',
            {
              type: 'button',
              class: 'button',
              'aria-label': `Rename checklist ${list.title}`,
              dataset: { keep: `rename-button-${list.id}` },
              onclick: () => {
                this.renaming = list.id;
                this.render();
              },
            },
            'Rename',
          )
        : null,
      canWrite
        ? h(
            'button',
            {
              type: 'button',
              class: 'button',
              'aria-label': `Delete checklist ${list.title}`,
              onclick: () => this.send('DELETE', `/api/checklists/${list.id}`, null, 'Checklist deleted.'),
            },
            'Delete',
          )
        : null,
    );
    const bar = h('progress', {
      class: 'checklist-progress',
      max: String(Math.max(total, 1)),
      value: String(done),
      'aria-label': `${list.title}: ${done} of ${total} done`,
    });
    const items = h(
      'ul',
      { class: 'checklist-items', 'aria-labelledby': headingId },
      list.items.map((item, i) => this.item(list, item, i, canWrite)),
    );
    const section = h('section', { class: 'checklist', 'aria-labelledby': headingId, dataset: { checklistId: list.id } }, head, bar, items);
    if (canWrite) {
      const input = h('input', {
        type: 'text',
        maxlength: String(ITEM_MAX),
        placeholder: 'Add an item…',
        'aria-label': `Add an item to ${list.title}`,
        dataset: { addFor: list.id, keep: `add-${list.id}` },
        onkeydown: (e) => {
          if (e.key === 'Enter') {
            e.preventDefault();
            e.stopPropagation();
            this.addItem(list, input);
          }
        },
      });
      input.value = typed;
      section.append(
        h(
          'div',
          { class: 'checklist-add' },
          input,
          h('button', { type: 'button', class: 'button', onclick: () => this.addItem(list, input) }, 'Add'),
        ),
      );
    }
    return section;
  }

  item(list, item, index, canWrite) {
    const boxId = `checklist-item-${item.id}`;
    const last = list.items.length - 1;
    const move = (to) => this.patchItem(item, { position: to }, `Moved to ${to + 1} of ${last + 1}.`, `box-${item.id}`);
    const box = h('input', {
      type: 'checkbox',
      id: boxId,
      checked: item.done,
      disabled: !canWrite,
      dataset: { keep: `box-${item.id}` },
      onchange: (e) => this.patchItem(item, { done: e.target.checked }, e.target.checked ? 'Ticked.' : 'Unticked.', `box-${item.id}`),
      onkeydown: (e) => {
        if (!canWrite || !e.altKey) return;
        if (e.key === 'ArrowUp' && index > 0) {
          e.preventDefault();
          move(index - 1);
        } else if (e.key === 'ArrowDown' && index < last) {
          e.preventDefault();
          move(index + 1);
        }
      },
    });
    const li = h(
      'li',
      { class: `checklist-item${item.done ? ' done' : ''}`, dataset: { itemId: item.id } },
      box,
      h('label', { for: boxId }, item.text),
    );
    if (canWrite) {
      const button = (label, text, onclick, disabled = false) =>
        h('button', { type: 'button', class: 'icon-button', 'aria-label': label, title: label, disabled, onclick }, text);
      li.append(
        h(
          'span',
          { class: 'checklist-item-actions' },
          button(`Move ${item.text} up`, '↑', () => move(index - 1), index === 0),
          button(`Move ${item.text} down`, '↓', () => move(index + 1), index === last),
          button(`Make ${item.text} a card`, '⧉', () => this.makeCard(item)),
          button(`Delete ${item.text}`, '×', () =>
            this.send('DELETE', `/api/checklist-items/${item.id}`, null, 'Item deleted.'),
          ),
        ),
      );
    }
    return li;
  }

  /** A title or text as the server will take it, or null (with a toast). */
  checked(text, max, what) {
    const value = String(text ?? '').trim();
    if (!value) return null;
    if (value.length > max) {
      this.toasts.show(`The ${what} is longer than ${max} characters.`, { kind: 'error' });
      return null;
    }
    return value;
  }

  async create() {
    const title = this.checked(this.el.title.value, TITLE_MAX, 'title');
    if (title == null || !this.taskId) return;
    const ok = await this.send('POST', `/api/tasks/${this.taskId}/checklists`, { title }, 'Checklist added.');
    if (ok) {
      this.el.title.value = '';
      this.el.lists.querySelector(`[data-keep="add-${CSS.escape(ok.id)}"]`)?.focus();
    }
  }

  async addItem(list, input) {
    const text = this.checked(input.value, ITEM_MAX, 'item');
    if (text == null) return;
    input.value = '';
    const ok = await this.send('POST', `/api/checklists/${list.id}/items`, { text }, 'Item added.');
    if (!ok) input.value = text;
    this.el.lists.querySelector(`[data-keep="add-${CSS.escape(list.id)}"]`)?.focus();
  }

  async patchItem(item, patch, said, keep) {
    await this.send('PATCH', `/api/checklist-items/${item.id}`, patch, said);
    if (keep) this.el.lists.querySelector(`[data-keep="${CSS.escape(keep)}"]`)?.focus();
  }

  async makeCard(item) {
    let res;
    try {
      res = await this.api.request('POST', `/api/checklist-items/${item.id}/card`, { idempotencyKey: uuid() });
    } catch (err) {
      res = { ok: false, status: 0, body: { error: { message: err.message } } };
    }
    if (!res.ok) {
      this.toasts.show(`No card made: ${errorMessage(res)}`, { kind: 'error' });
      return;
    }
    this.announce?.(`Card “${res.body.title}” made.`);
  }

  /** A write; the list it answers is merged. Returns it, or null. */
  async send(method, path, body, said) {
    const id = this.taskId;
    let res;
    try {
      res = await this.api.request(method, path, { body: body ?? undefined, idempotencyKey: uuid() });
    } catch (err) {
      res = { ok: false, status: 0, body: { error: { message: err.message } } };
    }
    if (this.taskId !== id) return null;
    if (!res.ok) {
      this.toasts.show(`Not saved: ${errorMessage(res)}`, { kind: 'error' });
      this.render();
      return null;
    }
    if (res.status === 204) {
      const listId = path.split('/').pop();
      this.lists.delete(listId);
    } else if (res.body?.id) {
      this.merge(res.body);
    }
    this.render();
    this.announce?.(said);
    return res.body ?? {};
  }
}
