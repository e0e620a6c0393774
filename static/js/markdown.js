// A small, safe Markdown renderer for task descriptions.
//
// It never produces HTML text: it builds DOM nodes with createElement and puts
// every piece of the user's text in through text nodes, so nothing the user
// writes can become markup. Supported: paragraphs (single newlines are line
// breaks), # headings, > quotes, - / * / 1. lists (nested by indentation,
// "- [ ]" task items), ``` fenced code, ---, | tables | with a | --- | row,
// **bold**, *italic*, _italic_, ~~strike~~, `code`, [text](http(s) URL),
// ![alt](http(s) URL) images, bare http(s) URLs, backslash escapes.
// Links and images are kept only when their URL parses as absolute http: or
// https:; images load lazily, with no referrer.
//
// A task item's checkbox is labelled by the item's text and carries the
// number of the source line it came from (data-line), so ticking it can
// change exactly that line (toggleTaskItem).

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TASK = /^\[([ xX])\]\s+(.*)$/;
/** A table's second line: | --- | :---: | ---: | */
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

/** The http(s) URL in `raw`, or null. */
export function safeUrl(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

/** Render `text` as a DocumentFragment of safe nodes. */
export function renderMarkdown(text, doc = globalThis.document) {
  const frag = doc.createDocumentFragment();
  const lines = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  renderBlocks(lines, frag, doc, 0, lines.map((_, i) => i));
  return frag;
}

/**
 * `text` with the task item on source line `line` ticked (or not). The line
 * is found as the renderer numbered it; anything else is left as it was.
 */
export function toggleTaskItem(text, line, checked) {
  const lines = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  const source = lines[line];
  if (source === undefined) return text;
  // The item may sit inside quotes: "> - [ ] x".
  const m = /^((?:\s*>\s?)*\s*(?:[-*+]|\d{1,9}[.)])\s+)\[([ xX])\](\s)/.exec(source);
  if (!m) return text;
  lines[line] = `${m[1]}[${checked ? 'x' : ' '}]${m[3]}${source.slice(m[0].length)}`;
  return lines.join('\n');
}

/** The cells of a table row: split on | (not \| nor inside `code`), outer pipes dropped. */
function tableCells(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  const cells = [];
  let cell = '';
  let code = false;
  for (let i = 0; i < row.length; i++) {
    const c = row[i];
    if (c === '\\' && row[i + 1] === '|') {
      cell += '\\|';
      i++;
    } else if (c === '`') {
      code = !code;
      cell += c;
    } else if (c === '|' && !code) {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += c;
    }
  }
  cells.push(cell.trim());
  return cells;
}

function isTableStart(lines, i) {
  return lines[i].includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes('-');
}

/** Render the table starting at lines[start]; return the index after it. */
function renderTable(lines, start, parent, doc) {
  const head = tableCells(lines[start]);
  const aligns = tableCells(lines[start + 1]).map((spec) => {
    const left = spec.startsWith(':');
    const right = spec.endsWith(':');
    if (left && right) return 'center';
    if (right) return 'right';
    return left ? 'left' : null;
  });
  const cell = (tag, text, col) => {
    const el = doc.createElement(tag);
    if (tag === 'th') el.setAttribute('scope', 'col');
    if (aligns[col]) el.className = `align-${aligns[col]}`;
    renderInline(text ?? '', el, doc, false);
    return el;
  };
  const table = doc.createElement('table');
  const thead = doc.createElement('thead');
  const headRow = doc.createElement('tr');
  head.forEach((text, col) => headRow.append(cell('th', text, col)));
  thead.append(headRow);
  table.append(thead);
  const tbody = doc.createElement('tbody');
  let i = start + 2;
  while (i < lines.length && lines[i].trim() !== '' && lines[i].includes('|') && !isBlockStart(lines[i])) {
    const cells = tableCells(lines[i]);
    const tr = doc.createElement('tr');
    head.forEach((_, col) => tr.append(cell('td', cells[col], col)));
    tbody.append(tr);
    i++;
  }
  if (tbody.childElementCount) table.append(tbody);
  parent.append(table);
  return i;
}

function indentOf(line) {
  const m = /^[ \t]*/.exec(line)[0];
  return m.replace(/\t/g, '    ').length;
}

function isBlockStart(line) {
  return FENCE.test(line) || HEADING.test(line) || QUOTE.test(line) || RULE.test(line) || ITEM.test(line);
}

