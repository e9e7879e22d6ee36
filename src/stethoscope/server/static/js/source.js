/* The source view: which file is shown, its source (GET /api/source/<id>, once
 * per file), its rows brought up to date with each snapshot, scrolling to a line,
 * the minimap's redraws, and the "hottest" and "now" buttons.
 *
 * Owns the file selected, the sources asked for, the built view of each file
 * (with its scroll position), the line height, and the "now" button's cycle.
 * Calls the one listener given to whenFileSelected (the files sidebar) when the
 * selection changes. Reads the snapshot shown.
 */

import { $, el, setText } from './dom.js';
import { apiFetch } from './token.js';
import { basename, compact, dirname, full } from './format.js';
import { shownSnap } from './facts.js';
import { fileFigures, fileRecent, fileTotal, fileUnit, findFile, secondsHint } from './heat.js';
import { liveNow, nowByFile } from './processes.js';
import { buildView } from './code-view.js';
import { describeHovered, describeRow, observeChunks, paintFigures, setHoverRow } from './rows.js';
import { drawMinimap, lineAtClick } from './minimap.js';

var selected = null;        // file id shown
var sources = new Map();    // id -> Promise<source|null>
var views = new Map();      // id -> view object (built DOM + last painted figures)
var lineHeight = 0;
var mapPending = false;
var nowCycle = 0;
var onSelect = function () {};

export function selectedFile() { return selected; }

/* `fn(id)` is called when the file shown changes. */
export function whenFileSelected(fn) { onSelect = fn; }

function getSource(id) {
  var p = sources.get(id);
  if (!p) {
    p = apiFetch('/api/source/' + encodeURIComponent(id))
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .catch(function (err) {
        sources.delete(id);          // allow a later retry
        return { error: String(err && err.message || err) };
      });
    sources.set(id, p);
  }
  return p;
}

/* The view of the file selected, if it is built. */
function selectedView() { return selected ? views.get(selected) : undefined; }

function updateView(view, snap, nowMap) {
  var file = findFile(snap, view.id);
  var figs = file ? fileFigures(snap, file) : { lines: new Map(), maxR: 0, maxT: 0 };
  paintFigures(view, snap, figs);

  // Lines executing right now.
  var nowLines = nowMap.get(view.id) || new Map();
  view.nowLines.forEach(function (who, line) {
    if (!nowLines.has(line) && view.rows[line]) {
      view.rows[line].classList.remove('now');
      view.rows[line].lastChild.removeAttribute('title');
    }
  });
  nowLines.forEach(function (who, line) {
    var row = view.rows[line];
    if (!row) return;
    row.classList.add('now');
    row.lastChild.title = 'executing now in: ' + who.join(', ');
  });
  view.nowLines = nowLines;
  // The row under the pointer: its title says how long ago the line last ran.
  describeHovered(view);

  if (file) {
    var rec = fileRecent(snap, file);
    var stats = $('src-stats');
    setText(stats, (snap.window ? snap.window + ' s: ' : 'recent: ') + compact(rec.v) +
      ' · total: ' + compact(fileTotal(snap, file)));
    stats.title = (snap.window ? 'last ' + snap.window + ' s: ' : 'recent: ') + full(rec.v) + ' ' +
      fileUnit(snap, rec.incl) + secondsHint(snap, rec.incl ? 0 : rec.v) +
      '\ntotal: ' + full(fileTotal(snap, file)) + '\n' + figs.lines.size + ' lines with data';
  }
  scheduleMinimap();
}

/* A new snapshot, the file shown unchanged: its rows and its name. */
export function refreshSource(snap, nowMap) {
  if (!selected) return;
  var view = views.get(selected);
  if (view && view.root.parentNode === $('source')) updateView(view, snap, nowMap);
  var f = findFile(snap, selected);
  if (f) {
    setText($('src-name'), f.name || basename(f.path));
    setText($('src-path').firstChild, dirname(f.path));
    $('src-path').title = String(f.path || '');
  }
}

function mountView(view) {
  var box = $('source');
  box.textContent = '';
  $('source-panel').style.setProperty('--ln-width', view.lnWidth + 'ch');
  box.appendChild(view.root);
  box.scrollTop = view.scrollTop;
  box.scrollLeft = view.scrollLeft;
  onSourceScroll();
  observeChunks(view);
  if (!lineHeight && view.rows[1]) lineHeight = view.rows[1].offsetHeight || 0;
}

export function showSourceMessage(text) {
  var box = $('source');
  box.textContent = '';
  box.appendChild(el('div', 'empty', text));
}

