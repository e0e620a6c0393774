// Search and filters. They live in the URL's query string (?q=&assignee=&label=&priority=),
// so a filtered board can be reloaded, bookmarked and shared.
//
// Filtering happens in the page, over the whole board: live events can then
// move a card in or out of view without asking the server again.

import { h, PRIORITIES, PRIORITY_NAME } from './util.js';

const KEYS = ['q', 'assignee', 'label', 'priority'];

export class Filters extends EventTarget {
  constructor(form) {
    super();
    this.form = form;
    this.q = form.querySelector('#filter-q');
    this.assignee = form.querySelector('#filter-assignee');
    this.label = form.querySelector('#filter-label');
    this.priority = form.querySelector('#filter-priority');
    this.clear = form.querySelector('#filter-clear');
    this.priority.replaceChildren(
      h('option', { value: '' }, 'Any priority'),
      ...PRIORITIES.map((p) => h('option', { value: p }, PRIORITY_NAME[p])),
    );
    this.values = readUrl();
    this.writeInputs();
    let typing = null;
    this.q.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.fromInputs(), 120);
    });
    for (const select of [this.assignee, this.label, this.priority]) {
      select.addEventListener('change', () => this.fromInputs());
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.fromInputs();
    });
    this.clear.addEventListener('click', () => {
      this.values = { q: '', assignee: '', label: '', priority: '' };
      this.writeInputs();
      this.commit();
    });
    window.addEventListener('popstate', () => {
      this.values = readUrl();
      this.writeInputs();
      this.dispatchEvent(new Event('change'));
    });
  }

  active() {
    return KEYS.some((k) => this.values[k]);
  }

  matches(task) {
    const { q, assignee, label, priority } = this.values;
    if (assignee && task.assignee !== assignee) return false;
    if (label && !task.labels.includes(label)) return false;
    if (priority && task.priority !== priority) return false;
    if (q) {
      const hay = [task.title, task.description, task.assignee ?? '', ...task.labels].join('\n').toLowerCase();
      for (const word of q.toLowerCase().split(/\s+/).filter(Boolean)) {
        if (!hay.includes(word)) return false;
      }
    }
    return true;
  }

  /** Refresh the assignee and label choices from the tasks on the board. */
  updateChoices(tasks) {
    const people = new Set();
    const labels = new Set();
    for (const t of tasks) {
      if (t.assignee) people.add(t.assignee);
      for (const l of t.labels) labels.add(l);
    }
    // Keep the current choice even when no task has it any more.
    if (this.values.assignee) people.add(this.values.assignee);
    if (this.values.label) labels.add(this.values.label);
    fill(this.assignee, 'Anyone', [...people].sort(collate), this.values.assignee);
    fill(this.label, 'Any label', [...labels].sort(collate), this.values.label);
    return { people: [...people].sort(collate), labels: [...labels].sort(collate) };
  }

  fromInputs() {
    this.values = {
      q: this.q.value.trim(),
      assignee: this.assignee.value,
      label: this.label.value,
      priority: this.priority.value,
    };
    this.commit();
  }

  commit() {
    const params = new URLSearchParams(location.search);
    for (const k of KEYS) {
      if (this.values[k]) params.set(k, this.values[k]);
      else params.delete(k);
    }
    const query = params.toString();
    const url = `${location.pathname}${query ? `?${query}` : ''}${location.hash}`;
    if (url !== `${location.pathname}${location.search}${location.hash}`) {
      history.replaceState(history.state, '', url);
    }
    this.clear.hidden = !this.active();
    this.dispatchEvent(new Event('change'));
  }

  writeInputs() {
    this.q.value = this.values.q;
    for (const [select, key] of [
      [this.assignee, 'assignee'],
      [this.label, 'label'],
      [this.priority, 'priority'],
    ]) {
      if (this.values[key] && ![...select.options].some((o) => o.value === this.values[key])) {
        select.append(h('option', { value: this.values[key] }, this.values[key]));
      }
      select.value = this.values[key];
    }
    this.clear.hidden = !this.active();
  }

  /** Only these words (a hit of "Search all boards" shown on its board). */
  showOnly(words) {
    this.values = { q: words, assignee: '', label: '', priority: '' };
    this.writeInputs();
    this.commit();
  }

  focusSearch() {
    this.q.focus();
    this.q.select();
  }
}

function readUrl() {
  const params = new URLSearchParams(location.search);
  const v = Object.fromEntries(KEYS.map((k) => [k, (params.get(k) ?? '').trim()]));
  if (v.priority && !PRIORITIES.includes(v.priority)) v.priority = '';
  return v;
}

const collate = (a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' });

function fill(select, anyText, values, current) {
  const wanted = ['', ...values];
  const have = [...select.options].map((o) => o.value);
  if (wanted.length === have.length && wanted.every((v, i) => v === have[i])) return;
  select.replaceChildren(h('option', { value: '' }, anyText), ...values.map((v) => h('option', { value: v }, v)));
  select.value = current;
}
