/* The DOM of one file's source: built once per file, in blocks of CHUNK rows.
 *
 * The source view of a file is built once; later snapshots only touch the rows
 * whose figures changed (rows.js), so a 5,000-line file stays cheap to update.
 * Owns nothing: buildView returns the view object, which source.js keeps.
 */

import { el } from './dom.js';

export var CHUNK = 200;     // rows per content-visibility block
var TOKEN_KINDS = { kw: 1, str: 1, com: 1, num: 1, def: 1, builtin: 1, op: 1, deco: 1 };

function buildCodeLine(code, text, toks) {
  if (!toks || !toks.length) { code.textContent = text; return; }
  toks.sort(function (a, b) { return a[1] - b[1]; });
  var pos = 0;
  for (var i = 0; i < toks.length; i++) {
    var t = toks[i], s = Math.max(+t[1] || 0, pos), e = Math.min(+t[2] || 0, text.length);
    if (e <= s) continue;
    if (s > pos) code.appendChild(document.createTextNode(text.slice(pos, s)));
    var kind = String(t[3]);
    if (TOKEN_KINDS[kind] === 1) code.appendChild(el('span', 't-' + kind, text.slice(s, e)));
    else code.appendChild(document.createTextNode(text.slice(s, e)));
    pos = e;
  }
  if (pos < text.length) code.appendChild(document.createTextNode(text.slice(pos)));
}

/* The view of file `id` from its /api/source answer `src`. */
export function buildView(id, src) {
  var root = el('div', 'code-view');
  var lines = Array.isArray(src.lines) ? src.lines : [];
  var byLine = new Map();
  (Array.isArray(src.tokens) ? src.tokens : []).forEach(function (t) {
    var a = byLine.get(t[0]);
    if (!a) { a = []; byLine.set(t[0], a); }
    a.push(t);
  });
  var rows = new Array(lines.length + 1);
  var chunk = null, chunks = [];
  var width = String(lines.length).length;
  for (var i = 1; i <= lines.length; i++) {
    if ((i - 1) % CHUNK === 0) {
      chunk = el('div', 'chunk');
      var n = Math.min(CHUNK, lines.length - i + 1);
      chunk.style.setProperty('--rows', String(n));
      chunk.dataset.chunk = String(chunks.length);
      chunks.push(chunk);
      root.appendChild(chunk);
    }
    var row = el('div', 'line');
    row.dataset.line = String(i);
    var gut = el('span', 'gut');
    gut.appendChild(el('span', 'ln', i));
    gut.appendChild(el('span', 'bars'));
    row.appendChild(gut);
    var code = el('span', 'code');
    buildCodeLine(code, String(lines[i - 1]), byLine.get(i));
    row.appendChild(code);
    chunk.appendChild(row);
    rows[i] = row;
  }
  if (!lines.length) root.appendChild(el('div', 'empty', 'this file is empty'));
  return {
    id: id, src: src, root: root, rows: rows, n: lines.length, lnWidth: Math.max(3, width),
    painted: new Map(),    // line -> signature of what is drawn
    chunks: chunks,        // content-visibility blocks of CHUNK rows
    visible: new Set(),    // indexes of chunks near the viewport
    dirty: new Set(),      // indexes of chunks whose rows are behind the data
    io: null,
    nowLines: new Map(),   // line -> thread names
    figures: null,
    scrollTop: 0, scrollLeft: 0
  };
}

export function chunkOf(line) { return Math.floor((line - 1) / CHUNK); }