export function selectFile(id, opts) {
  opts = opts || {};
  var box = $('source'), snap = shownSnap();
  if (selected && selected !== id) {
    var prev = views.get(selected);
    if (prev && prev.root.parentNode === box) {
      prev.scrollTop = box.scrollTop;
      prev.scrollLeft = box.scrollLeft;
    }
  }
  var changed = selected !== id;
  selected = id;
  onSelect(id);
  var f = findFile(snap, id);
  var path = f ? f.path : (opts.path || '');
  setText($('src-name'), f ? (f.name || basename(f.path)) : basename(path) || id);
  setText($('src-path').firstChild, dirname(path));
  $('src-path').title = String(path || '');
  if (!f) setText($('src-stats'), '');
  var view = views.get(id);
  if (view) {
    if (changed || view.root.parentNode !== box) mountView(view);
    if (snap) updateView(view, snap, nowByFile(snap));
    if (opts.line) scrollToLine(view, opts.line, true);
    return;
  }
  showSourceMessage('loading source…');
  getSource(id).then(function (src) {
    if (selected !== id) return;
    if (!src || src.error) {
      showSourceMessage('source not available (' + (src && src.error || 'unknown error') + ')');
      return;
    }
    var v = views.get(id);
    if (!v) { v = buildView(id, src); views.set(id, v); }
    mountView(v);
    var now = shownSnap();
    if (now) updateView(v, now, nowByFile(now));
    if (opts.line) scrollToLine(v, opts.line, true);
  });
}

function lineGeometry(view) {
  var row = view.rows[1];
  var lh = lineHeight || (row && row.offsetHeight) || 18;
  var pad = parseFloat(getComputedStyle(view.root).paddingTop) || 0;
  return { lh: lh, pad: pad };
}

function scrollToLine(view, line, flash) {
  var row = view.rows[line];
  if (!row) return;
  var box = $('source');
  var geo = lineGeometry(view);
  box.scrollTop = Math.max(0, geo.pad + (line - 1) * geo.lh - box.clientHeight / 2 + geo.lh / 2);
  box.scrollLeft = 0;
  if (flash) {
    row.classList.remove('flash');
    void row.offsetWidth;   // restart the animation
    row.classList.add('flash');
    setTimeout(function () { row.classList.remove('flash'); }, 1600);
  }
  scheduleMinimap();
}

function onSourceScroll() {
  var box = $('source');
  var view = selectedView();
  if (view && view.root.parentNode === box && view.sx !== box.scrollLeft) {
    view.sx = box.scrollLeft;
    view.root.style.setProperty('--sx', view.sx + 'px');
  }
  scheduleMinimap();
}

function scheduleMinimap() {
  if (mapPending) return;
  mapPending = true;
  requestAnimationFrame(function () { mapPending = false; drawMinimap(selectedView(), lineGeometry); });
}

export function wireSource() {
  $('source').addEventListener('scroll', onSourceScroll, { passive: true });
  $('source').addEventListener('mouseover', function (ev) {
    var gut = ev.target.closest && ev.target.closest('.gut');
    var view = selectedView();
    setHoverRow(gut ? gut.parentNode : null);
    if (gut && view) describeRow(view, gut.parentNode);
  });
  window.addEventListener('resize', scheduleMinimap);
  $('minimap').addEventListener('click', function (ev) {
    var view = selectedView();
    if (!view || !view.n) return;
    scrollToLine(view, lineAtClick(ev, view, lineGeometry(view)), false);
  });
  $('btn-hot').addEventListener('click', function () {
    var view = selectedView();
    if (!view || !view.figures) return;
    // Hottest by recent self heat; if nothing ran recently, by total.
    var best = 0, bestV = -1;
    view.figures.lines.forEach(function (v, line) {
      var score = v.r && !v.ri ? 2 + v.fr : (v.t && !v.ti ? 1 + v.ft : v.fr * 0.5);
      if (score > bestV) { bestV = score; best = line; }
    });
    if (best) scrollToLine(view, best, true);
  });
  $('btn-now').addEventListener('click', function () {
    var snap = shownSnap();
    if (!snap) return;
    var nowMap = nowByFile(snap);
    var here = selected && nowMap.get(selected);
    if (here && here.size) {
      var lines = Array.from(here.keys()).sort(function (a, b) { return a - b; });
      var line = lines[nowCycle++ % lines.length];
      var view = views.get(selected);
      if (view) scrollToLine(view, line, true);
      return;
    }
    var first = liveNow(snap)[0];
    if (first) selectFile(first.file, { line: first.line });
  });
}
