// "Members" in the board settings: who is on the board on screen and with
// which role, from its record (GET /api/boards/{id} → members, kept fresh
// by app.js on `board_member_changed`). A board admin (or a site admin)
// adds a user, picked by name from GET /api/users, with a role
// (PUT /api/boards/{id}/members/{user_id} {role}), changes a role (the
// row's select, saved at once) and removes a member (DELETE, after a
// confirmation in the row). Everyone else sees the list read-only.
//
// The default board has no list: everyone is on it with their site role.
//
// Rows are kept by user id and updated in place, so a change arriving from
// elsewhere while the list is open does not move the keyboard focus.

import { errorMessage } from './api.js';
import { h, uuid } from './util.js';

export const ROLES = [
  { value: 'viewer', label: 'Viewer' },
  { value: 'member', label: 'Member' },
  { value: 'admin', label: 'Admin' },
];
const roleLabel = (role) => ROLES.find((r) => r.value === role)?.label ?? String(role);

export class MembersPanel {
  /** `board()`: the board on screen (store.board); `canAdmin()`: may I change its members? */
  constructor({ api, announce, board, canAdmin }) {
    this.api = api;
    this.announce = announce;
    this.board = board;
    this.canAdmin = canAdmin;
    this.section = document.getElementById('board-members');
    this.note = document.getElementById('members-note');
    this.list = document.getElementById('members-list');
    this.add = document.getElementById('member-add');
    this.user = document.getElementById('member-user');
    this.role = document.getElementById('member-role');
    this.addButton = document.getElementById('member-add-go');
    this.error = document.getElementById('members-error');
    this.role.replaceChildren(...ROLES.map((r) => h('option', { value: r.value }, r.label)));
    this.role.value = 'member';
    /** user id → {id, username, display_name} (GET /api/users) */
    this.users = new Map();
    /** user id → the row's elements */
    this.rows = new Map();
    /** Writes go one at a time, in the order they were asked. */
    this.writes = Promise.resolve();
    this.addButton.addEventListener('click', () => this.addMember());
  }

  /** The dialog opens: the users again (someone may have been added), then the list. */
  async open() {
    this.showError(null);
    this.list.replaceChildren();
    this.rows.clear();
    this.render();
    await this.loadUsers();
    this.render();
  }

  async loadUsers() {
    let res;
    try {
      res = await this.api.request('GET', '/api/users');
    } catch {
      return; // the names fall back to what the board record says
    }
    if (!res.ok || !Array.isArray(res.body?.users)) return;
    this.users = new Map(res.body.users.filter((u) => u?.id).map((u) => [String(u.id), u]));
  }

  /** "Display name (username)" when they differ. */
  nameOf(member) {
    const user = this.users.get(String(member.user_id));
    const username = user?.username ?? member.username;
    const display = user?.display_name;
    if (display && username && display !== username) return `${display} (${username})`;
    return display || username || `user ${String(member.user_id).slice(0, 8)}`;
  }

