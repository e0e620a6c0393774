// Who is signed in, and the sign-in dialog.
//
// `GET /api/session` says who the page is signed in as (and the CSRF token its
// writes carry). A 401 means nobody: the dialog asks for a name and password
// (`POST /api/session`). A node with `auth = "off"` says so (`"auth": "off"`):
// the page then works as before, with no one signed in and every action shown.
//
// The dialog is modal and sits above whatever is open (a card being edited
// stays as it is underneath); a request that met a 401 waits for it and is
// then sent again.

import { errorMessage } from './api.js';
import { h } from './util.js';

/** What each role may do (the server decides; the page only hides). */
const CAN = {
  viewer: new Set(['read']),
  member: new Set(['read', 'write']),
  admin: new Set(['read', 'write', 'admin']),
};

export class Session extends EventTarget {
  constructor(api, dialog) {
    super();
    this.api = api;
    this.dialog = dialog;
    /** {id, username, display_name, role} or null. */
    this.user = null;
    /** True when the nodes run without accounts (`auth = "off"`). */
    this.open = false;
    this.asking = null;
    this.form = dialog.querySelector('form');
    this.error = dialog.querySelector('.login-error');
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    // Escape would leave the page with nothing it may show: keep it open.
    dialog.addEventListener('cancel', (e) => e.preventDefault());
    api.onUnauthenticated = () => this.ask('Your session has ended. Sign in again to go on.');
  }

  /** May the signed-in user do `what` ('read', 'write', 'admin')? */
  can(what) {
    if (this.open) return true;
    return CAN[this.user?.role]?.has(what) ?? false;
  }

  /** Learns who is signed in; resolves once someone is (or accounts are off). */
  async start() {
    const res = await this.api.request('GET', '/api/session', { deadlineMs: 60000, noSignIn: true });
    if (res.status === 200 && res.body?.auth === 'off') {
      this.open = true;
      this.changed();
    } else if (res.status === 200) {
      this.signedIn(res.body);
    } else {
      await this.ask();
    }
  }

  /** Shows the dialog (once, however many ask); resolves when signed in. */
  ask(reason = '') {
    if (this.asking) return this.asking;
    this.asking = new Promise((resolve) => {
      this.resolve = resolve;
    });
    this.showError(reason, 'info');
    if (!this.dialog.open) this.dialog.showModal();
    this.form.elements.username.focus();
    this.offerSingleSignOn();
    return this.asking;
  }

  /** Shows "Sign in with single sign-on" when the node offers OpenID Connect. */
  async offerSingleSignOn() {
    const link = this.dialog.querySelector('#login-sso');
    if (!link) return;
    const res = await this.api.request('GET', '/auth/oidc', { deadlineMs: 10000, noSignIn: true }).catch(() => null);
    if (res?.status === 200 && res.body?.enabled === true && typeof res.body.login === 'string') {
      link.href = new URL(res.body.login, this.api.current).href;
      link.hidden = false;
    }
  }

  async submit() {
    const username = this.form.elements.username.value.trim();
    const password = this.form.elements.password.value;
    if (!username || !password) {
      this.showError('Enter your user name and password.');
      return;
    }
    const button = this.form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const res = await this.api.request('POST', '/api/session', {
        body: { username, password },
        deadlineMs: 15000,
        noSignIn: true,
      });
      if (res.status === 200) {
        this.form.elements.password.value = '';
        this.showError('');
        this.dialog.close();
        this.signedIn(res.body);
        const resolve = this.resolve;
        this.asking = null;
        resolve?.();
      } else if (res.status === 429) {
        this.showError(`Too many attempts. ${errorMessage(res)}`);
      } else if (res.status === 401) {
        this.showError('That user name and password do not match.');
        this.form.elements.password.select();
      } else {
        this.showError(errorMessage(res));
      }
    } catch (err) {
      this.showError(`No node answered: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async signOut() {
    await this.api.request('DELETE', '/api/session', { deadlineMs: 10000, noSignIn: true }).catch(() => null);
    this.user = null;
    this.api.csrf = null;
    this.changed();
    await this.ask('Signed out.');
  }

  /** The node says the sign-in ended (logout on another tab or node, disabled, revoked, expired). */
  signedOutElsewhere(reason) {
    const why = String(reason ?? '').replace(/^signed out: /, '');
    return this.ask(`Signed out${why ? ` (${why})` : ''}. Sign in again to go on.`);
  }

  signedIn(body) {
    this.user = body?.user ?? null;
    this.api.csrf = typeof body?.csrf === 'string' ? body.csrf : null;
    this.changed();
  }

  changed() {
    this.dispatchEvent(new CustomEvent('change', { detail: { user: this.user } }));
  }

  showError(text, kind = 'error') {
    this.error.textContent = text;
    this.error.hidden = !text;
    this.error.className = `login-error login-${kind}`;
  }

  /** The header's "signed in as" line and sign-out button. */
  renderWho(root) {
    if (this.open || !this.user) {
      root.replaceChildren();
      root.hidden = true;
      return;
    }
    const name = this.user.display_name || this.user.username;
    const out = h(
      'button',
      { type: 'button', class: 'button subtle', id: 'sign-out', title: `Signed in as ${name} (${this.user.role})` },
      'Sign out',
    );
    out.addEventListener('click', () => this.signOut());
    root.replaceChildren(
      h('span', { class: 'who-name', title: `${this.user.username} · ${this.user.role}` }, name),
      h('span', { class: `role-badge role-${this.user.role}` }, this.user.role),
      out,
    );
    root.hidden = false;
  }
}
