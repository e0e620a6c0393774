// "Import a board from a file…", in the New board dialog: a Trello board
// export (JSON), a CSV of cards, or a board exported from here. The file
// goes to POST /api/boards/import under one Idempotency-Key; a job then
// writes the board through the log, and the progress bar follows
// GET /api/jobs/{id}. If the node running the job stops answering (the
// page moved to another node), the same file is sent again under the same
// key: the job resumes there, and nothing is written twice. A file the
// server refuses says where its first problem is.

import { errorMessage } from './api.js';
import { sleep, uuid } from './util.js';

const POLL_MS = 300;

export class BoardImport {
  /** `name()`: the name typed in the dialog (a CSV's board name). `onDone(boardId, job)`. */
  constructor({ api, announce, name, onDone }) {
    this.api = api;
    this.announce = announce;
    this.name = name;
    this.onDone = onDone;
    this.format = document.getElementById('import-format');
    this.file = document.getElementById('import-file');
    this.go = document.getElementById('import-go');
    this.progress = document.getElementById('import-progress');
    this.status = document.getElementById('import-status');
    this.running = false;
    this.go.addEventListener('click', () => this.start());
    this.file.addEventListener('change', () => {
      // Guess the format from the file's name.
      const name = this.file.files[0]?.name?.toLowerCase() ?? '';
      if (name.endsWith('.csv')) this.format.value = 'csv';
      else if (name.endsWith('.json') && this.format.value === 'csv') this.format.value = 'trello';
    });
  }

  reset() {
    if (this.running) return;
    this.file.value = '';
    this.progress.hidden = true;
    this.status.textContent = '';
  }

  async start() {
    if (this.running) return;
    const file = this.file.files[0];
    if (!file) {
      this.say('Choose a file first.');
      this.file.focus();
      return;
    }
    this.running = true;
    this.go.disabled = true;
    this.progress.hidden = false;
    this.progress.removeAttribute('value'); // indeterminate while the file is read
    try {
      await this.run(file);
    } finally {
      this.running = false;
      this.go.disabled = false;
    }
  }

  async run(file) {
    const query = new URLSearchParams({ format: this.format.value });
    const typed = this.name().trim();
    if (this.format.value === 'csv') query.set('name', typed || file.name.replace(/\.[^.]*$/, '') || 'Imported board');
    const key = uuid();
    const send = () => this.api.request('POST', `/api/boards/import?${query}`, { raw: file, idempotencyKey: key, deadlineMs: 120000 });
    this.say(`Reading ${file.name}…`);
    let res;
    try {
      res = await send();
    } catch (err) {
      this.say(`Not imported: ${err.message}`);
      this.progress.hidden = true;
      return;
    }
    if (res.status !== 202) {
      const where = res.body?.error?.field;
      this.say(`Not imported${where ? ` (${where})` : ''}: ${errorMessage(res)}`);
      this.progress.hidden = true;
      return;
    }
    let job = res.body.job;
    for (;;) {
      this.show(job);
      if (job.state !== 'running') break;
      await sleep(POLL_MS);
      let poll;
      try {
        poll = await this.api.request('GET', `/api/jobs/${encodeURIComponent(job.id)}`);
      } catch {
        continue;
      }
      if (poll.status === 404) {
        // Another node now: the job resumes there from the same file.
        const again = await send().catch(() => null);
        if (again?.status === 202) job = again.body.job;
        continue;
      }
      if (poll.ok) job = poll.body.job;
    }
    if (job.state === 'done') {
      this.announce(`Imported ${job.cards} card${job.cards === 1 ? '' : 's'}.`);
      this.onDone(String(job.board_id), job);
    } else {
      this.say(`The import stopped: ${job.error ?? 'unknown error'}. Import the same file again to resume it.`);
    }
  }

  show(job) {
    this.progress.max = Math.max(1, job.total);
    this.progress.value = job.done;
    const percent = Math.floor((100 * job.done) / Math.max(1, job.total));
    this.progress.setAttribute('aria-valuetext', `${percent}%`);
    if (job.state === 'running') this.say(`Importing ${job.cards} cards: ${percent}%`);
    else if (job.state === 'done') this.say(`Imported ${job.cards} cards.`);
  }

  say(text) {
    this.status.textContent = text;
  }
}