  /** The list as the board record says it now; the add controls for admins. */
  render() {
    const board = this.board();
    if (!board) return;
    const admin = this.canAdmin();
    if (board.default) {
      this.note.textContent = 'Everyone is on the default board, with their site role.';
      this.list.hidden = true;
      this.add.hidden = true;
      return;
    }
    this.list.hidden = false;
    this.add.hidden = !admin;
    const members = [...board.members].sort((a, b) => this.nameOf(a).localeCompare(this.nameOf(b)));
    const n = members.length;
    this.note.textContent = `${n} member${n === 1 ? '' : 's'}. ${
      admin ? 'Changes to members are saved at once.' : 'Only the board’s admins can change who is on it.'
    } Site admins are admins of every board.`;
    const seen = new Set();
    for (const member of members) {
      const id = String(member.user_id);
      seen.add(id);
      let row = this.rows.get(id);
      if (!row || row.admin !== admin) {
        row = this.row(member, admin);
        this.rows.get(id)?.li.replaceWith(row.li);
        this.rows.set(id, row);
      }
      this.update(row, member);
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.li.remove();
        this.rows.delete(id);
      }
    }
    // In name order (moving a row that holds the focus would lose it: only others move).
    const order = members.map((m) => this.rows.get(String(m.user_id)).li);
    order.forEach((li, i) => {
      if (this.list.children[i] !== li) {
        if (li.contains(document.activeElement)) return;
        this.list.insertBefore(li, this.list.children[i] ?? null);
      }
    });
    this.fillUserChoices(members);
  }

  /** The users not on the board yet, by name. */
  fillUserChoices(members) {
    const on = new Set(members.map((m) => String(m.user_id)));
    const candidates = [...this.users.values()]
      .filter((u) => !u.disabled && !on.has(String(u.id)))
      .sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username));
    const before = this.user.value;
    this.user.replaceChildren(
      h('option', { value: '' }, candidates.length ? 'Choose a person…' : 'Everyone is on this board'),
      ...candidates.map((u) =>
        h('option', { value: String(u.id) }, u.display_name && u.display_name !== u.username ? `${u.display_name} (${u.username})` : u.username),
      ),
    );
    if (candidates.some((u) => String(u.id) === before)) this.user.value = before;
    this.addButton.disabled = candidates.length === 0;
  }

  row(member, admin) {
    const id = String(member.user_id);
    const nameId = `member-name-${id}`;
    const name = h('span', { class: 'member-name', id: nameId });
    const li = h('li', { class: 'member', dataset: { userId: id } }, name);
    const row = { li, name, admin, select: null, text: null, remove: null, confirm: null };
    if (!admin) {
      row.text = h('span', { class: 'member-role' });
      li.append(row.text);
      return row;
    }
    row.select = h(
      'select',
      { class: 'member-role', 'aria-labelledby': `${nameId} ${id}-role-label`, dataset: { role: member.role } },
      ROLES.map((r) => h('option', { value: r.value }, r.label)),
    );
    const label = h('span', { class: 'visually-hidden', id: `${id}-role-label` }, 'role');
    row.remove = h('button', { type: 'button', class: 'button subtle danger member-remove', 'aria-describedby': nameId }, 'Remove');
    li.append(label, row.select, row.remove);
    row.select.addEventListener('change', () => this.setRole(id, row.select.value, row));
    row.remove.addEventListener('click', () => this.askRemove(id, row));
    return row;
  }

  update(row, member) {
    row.name.textContent = this.nameOf(member);
    row.member = member;
    if (row.text) row.text.textContent = roleLabel(member.role);
    // A role being saved keeps what was chosen until its answer.
    if (row.select && !row.saving) {
      row.select.value = member.role;
      row.select.dataset.role = member.role;
    }
  }

  showError(text) {
    this.error.textContent = text ?? '';
    this.error.hidden = !text;
  }

  /** One write after another; `fn` returns the response. */
  queue(fn) {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => {});
    return run;
  }

  async write(method, userId, body) {
    const board = this.board();
    const path = `/api/boards/${encodeURIComponent(board.id)}/members/${encodeURIComponent(userId)}`;
    try {
      return await this.api.request(method, path, { body, idempotencyKey: uuid() });
    } catch (err) {
      return { ok: false, status: 0, body: { error: { message: `no node answered (${err.message})` } } };
    }
  }

  /** What the board record says now, until its event brings the truth. */
  applyLocally(userId, role) {
    const board = this.board();
    if (!board) return;
    const others = board.members.filter((m) => String(m.user_id) !== userId);
    if (role) {
      const user = this.users.get(userId);
      const was = board.members.find((m) => String(m.user_id) === userId);
      others.push({ user_id: userId, username: was?.username ?? user?.username ?? null, role });
    }
    board.members = others;
    this.render();
  }

  async addMember() {
    const userId = this.user.value;
    const role = this.role.value;
    if (!userId) {
      this.showError('Choose a person to add.');
      this.user.focus();
      return;
    }
    const name = this.user.selectedOptions[0]?.textContent ?? 'them';
    this.showError(null);
    this.addButton.disabled = true;
    const res = await this.queue(() => this.write('PUT', userId, { role }));
    this.addButton.disabled = false;
    if (!res.ok) {
      this.showError(`${name} was not added: ${errorMessage(res)}`);
      return;
    }
    this.applyLocally(userId, role);
    this.user.value = '';
    this.user.focus();
    this.announce(`Added ${name} as ${roleLabel(role).toLowerCase()}.`);
  }

  async setRole(userId, role, row) {
    const name = this.nameOf(row.member);
    const was = row.member.role;
    this.showError(null);
    row.saving = (row.saving ?? 0) + 1;
    const res = await this.queue(() => this.write('PUT', userId, { role }));
    row.saving -= 1;
    if (!res.ok) {
      this.showError(`The role of ${name} was not changed: ${errorMessage(res)}`);
      if (!row.saving) row.select.value = row.member.role ?? was;
      return;
    }
    this.applyLocally(userId, role);
    this.announce(`${name} is now ${roleLabel(role).toLowerCase()}.`);
  }

  /** The row asks first: "Remove X?" with Remove and Keep; Keep returns to the Remove button. */
  askRemove(userId, row) {
    if (row.confirm) return;
    const name = this.nameOf(row.member);
    const yes = h('button', { type: 'button', class: 'button danger' }, `Remove ${name}`);
    const no = h('button', { type: 'button', class: 'button' }, 'Keep');
    row.confirm = h('div', { class: 'member-confirm', role: 'group', 'aria-label': `Remove ${name} from the board?` },
      h('span', {}, `Remove ${name} from this board?`), yes, no);
    row.li.append(row.confirm);
    row.remove.hidden = true;
    const cancel = () => {
      row.confirm?.remove();
      row.confirm = null;
      row.remove.hidden = false;
      row.remove.focus();
    };
    no.addEventListener('click', cancel);
    row.confirm.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        // Not the dialog's Escape: only the question closes.
        e.preventDefault();
        e.stopPropagation();
        cancel();
      }
    });
    yes.addEventListener('click', () => this.remove(userId, row, yes, no));
    yes.focus();
  }

  async remove(userId, row, yes, no) {
    const name = this.nameOf(row.member);
    yes.disabled = true;
    no.disabled = true;
    this.showError(null);
    const res = await this.queue(() => this.write('DELETE', userId));
    if (!res.ok) {
      yes.disabled = false;
      no.disabled = false;
      this.showError(`${name} was not removed: ${errorMessage(res)}`);
      yes.focus();
      return;
    }
    const next = row.li.nextElementSibling ?? row.li.previousElementSibling;
    this.applyLocally(userId, null);
    (next?.querySelector('select, button') ?? this.user).focus();
    this.announce(`Removed ${name} from the board.`);
  }
}
