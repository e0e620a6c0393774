// A card's history as the dialog lists it (every change, from → to, and
// when), and how a field's value reads, there and in the conflict table.

import { PRIORITY_NAME, STATUS_NAME, formatDay, formatTime, h, relativeTime } from './util.js';

export const FIELD_NAME = {
  title: 'Title',
  status: 'Status',
  priority: 'Priority',
  assignee: 'Assignee',
  due_date: 'Due date',
  labels: 'Labels',
  description: 'Description',
  position: 'Position',
  column_id: 'Column',
  board_id: 'Board',
  archived: 'Archived',
};

export function historyItem(ev) {
  const when = h('time', { datetime: ev.at, title: formatTime(ev.at) }, relativeTime(ev.at));
  const head = h('div', { class: 'history-head' });
  const body = h('ul', { class: 'history-changes' });
  if (ev.kind === 'task_created') {
    head.append(h('strong', null, 'Created'), ` in ${STATUS_NAME[ev.task?.status] ?? '?'} `);
    const t = ev.task ?? {};
    for (const f of ['title', 'priority', 'assignee', 'due_date', 'labels']) {
      if (t[f] == null || (Array.isArray(t[f]) && t[f].length === 0)) continue;
      body.append(h('li', null, h('span', { class: 'field' }, FIELD_NAME[f]), ' ', h('span', { class: 'to' }, show(f, t[f]))));
    }
  } else if (ev.kind === 'task_deleted') {
    head.append(h('strong', null, 'Deleted'), ' ');
  } else if (ev.kind === 'checklist_changed') {
    head.append(h('strong', null, 'Checklist'), ' ');
    body.append(h('li', null, checklistChange(ev)));
  } else if (ev.kind?.startsWith('comment_')) {
    const verb = { comment_added: 'Commented', comment_edited: 'Edited a comment', comment_deleted: 'Deleted a comment' };
    head.append(h('strong', null, verb[ev.kind] ?? 'Comment'), ' ');
    if (ev.kind !== 'comment_deleted') body.append(h('li', null, show('description', ev.comment?.body)));
  } else {
    const changes = ev.changes ?? {};
    const fields = Object.keys(changes);
    const onlyPosition = fields.length === 1 && fields[0] === 'position';
    head.append(h('strong', null, onlyPosition ? 'Reordered' : 'Changed'), ' ');
    for (const f of fields) {
      if (f === 'position') continue;
      const { from, to } = changes[f];
      body.append(
        h(
          'li',
          null,
          h('span', { class: 'field' }, FIELD_NAME[f] ?? f),
          ' ',
          h('span', { class: 'from' }, show(f, from)),
          h('span', { class: 'arrow', 'aria-label': 'to' }, ' → '),
          h('span', { class: 'to' }, show(f, to)),
        ),
      );
    }
    if (onlyPosition) {
      body.append(h('li', null, `within ${STATUS_NAME[ev.task?.status] ?? 'its column'}`));
    }
  }
  const actor = ev.actor?.name;
  if (typeof actor === 'string' && actor) head.append(h('span', { class: 'actor' }, `by ${actor} `));
  head.append(when, h('span', { class: 'muted' }, ` · #${ev.seq}`));
  return h('li', { class: `history-item kind-${ev.kind}`, dataset: { seq: ev.seq } }, head, body.childElementCount ? body : null);
}

/** A field's value as a person reads it. */
export function show(field, value) {
  if (value == null || value === '') return field === 'assignee' ? 'nobody' : 'none';
  switch (field) {
    case 'status':
      return STATUS_NAME[value] ?? String(value);
    case 'priority':
      return PRIORITY_NAME[value] ?? String(value);
    case 'due_date':
      return `${formatDay(value)} (${value})`;
    case 'labels':
      return value.length ? value.join(', ') : 'none';
    case 'description': {
      const flat = String(value).replace(/\s+/g, ' ').trim();
      return flat.length > 80 ? `“${flat.slice(0, 77)}…”` : `“${flat}”`;
    }
    default:
      return String(value);
  }
}

/** What a checklist_changed event did, in a sentence (text, never markup). */
export function checklistChange(ev) {
  const list = ev.checklist ?? { title: '', items: [] };
  const change = ev.checklist_change ?? {};
  const named = (id) => list.items.find((i) => i.id === id)?.text ?? 'an item';
  switch (change.what) {
    case 'created':
      return `added the checklist “${list.title}”`;
    case 'renamed':
      return `renamed the checklist “${change.from}” to “${list.title}”`;
    case 'deleted':
      return `deleted the checklist “${list.title}”`;
    case 'item_added':
      return `added “${named(change.item)}” to “${list.title}”`;
    case 'item_removed':
      return `removed “${change.item?.text ?? 'an item'}” from “${list.title}”`;
    case 'item_updated': {
      const item = named(change.item);
      if (change.done_from != null) return `${change.done_from ? 'unticked' : 'ticked'} “${item}” in “${list.title}”`;
      if (change.text_from != null) return `renamed “${change.text_from}” to “${item}” in “${list.title}”`;
      return `moved “${item}” in “${list.title}”`;
    }
    default:
      return `changed the checklist “${list.title}”`;
  }
}
