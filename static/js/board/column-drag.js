// Moving a column with the pointer: press on its header (not on its menu)
// and drag sideways. The column is lifted and goes, in the row of columns,
// wherever the pointer passes the middle of another; the drop saves its
// new place (column-edit.js, `place`). Esc or a cancelled pointer puts the
// row back and writes nothing; a drop where it started writes nothing
// either. The keyboard does the same with Alt+← and Alt+→ (column-edit.js).

/** The pointer moves this far before a press becomes a drag. */
const DRAG_DISTANCE = 5;

export class ColumnDrag {
  /** `board` supplies: root, editor (place), canEditColumns, announce(text) and render(). */
  constructor(board) {
    this.board = board;
    this.press = null;
    this.drag = null;
    this.bind();
  }

  bind() {
    const root = this.board.root;
    root.addEventListener('pointerdown', (e) => {
      const head = e.target.closest('.column-head');
      if (!head || e.button !== 0 || !this.board.canEditColumns || this.drag) return;
      // On touch a swipe scrolls the row of columns; the menu moves a column there.
      if (e.pointerType === 'touch') return;
      if (e.target.closest('button, a, input, select, textarea')) return;
      const section = head.closest('.column');
      this.press = { section, id: section.dataset.columnId, x: e.clientX, y: e.clientY, pointerId: e.pointerId };
    });
    window.addEventListener('pointermove', (e) => {
      if (this.drag) {
        if (e.pointerId === this.drag.pointerId) this.moveTo(e.clientX);
        return;
      }
      const press = this.press;
      if (!press || e.pointerId !== press.pointerId) return;
      if (Math.hypot(e.clientX - press.x, e.clientY - press.y) > DRAG_DISTANCE) this.start(press);
    });
    window.addEventListener('pointerup', (e) => {
      if (this.drag && e.pointerId === this.drag.pointerId) this.drop();
      this.press = null;
    });
    window.addEventListener('pointercancel', () => {
      if (this.drag) this.end();
      this.press = null;
    });
    document.addEventListener(
      'keydown',
      (e) => {
        if (e.key === 'Escape' && this.drag) {
          e.preventDefault();
          e.stopPropagation();
          this.end();
          this.board.announce('Column move cancelled.');
        }
      },
      true,
    );
  }

  start(press) {
    this.press = null;
    if (!press.section.isConnected) return;
    const order = this.order();
    this.drag = { id: press.id, section: press.section, pointerId: press.pointerId, before: order };
    press.section.classList.add('column-lifted');
    document.body.classList.add('is-dragging-column');
  }

  /** The column ids in the order the row shows them now. */
  order() {
    return [...this.board.root.querySelectorAll(':scope > .column')].map((el) => el.dataset.columnId);
  }

  moveTo(x) {
    const { section } = this.drag;
    const root = this.board.root;
    for (const other of root.querySelectorAll(':scope > .column')) {
      if (other === section) continue;
      const r = other.getBoundingClientRect();
      if (x < r.left || x > r.right) continue;
      const mid = r.left + r.width / 2;
      if (x < mid && other.previousElementSibling !== section) root.insertBefore(section, other);
      else if (x >= mid && other.nextElementSibling !== section) root.insertBefore(section, other.nextElementSibling);
      break;
    }
    // Near the side of a board that scrolls sideways: the next columns.
    if (root.scrollWidth > root.clientWidth) {
      const r = root.getBoundingClientRect();
      if (x < r.left + 48) root.scrollBy(-12, 0);
      else if (x > r.right - 48) root.scrollBy(12, 0);
    }
  }

  drop() {
    const d = this.drag;
    const order = this.order();
    this.end();
    if (order.join() === d.before.join()) return; // dropped where it was
    const at = order.indexOf(d.id);
    this.board.editor.place(d.id, order[at - 1] ?? null, order[at + 1] ?? null);
  }

  /** The row back as the page has it (a drop then shows the new place). */
  end() {
    const d = this.drag;
    if (!d) return;
    d.section.classList.remove('column-lifted');
    document.body.classList.remove('is-dragging-column');
    this.drag = null;
    this.board.render();
  }
}
