/* The files sidebar: one entry per monitored file that has run, hottest first,
 * with its recent heat, a bar, a sparkline, and whether it executes now.
 *
 * Owns the entries (file id -> <li>), built once and updated in place. Reads the
 * snapshot it is given, the file selected (source.js) and the activity (for the
 * sparklines).
 */

import { $, el, setText } from './dom.js';
import { basename, compact, dirname, full } from './format.js';
import { fileRecent, fileTotal, fileUnit } from './heat.js';
import { activityGen, currentActivity } from './activity.js';
import { drawSpark, makeSpark, placeSparkMark } from './sparks.js';
import { selectFile, selectedFile } from './source.js';

var fileEls = new Map();    // id -> sidebar <li>

function makeFileEl(f) {
  var li = el('li', 'file');
  li.dataset.id = f.id;
  li.tabIndex = 0;
  li.setAttribute('role', 'button');
  var top = el('div', 'f-top');
  top.appendChild(el('span', 'f-now'));
  top.appendChild(el('span', 'f-name'));
  top.appendChild(makeSpark('heat'));
  top.appendChild(el('span', 'f-num'));
  li.appendChild(top);
  li.appendChild(el('div', 'f-dir')).appendChild(el('span', 'ltr'));
  var bar = el('div', 'f-bar');
  bar.appendChild(el('div', 'f-fill'));
  li.appendChild(bar);
  return li;
}

/* `nowMap`: file id -> line -> who executes it now (nowByFile). */
export function renderFiles(snap, nowMap) {
  var ul = $('files');
  var files = Array.isArray(snap.files) ? snap.files : [];
  var selected = selectedFile();
  var maxR = 0;
  files.forEach(function (f) { var r = fileRecent(snap, f).v; if (r > maxR) maxR = r; });
  var seen = new Set();
  files.forEach(function (f) {
    seen.add(f.id);
    var li = fileEls.get(f.id);
    if (!li) { li = makeFileEl(f); fileEls.set(f.id, li); }
    var name = f.name || basename(f.path) || f.id;
    setText(li.querySelector('.f-name'), name);
    setText(li.querySelector('.f-dir .ltr'), dirname(f.path));
    var rec = fileRecent(snap, f), tot = fileTotal(snap, f);
    setText(li.querySelector('.f-num'), rec.v ? compact(rec.v) : (tot ? '·' : ''));
    var fill = li.querySelector('.f-fill');
    var w = maxR && rec.v ? Math.max(3, 100 * rec.v / maxR) : 0;
    fill.style.width = w.toFixed(1) + '%';
    fill.classList.toggle('incl', rec.incl);
    li.classList.toggle('active', rec.v > 0);
    li.classList.toggle('selected', f.id === selected);
    fileSpark(li, f.id);
    var nowLines = nowMap.get(f.id);
    li.classList.toggle('has-now', !!nowLines);
    li.title = String(f.path || name) + '\nrecent: ' + full(rec.v) + ' ' +
      fileUnit(snap, rec.incl) + '\ntotal: ' + full(tot) +
      (nowLines ? '\nexecuting now: line ' + Array.from(nowLines.keys()).join(', ') : '');
  });
  fileEls.forEach(function (li, id) {
    if (!seen.has(id)) { li.remove(); fileEls.delete(id); }
  });
  // Reorder only when the order changed: moving nodes under the pointer flickers.
  var cur = ul.children, same = cur.length === files.length;
  for (var i = 0; same && i < files.length; i++) same = cur[i].dataset.id === files[i].id;
  if (!same) files.forEach(function (f) { ul.appendChild(fileEls.get(f.id)); });
  setText($('files-count'), files.length ? String(files.length) : '');
  $('files-empty').hidden = files.length > 0;
}

/* The file shown changed: only its entry is marked. */
export function markSelectedFile(id) {
  fileEls.forEach(function (li, fid) { li.classList.toggle('selected', fid === id); });
}

function fileSpark(li, id) {
  var s = li.querySelector('.spark');
  if (!s || s.actGen === activityGen()) return;
  s.actGen = activityGen();
  var act = currentActivity();
  var f = act && act.files.get(id);
  var name = li.querySelector('.f-name').textContent || id;
  drawSpark(s, f ? f.values : null, 'heat', name);
}

/* A new activity answer: every file's sparkline from it. */
export function redrawFileSparks() {
  fileEls.forEach(function (li, id) { fileSpark(li, id); });
}

/* The recording's position moved: the sparklines' markers. */
export function placeFileSparkMarks() {
  fileEls.forEach(function (li) { var s = li.querySelector('.spark'); if (s) placeSparkMark(s); });
}

export function wireFiles() {
  $('files').addEventListener('click', function (ev) {
    var li = ev.target.closest('.file');
    if (li) selectFile(li.dataset.id, {});
  });
  $('files').addEventListener('keydown', function (ev) {
    if (ev.key !== 'Enter' && ev.key !== ' ') return;
    var li = ev.target.closest('.file');
    if (li) { ev.preventDefault(); selectFile(li.dataset.id, {}); }
  });
}
