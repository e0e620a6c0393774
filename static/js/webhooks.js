// "Webhooks" in the board settings, for the board's admins only (a
// webhook's URL is itself a secret): the board's outgoing webhooks from
// GET /api/boards/{id}/webhooks with how far each got, one added with a
// URL and a description (POST; its secret is shown once, selected in a
// read-only field to copy), one removed (DELETE). The README's Webhooks
// section says what is sent and how to check the signature.

import { errorMessage } from './api.js';
import { h } from './util.js';

/** The host of a URL, for the announcements (its path may hold a token). */
function hostOf(url) {
  try {
    return new URL(String(url)).host;
  } catch {
    return 'its URL';
  }
}

export class WebhooksPanel {
  /** `board()`: the board on screen (store.board); `canAdmin()`: may I see its webhooks? */
  constructor({ api, announce, board, canAdmin }) {
    this.api = api;
    this.announce = announce;
    this.board = board;
    this.canAdmin = canAdmin;
    this.section = document.getElementById('board-webhooks');
    this.list = document.getElementById('webhooks-list');
    this.note = document.getElementById('webhooks-note');
    this.url = document.getElementById('webhook-url');
    this.description = document.getElementById('webhook-description');
    this.addButton = document.getElementById('webhook-add-go');
    this.secret = document.getElementById('webhook-secret');
    this.secretValue = document.getElementById('webhook-secret-value');
    this.error = document.getElementById('webhooks-error');
    this.addButton.addEventListener('click', () => this.add());
    // Enter in a field adds the webhook rather than saving the settings.
    for (const field of [this.url, this.description]) {
      field.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          this.add();
        }
      });
    }
  }

  path(suffix = '') {
    return `/api/boards/${encodeURIComponent(this.board().id)}/webhooks${suffix}`;
  }

  /** The dialog opens: the list again, for admins. */
  async open() {
    this.showError(null);
    this.secret.hidden = true;
    this.secretValue.value = '';
    this.render();
    if (!this.section.hidden) await this.load();
  }

  /** Shown to the board's admins only. */
  render() {
    this.section.hidden = !this.board() || !this.canAdmin();
  }

  async load() {
    let res;
    try {
      res = await this.api.request('GET', this.path());
    } catch (err) {
      this.showError(`The webhooks could not be read: ${err.message}`);
      return;
    }
    if (!res.ok) {
      this.showError(`The webhooks could not be read: ${errorMessage(res)}`);
      return;
    }
    const hooks = Array.isArray(res.body?.webhooks) ? res.body.webhooks : [];
    // New rows replace the old: a keyboard user on one keeps their place
    // (on its Remove, or on the URL field if it is gone).
    const focused = this.list.contains(document.activeElement)
      ? document.activeElement.closest('.webhook')?.dataset.webhookId
      : undefined;
    this.list.replaceChildren(...hooks.map((w) => this.row(w)));
    if (focused !== undefined) {
      const again = [...this.list.children].find((li) => li.dataset.webhookId === focused);
      (again?.querySelector('.webhook-remove') ?? this.url).focus();
    }
    const n = hooks.length;
    this.note.textContent = n
      ? `${n} webhook${n === 1 ? '' : 's'}: the board’s events are posted to each, signed with its secret.`
      : 'No webhooks: nothing of this board leaves the cluster.';
  }

  row(w) {
    const urlId = `webhook-url-${w.id}`;
    const last = w.last_delivery;
    let state = 'No delivery yet.';
    if (w.failing_since) {
      state = `Failing since ${new Date(w.failing_since).toLocaleString()}${last?.status ? ` (last answer ${last.status})` : last?.error ? ` (${last.error})` : ''}.`;
    } else if (last) {
      state = `Delivered up to event ${w.delivered_seq}.`;
    }
    const remove = h('button', { type: 'button', class: 'button subtle danger webhook-remove', 'aria-describedby': urlId }, 'Remove');
    remove.addEventListener('click', () => this.remove(w, remove));
    return h(
      'li',
      { class: 'member webhook', dataset: { webhookId: w.id } },
      h('code', { class: 'member-name webhook-url', id: urlId }, String(w.url)),
      w.description ? h('span', { class: 'muted' }, String(w.description)) : null,
      h('span', { class: 'muted webhook-state' }, state),
      remove,
    );
  }

  showError(text) {
    this.error.textContent = text ?? '';
    this.error.hidden = !text;
  }

  async add() {
    const url = this.url.value.trim();
    if (!url) {
      this.showError('A webhook needs a URL.');
      this.url.focus();
      return;
    }
    this.showError(null);
    this.addButton.disabled = true;
    let res;
    try {
      res = await this.api.request('POST', this.path(), {
        body: { url, description: this.description.value.trim() },
      });
    } catch (err) {
      res = { ok: false, status: 0, body: { error: { message: `no node answered (${err.message})` } } };
    } finally {
      this.addButton.disabled = false;
    }
    if (!res.ok) {
      this.showError(`The webhook was not added: ${errorMessage(res)}`);
      this.url.focus();
      return;
    }
    this.url.value = '';
    this.description.value = '';
    this.secretValue.value = String(res.body?.secret ?? '');
    this.secret.hidden = false;
    await this.load();
    this.secretValue.focus();
    this.secretValue.select();
    this.announce(`Added a webhook to ${hostOf(res.body?.url)}. Copy its secret now: it is not shown again.`);
  }

  async remove(w, button) {
    this.showError(null);
    button.disabled = true;
    let res;
    try {
      res = await this.api.request('DELETE', this.path(`/${encodeURIComponent(w.id)}`));
    } catch (err) {
      res = { ok: false, status: 0, body: { error: { message: `no node answered (${err.message})` } } };
    }
    if (!res.ok) {
      button.disabled = false;
      this.showError(`The webhook was not removed: ${errorMessage(res)}`);
      return;
    }
    await this.load();
    this.url.focus();
    this.announce(`Removed the webhook to ${hostOf(w.url)}.`);
  }
}