/** `origin[i]` is the source line of `lines[i]` (for task items). */
function renderBlocks(lines, parent, doc, depth, origin) {
  if (depth > 8) {
    // Pathological nesting: show the rest as plain text.
    parent.append(doc.createTextNode(lines.join('\n')));
    return;
  }
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      i++;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length) {
        const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(lines[i]);
        if (close && close[1][0] === fence[0] && close[1].length >= fence.length) {
          i++;
          break;
        }
        body.push(lines[i]);
        i++;
      }
      const pre = doc.createElement('pre');
      const code = doc.createElement('code');
      if (m[2]) code.dataset.lang = m[2];
      code.textContent = body.join('\n');
      pre.append(code);
      parent.append(pre);
      continue;
    }
    if ((m = HEADING.exec(line))) {
      // Descriptions live inside a dialog: # is a modest heading there.
      const level = Math.min(6, m[1].length + 2);
      const heading = doc.createElement(`h${level}`);
      renderInline(m[2], heading, doc, false);
      parent.append(heading);
      i++;
      continue;
    }
    if (RULE.test(line)) {
      parent.append(doc.createElement('hr'));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      const innerOrigin = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        inner.push(m[1]);
        innerOrigin.push(origin[i]);
        i++;
      }
      const quote = doc.createElement('blockquote');
      renderBlocks(inner, quote, doc, depth + 1, innerOrigin);
      parent.append(quote);
      continue;
    }
    if (ITEM.test(line)) {
      i = renderList(lines, i, parent, doc, depth, origin);
      continue;
    }
    if (isTableStart(lines, i)) {
      i = renderTable(lines, i, parent, doc);
      continue;
    }
    // A paragraph: up to a blank line or the start of another block.
    const para = [line.trim()];
    i++;
    while (i < lines.length && lines[i].trim() !== '' && !isBlockStart(lines[i]) && !isTableStart(lines, i)) {
      para.push(lines[i].trim());
      i++;
    }
    const p = doc.createElement('p');
    para.forEach((text, n) => {
      if (n > 0) p.append(doc.createElement('br'));
      renderInline(text, p, doc, false);
    });
    parent.append(p);
  }
}

/** Render the list starting at lines[start]; return the index after it. */
function renderList(lines, start, parent, doc, depth, origin) {
  const first = ITEM.exec(lines[start]);
  const base = indentOf(lines[start]);
  const ordered = /\d/.test(first[2]);
  const list = doc.createElement(ordered ? 'ol' : 'ul');
  if (ordered) {
    const n = parseInt(first[2], 10);
    if (n !== 1) list.setAttribute('start', String(n));
  }
  let i = start;
  while (i < lines.length) {
    const m = ITEM.exec(lines[i]);
    if (!m || indentOf(lines[i]) !== base || /\d/.test(m[2]) !== ordered) break;
    // The item's own text, then any more-indented lines that belong to it.
    const itemLine = origin[i];
    const rest = [];
    const restOrigin = [];
    const keep = (at) => {
      rest.push(lines[at]);
      restOrigin.push(origin[at]);
    };
    i++;
    while (i < lines.length) {
      const next = lines[i];
      if (next.trim() === '') {
        // A blank line ends the item unless an indented line follows.
        if (i + 1 < lines.length && lines[i + 1].trim() !== '' && indentOf(lines[i + 1]) > base) {
          keep(i);
          i++;
          continue;
        }
        break;
      }
      if (indentOf(next) > base || (!isBlockStart(next) && !ITEM.test(next))) {
        // A nested line, or a lazy continuation line of the item's text.
        keep(i);
        i++;
        continue;
      }
      break;
    }
    const li = doc.createElement('li');
    // The item's text (and its continuation lines) go into `into`: the
    // checkbox's label for a task item, else the item itself.
    let into = li;
    let text = m[3];
    const task = TASK.exec(text);
    if (task) {
      const label = doc.createElement('label');
      const box = doc.createElement('input');
      box.type = 'checkbox';
      box.checked = task[1] !== ' ';
      box.dataset.line = String(itemLine);
      label.append(box, doc.createTextNode(' '));
      li.classList.add('task-item');
      li.append(label);
      into = label;
      text = task[2];
    }
    renderInline(text, into, doc, false);
    // Continuation text first (as line breaks), then nested blocks.
    let k = 0;
    while (k < rest.length && rest[k].trim() !== '' && !isBlockStart(rest[k].trim())) {
      into.append(doc.createElement('br'));
      renderInline(rest[k].trim(), into, doc, false);
      k++;
    }
    const nested = rest.slice(k);
    if (nested.some((l) => l.trim() !== '')) {
      const cut = Math.min(...nested.filter((l) => l.trim() !== '').map(indentOf));
      renderBlocks(
        nested.map((l) => l.replace(/\t/g, '    ').slice(cut)),
        li,
        doc,
        depth + 1,
        restOrigin.slice(k),
      );
    }
    list.append(li);
    // Skip one blank line between items of the same list (a loose list).
    if (
      i + 1 < lines.length &&
      lines[i] !== undefined &&
      lines[i].trim() === '' &&
      ITEM.test(lines[i + 1]) &&
      indentOf(lines[i + 1]) === base
    ) {
      i++;
    }
  }
  parent.append(list);
  return i;
}

