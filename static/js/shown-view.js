// A view shown instead of the live board, which keeps running behind it:
// "Archived cards", "Activity" and "Search all boards". Each is a section
// `#ID` with `#ID-status`, `#ID-list`, `#ID-more` ("Show more") and
// `#ID-back` ("Back to the board"); Escape anywhere while it is shown
// (and no dialog is open) returns to the board too.

export class ShownView {
  /** `onShown(shown)`: the live board hides while shown. */
  constructor(id, onShown) {
    this.onShown = onShown;
    this.view = document.getElementById(id);
    this.status = document.getElementById(`${id}-status`);
    this.list = document.getElementById(`${id}-list`);
    this.more = document.getElementById(`${id}-more`);
    this.cursor = null;
    document.getElementById(`${id}-back`).addEventListener('click', () => this.close());
    this.more.addEventListener('click', () => this.load());
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || !this.open || e.defaultPrevented || document.querySelector('dialog[open]')) return;
      e.preventDefault();
      this.close();
    });
  }

  get open() {
    return !this.view.hidden;
  }

  show() {
    this.view.hidden = false;
    this.onShown(true);
  }

  /** The next page's cursor: "Show more" while there is one. Focus on it when it goes moves to `then`. */
  paged(cursor, then) {
    this.cursor = cursor ?? null;
    if (!this.cursor && document.activeElement === this.more) then.focus();
    this.more.hidden = !this.cursor;
  }

  /** Overridden: the next page. */
  load() {}

  /** Overridden: what else to forget when the view goes. */
  closed() {}

  close({ keepFocus = false } = {}) {
    if (!this.open) return;
    this.view.hidden = true;
    this.list.replaceChildren();
    this.closed();
    this.onShown(false);
    if (!keepFocus) document.getElementById('board').focus();
  }
}
