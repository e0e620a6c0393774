// The bell: the signed-in user's notifications (mentions of them, and
// reminders of their cards due soon), newest first, in a panel under a
// header button whose name says how many are unread.
//
// Read once at start, then again whenever the live feed carries one of the
// user's notification events (the server shows those to their user alone:
// `notification_added` lights the bell, `notifications_read` from another
// tab or node dims it). Opening one marks it read (through the log, so
// every node and tab agrees) and opens its card on its board.

import { errorMessage } from './api.js';
import { formatTime, h, relativeTime } from './util.js';

const PAGE = 30;

export class Bell {
  /**
   * `openCard(boardId, taskId)` shows a card on its board; `me()` is the
   * signed-in user's id (`null`: nobody, or accounts off: no bell).
   */
  constructor({ api, button, panel, announce, toasts, openCard, me }) {
    this.api = api;
    this.button = button;
    this.panel = panel;
    this.announce = announce;
    this.toasts = toasts;
    this.openCard = openCard;
    this.me = me;
    this.items = [];
    this.unread = 0;
    this.loading = null;
    this.list = panel.querySelector('#bell-list');
    this.markAll = panel.querySelector('#bell-mark-all');
    this.count = button.querySelector('.bell-count');
    button.addEventListener('click', () => (this.panel.hidden ? this.show() : this.hide()));
    this.markAll.addEventListener('click', () => this.readAll());
    panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.hide({ focus: true });
      }
    });
    document.addEventListener('pointerdown', (e) => {
      if (!this.panel.hidden && !this.panel.contains(e.target) && !this.button.contains(e.target)) this.hide();
    });
  }

  /** Shows the bell for a signed-in user and reads their notifications. */
  async start() {
    this.button.hidden = !this.me();
    if (this.me()) await this.load();
  }

  /** Reads the newest page again (one read at a time, the last wins). */
  load() {
    const run = async () => {
      const res = await this.api.request('GET', `/api/notifications?limit=${PAGE}&consistency=local`);
      if (!res.ok) throw new Error(errorMessage(res));
      this.items = res.body.notifications ?? [];
      this.unread = res.body.unread ?? 0;
      this.render();
    };
    this.loading = (this.loading ?? Promise.resolve()).catch(() => {}).then(run);
    return this.loading.catch(() => {});
  }

  /** Events from the live feed: the user's notification events reload. */
  async onEvents(events) {
    const me = this.me();
    if (!me) return;
    const mine = events.filter((ev) => ev.notification?.user_id === me);
    if (!mine.length) return;
    const before = this.unread;
    await this.load();
    const added = mine.filter((ev) => ev.kind === 'notification_added').length;
    if (added && this.unread > before) {
      const newest = this.items[0];
      this.announce(newest ? `New notification: ${this.sentence(newest)}` : 'New notification.');
    }
  }

  label() {
    return this.unread ? `Notifications, ${this.unread} unread` : 'Notifications, none unread';
  }

  /** What a notification says, in words. */
  sentence(n) {
    const title = n.task_title ? `“${n.task_title}”` : 'a deleted card';
    if (n.kind === 'due') return `${title} is due ${n.due_date}`;
    return `${n.actor?.name ?? 'Someone'} mentioned you ${n.comment_id ? 'in a comment on' : 'on'} ${title}`;
  }

  render() {
    this.button.setAttribute('aria-label', this.label());
    this.button.title = this.label();
    this.button.classList.toggle('lit', this.unread > 0);
    this.count.hidden = this.unread === 0;
    this.count.textContent = this.unread > 99 ? '99+' : String(this.unread);
    this.markAll.disabled = this.unread === 0;
    // A re-render keeps the keyboard where it was.
    const focused = this.list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    this.list.replaceChildren();
    if (!this.items.length) {
      this.list.append(h('li', { class: 'bell-empty', text: 'Nothing yet: when someone mentions you with @, it shows here.' }));
      return;
    }
    for (const n of this.items) {
      this.list.append(
        h(
          'li',
          { class: `bell-item${n.read ? '' : ' unread'}` },
          h(
            'button',
            { type: 'button', class: 'bell-open', dataset: { id: String(n.id) }, onclick: () => this.open(n) },
            h('span', { class: 'bell-what', text: `${n.read ? '' : '● '}${this.sentence(n)}` }),
            n.kind === 'mention' ? h('span', { class: 'bell-excerpt', text: n.excerpt }) : null,
            h('time', { class: 'bell-when', datetime: n.at, title: formatTime(n.at), text: relativeTime(n.at) }),
          ),
        ),
      );
    }
    if (focused) this.list.querySelector(`[data-id="${CSS.escape(focused)}"]`)?.focus();
  }

  focusFirst() {
    (this.list.querySelector('button') ?? this.markAll).focus();
  }

  show() {
    this.panel.hidden = false;
    this.button.setAttribute('aria-expanded', 'true');
    this.focusFirst();
    this.load().then(() => {
      if (!this.panel.hidden && !this.panel.contains(document.activeElement)) this.focusFirst();
    });
  }

  hide({ focus = false } = {}) {
    if (this.panel.hidden) return;
    this.panel.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
    if (focus) this.button.focus();
  }

  async mark(body) {
    const res = await this.api.request('POST', '/api/notifications/read', { body });
    if (!res.ok) throw new Error(errorMessage(res));
    this.unread = res.body.unread ?? this.unread;
  }

  /** Marks it read, and opens its card on its board. */
  async open(n) {
    this.hide();
    if (!n.read) {
      n.read = true;
      this.mark({ ids: [n.id] })
        .then(() => this.load())
        .catch((err) => this.toasts.show(`Could not mark it read: ${err.message}`, { kind: 'error' }));
    }
    if (!n.task_title) {
      this.toasts.show('That card no longer exists.');
      return;
    }
    await this.openCard(n.board_id, n.task_id);
  }

  async readAll() {
    const newest = this.items[0];
    if (!newest) return;
    try {
      await this.mark({ upto: newest.id });
      await this.load();
      this.announce('All notifications marked read.');
    } catch (err) {
      this.toasts.show(`Could not mark them read: ${err.message}`, { kind: 'error' });
    }
  }
}
