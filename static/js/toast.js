// Small notices at the bottom of the page, optionally with one action (Undo).

import { h, icon } from './util.js';

export class Toasts {
  constructor(container) {
    this.container = container;
  }

  /**
   * show('Deleted “x”', {action: 'Undo', onAction, timeout: 5000, kind: 'info'|'error'|'ok'})
   * Returns {close()}.
   */
  show(message, { action, onAction, timeout = 4000, kind = 'info', onTimeout } = {}) {
    let timer = null;
    const close = () => {
      clearTimeout(timer);
      toast.classList.add('leaving');
      setTimeout(() => toast.remove(), 200);
    };
    const toast = h(
      'div',
      { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
      h('span', { class: 'toast-text' }, message),
      action
        ? h(
            'button',
            {
              type: 'button',
              class: 'toast-action',
              onclick: () => {
                close();
                onAction?.();
              },
            },
            action,
          )
        : null,
      h(
        'button',
        { type: 'button', class: 'toast-close icon-button', 'aria-label': 'Dismiss', onclick: close },
        icon('close'),
      ),
    );
    if (timeout) {
      const bar = h('span', { class: 'toast-timer' });
      bar.style.animationDuration = `${timeout}ms`;
      toast.append(bar);
      timer = setTimeout(() => {
        close();
        onTimeout?.();
      }, timeout);
    }
    this.container.append(toast);
    // Keep the stack short.
    // Keep the stack short, but never drop one that offers an action (Undo).
    const plain = [...this.container.children].filter((t) => !t.querySelector('.toast-action'));
    while (this.container.children.length > 4 && plain.length) plain.shift().remove();
    return { close, element: toast };
  }
}