// One pass over the text finds the earliest inline construct.
const INLINE = new RegExp(
  [
    '\\\\([\\\\`*_{}\\[\\]()#+\\-.!~>|])', // 1: escaped character
    '(`+)([^`][\\s\\S]*?)\\2(?!`)', // 2,3: code span
    '\\*\\*(?!\\s)([\\s\\S]+?)\\*\\*', // 4: bold
    '__(?!\\s)([\\s\\S]+?)__(?!\\w)', // 5: bold
    '\\*(?![\\s*])([\\s\\S]+?)\\*', // 6: italic
    '(?<![\\w])_(?![\\s_])([\\s\\S]+?)_(?![\\w])', // 7: italic
    '~~(?!\\s)([\\s\\S]+?)~~', // 8: strike
    '\\[([^\\]\\n]+)\\]\\(\\s*<?([^)\\s>]+)>?(?:\\s+"[^"\\n]*")?\\s*\\)', // 9,10: link
    '(https?:\\/\\/[^\\s<>]*[^\\s<>().,;:!?\'"\\]*_~])', // 11: bare URL
    '!\\[([^\\]\\n]*)\\]\\(\\s*<?([^)\\s>]+)>?(?:\\s+"([^"\\n]*)")?\\s*\\)', // 12,13,14: image
  ].join('|'),
  'g',
);

function renderInline(text, parent, doc, insideLink, depth = 0) {
  if (depth > 12) {
    parent.append(doc.createTextNode(text));
    return;
  }
  const re = new RegExp(INLINE.source, 'g');
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) parent.append(doc.createTextNode(text.slice(last, m.index)));
    last = re.lastIndex;
    if (m[1] !== undefined) {
      parent.append(doc.createTextNode(m[1]));
    } else if (m[3] !== undefined) {
      const code = doc.createElement('code');
      code.textContent = m[3].length > 2 && m[3].startsWith(' ') && m[3].endsWith(' ') ? m[3].slice(1, -1) : m[3];
      parent.append(code);
    } else if (m[4] !== undefined || m[5] !== undefined) {
      const strong = doc.createElement('strong');
      renderInline(m[4] ?? m[5], strong, doc, insideLink, depth + 1);
      parent.append(strong);
    } else if (m[6] !== undefined || m[7] !== undefined) {
      const em = doc.createElement('em');
      renderInline(m[6] ?? m[7], em, doc, insideLink, depth + 1);
      parent.append(em);
    } else if (m[8] !== undefined) {
      const del = doc.createElement('del');
      renderInline(m[8], del, doc, insideLink, depth + 1);
      parent.append(del);
    } else if (m[9] !== undefined) {
      const href = insideLink ? null : safeUrl(m[10]);
      if (href) {
        const a = link(doc, href);
        renderInline(m[9], a, doc, true, depth + 1);
        parent.append(a);
      } else {
        // Not an http(s) link: show what was written, as text.
        parent.append(doc.createTextNode(m[0]));
      }
    } else if (m[13] !== undefined) {
      const src = safeUrl(m[13]);
      if (src) {
        const img = doc.createElement('img');
        img.src = src;
        img.alt = m[12];
        if (m[14]) img.title = m[14];
        img.loading = 'lazy';
        img.decoding = 'async';
        img.referrerPolicy = 'no-referrer';
        parent.append(img);
      } else {
        // Not an http(s) image: show what was written, as text.
        parent.append(doc.createTextNode(m[0]));
      }
    } else if (m[11] !== undefined) {
      const href = insideLink ? null : safeUrl(m[11]);
      if (href) {
        const a = link(doc, href);
        a.textContent = m[11];
        parent.append(a);
      } else {
        parent.append(doc.createTextNode(m[11]));
      }
    }
  }
  if (last < text.length) parent.append(doc.createTextNode(text.slice(last)));
}

function link(doc, href) {
  const a = doc.createElement('a');
  a.href = href;
  a.rel = 'noopener noreferrer nofollow';
  a.target = '_blank';
  return a;
}
