// The header's board controls: a select of my boards (the one on screen
// chosen), whose last choice, "New board…", opens a dialog that creates
// one (POST /api/boards) and opens it; and, for the board's admins, "Board
// settings" to rename or archive it (PATCH /api/boards/{id}; the default
// board cannot be archived) and to say who is on it (members.js). Anyone
// else on a board that is not the default one gets "Members": the same
// dialog, the list only.

import { errorMessage } from './api.js';
import { BoardImport } from './importer.js';
import { MembersPanel } from './members.js';
import { WebhooksPanel } from './webhooks.js';
import { h, uuid } from './util.js';

const NEW = '\u0000new';

export class BoardSwitcher extends EventTarget {
  /** Dispatches 'switch' ({detail: {id}}) when a board is chosen or created. */
  constructor({ api, boards, announce }) {
    super();
    this.api = api;
    this.boards = boards;
    this.announce = announce;
    this.select = document.getElementById('board-select');
    this.dialog = document.getElementById('board-dialog');
    this.form = document.getElementById('board-form');
    this.name = document.getElementById('board-name');
    this.error = document.getElementById('board-error');
    this.select.addEventListener('change', () => {
      const id = this.select.value;
      if (id === NEW) {
        this.render();
        this.openNew();
        return;
      }
      if (id && id !== this.boards.currentId) this.dispatchEvent(new CustomEvent('switch', { detail: { id } }));
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.create();
    });
    document.getElementById('board-cancel').addEventListener('click', () => this.dialog.close());
    this.importer = new BoardImport({
      api,
      announce,
      name: () => this.name.value,
      onDone: (id) => {
        this.dialog.close();
        this.dispatchEvent(new CustomEvent('switch', { detail: { id } }));
      },
    });
    this.dialog.addEventListener('close', () => this.select.focus());
    this.settings = document.getElementById('board-settings');
    this.settingsForm = document.getElementById('board-settings-form');
    this.settingsOpen = document.getElementById('board-settings-open');
    this.settingsOpen.addEventListener('click', () => this.openSettings());
    this.settingsForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.saveSettings();
    });
    document.getElementById('board-settings-cancel').addEventListener('click', () => this.settings.close());
    this.settings.addEventListener('close', () => this.settingsOpen.focus());
    this.members = new MembersPanel({
      api,
      announce,
      board: () => this.boards.store.board,
      canAdmin: () => this.canAdmin(),
    });
    this.webhooks = new WebhooksPanel({
      api,
      announce,
      board: () => this.boards.store.board,
      canAdmin: () => this.canAdmin(),
    });
  }

  /** The select lists my boards, the one on screen chosen (also while it is archived). */
  render() {
    const current = this.boards.currentId;
    const list = [...this.boards.list];
    const shown = this.boards.store.board;
    if (shown && !list.some((b) => b.id === shown.id)) list.push(shown);
    const options = list.map((b) =>
      h('option', { value: b.id }, b.archived ? `${b.name} (archived)` : b.name),
    );
    options.push(h('option', { value: NEW }, 'New board…'));
    this.select.replaceChildren(...options);
    if (current) this.select.value = current;
    // The name of the board on screen, when the select itself is not read.
    document.title = shown ? `${shown.name} · taskraft board` : 'taskraft board';
    // Admins: the settings; anyone else: the members of a board that has a list.
    const admin = this.canAdmin();
    this.settingsOpen.hidden = !shown || !(admin || !shown.default);
    this.settingsOpen.textContent = admin ? 'Board settings' : 'Members';
    if (this.settings.open) this.renderSettings();
  }

  /** The dialog as my role on the board on screen has it (it may change while open). */
  renderSettings() {
    const board = this.boards.store.board;
    if (!board) return;
    const admin = this.canAdmin();
    if (!admin && board.default) {
      this.settings.close();
      return;
    }
    document.getElementById('board-settings-heading').textContent = admin ? 'Board settings' : `Members of ${board.name}`;
    document.getElementById('board-settings-fields').hidden = !admin;
    document.getElementById('board-settings-save').hidden = !admin;
    this.members.render();
    this.webhooks.render();
  }

  /** May I rename or archive the board on screen? (Its admins; the server decides.) */
  canAdmin() {
    return this.boards.store.board?.role === 'admin';
  }

  openSettings() {
    const board = this.boards.store.board;
    if (!board) return;
    document.getElementById('board-rename').value = board.name;
    document.getElementById('board-archive').checked = board.archived;
    document.getElementById('board-archive-field').hidden = board.default;
    document.getElementById('board-settings-error').hidden = true;
    this.renderSettings();
    this.settings.showModal();
    if (this.canAdmin()) document.getElementById('board-rename').focus();
    else document.getElementById('board-settings-heading').focus();
    this.members.open();
    this.webhooks.open();
  }

  async saveSettings() {
    const board = this.boards.store.board;
    if (!this.canAdmin()) {
      this.settings.close();
      return;
    }
    const error = document.getElementById('board-settings-error');
    const name = document.getElementById('board-rename').value.trim();
    const archived = document.getElementById('board-archive').checked;
    if (!name) {
      error.textContent = 'A board needs a name.';
      error.hidden = false;
      return;
    }
    const changes = {};
    if (name !== board.name) changes.name = name;
    if (!board.default && archived !== board.archived) changes.archived = archived;
    if (Object.keys(changes).length === 0) {
      this.settings.close();
      return;
    }
    let res;
    try {
      res = await this.api.request('PATCH', `/api/boards/${encodeURIComponent(board.id)}`, {
        body: changes,
        idempotencyKey: uuid(),
      });
    } catch (err) {
      error.textContent = `Not saved: ${err.message}`;
      error.hidden = false;
      return;
    }
    if (!res.ok) {
      error.textContent = `Not saved: ${errorMessage(res)}`;
      error.hidden = false;
      return;
    }
    this.settings.close();
    this.announce(`Saved the board ${name}${changes.archived ? ', archived' : ''}.`);
  }

  openNew() {
    this.name.value = '';
    this.error.hidden = true;
    this.importer.reset();
    this.dialog.showModal();
    this.name.focus();
  }

  async create() {
    const name = this.name.value.trim();
    if (!name) {
      this.error.textContent = 'A board needs a name.';
      this.error.hidden = false;
      this.name.focus();
      return;
    }
    const button = this.form.querySelector('button[type=submit]');
    button.disabled = true;
    let res;
    try {
      res = await this.api.request('POST', '/api/boards', { body: { name }, idempotencyKey: uuid() });
    } catch (err) {
      this.error.textContent = `Not created: ${err.message}`;
      this.error.hidden = false;
      return;
    } finally {
      button.disabled = false;
    }
    if (!res.ok) {
      this.error.textContent = `Not created: ${errorMessage(res)}`;
      this.error.hidden = false;
      return;
    }
    this.dialog.close();
    this.announce(`Created the board ${name}.`);
    this.dispatchEvent(new CustomEvent('switch', { detail: { id: String(res.body.id) } }));
  }
}
