/* The rows of a file's source view: their bars, the figure beside them, and the
 * description a row gets under the pointer; rows far from the viewport are
 * painted when they scroll near it.
 *
 * Owns the denominators of the figure beside the bars (the program's recent
 * heat, the recent windows) for the snapshot last painted, and the row under the
 * pointer. Reads the snapshot shown (syncChunk, describeRow) and the views
 * source.js passes in.
 */

import { $, el, setText } from './dom.js';
import { agoText, compact, full } from './format.js';
import { CHUNK, chunkOf } from './code-view.js';
import { shownSnap } from './facts.js';
import { WINDOWS_PER_S, heatFields, heatIsExact, heatKind, linesOn, ranWindows, secondsHint, unitWord } from './heat.js';

var recentAll = 0;          // the program's recent heat, all files: "% time"
var ranDen = 1;             // windows of the recent window, for "ran %"
var hoverRow = null;        // the row whose gutter is under the pointer

function ensureBars(row) {
  var bars = row.firstChild.lastChild;
  if (!bars.firstChild) {
    var tr = el('span', 'track'); tr.appendChild(el('span', 'bar-recent'));
    var tt = el('span', 'track'); tt.appendChild(el('span', 'bar-total'));
    bars.appendChild(tr); bars.appendChild(tt);
    bars.appendChild(el('span', 'pct'));
  }
  return bars;
}

function percentText(p) {
  return p >= 9.95 ? p.toFixed(0) + '%' : p >= 0.1 ? p.toFixed(1) + '%' : '<0.1%';
}

/* The figure printed beside the bars: for sampled time the line's share of the
 * program's recent self samples (all files), for hits the recent count, for
 * lines mode the share of the recent windows in which the line ran. A line that
 * ran (lines mode) but has no samples says "ran". */
function shareText(snap, v) {
  if (v.ranOnly) return 'ran';
  if (!v.r || v.ri) return '';
  var kind = heatKind(snap);
  if (kind === 'hits') return compact(v.r);
  if (kind === 'ran') return percentText(Math.min(100, 100 * v.r / (ranDen || v.r)));
  var all = recentAll || 0;
  if (!all) return '';
  return percentText(100 * v.r / all);
}

// Bar width in percent, in half-percent steps so that a small change of the
// file's maximum does not repaint every row; a non-zero value stays visible.
function pct(f) { return f > 0 ? Math.max(4, Math.min(100, Math.round(f * 200) / 2)) : 0; }

function rowSig(snap, v) {
  if (!v) return '';
  return v.r + '/' + v.t + '/' + pct(v.fr) + '/' + pct(v.ft) + '/' + (v.ri ? 1 : 0) +
    (v.ti ? 1 : 0) + (v.ranNow ? 1 : 0) + (v.ranOnly ? 1 : 0) + '/' + shareText(snap, v);
}

function paintRow(view, line, v, snap) {
  var row = view.rows[line];
  if (!row) return;
  var bars = ensureBars(row);
  var br = bars.firstChild.firstChild, bt = bars.children[1].firstChild, pc = bars.lastChild;
  // Titles are written on hover (see describeRow): building them for thousands
  // of rows on every update is what makes big files slow. The row under the
  // pointer gets fresh ones below; others drop theirs, which would be stale.
  if (row !== hoverRow) {
    br.removeAttribute('title'); bt.removeAttribute('title'); row.firstChild.removeAttribute('title');
  }
  if (v) {
    br.style.width = pct(v.fr) + '%';
    bt.style.width = pct(v.ft) + '%';
    br.dataset.value = String(v.r);
    bt.dataset.value = String(v.t);
    br.classList.toggle('incl', v.ri);
    bt.classList.toggle('incl', v.ti);
    row.classList.toggle('hot', v.r > 0);
    row.classList.toggle('warm', v.r === 0 && v.t > 0);
    row.classList.toggle('incl-only', v.r > 0 ? v.ri : v.ti);
    row.classList.toggle('ran-now', v.ranNow);
    row.classList.toggle('ran-only', v.ranOnly);
    // Perceptual scale: sqrt keeps moderately hot lines visible next to the hottest.
    row.style.setProperty('--h', v.r ? (Math.round(Math.sqrt(v.fr) * 50) / 50).toString() : '0');
    setText(pc, shareText(snap, v));
  } else {
    br.style.width = '0%'; bt.style.width = '0%';
    br.dataset.value = '0'; bt.dataset.value = '0';
    setText(pc, '');
    row.classList.remove('hot', 'warm', 'incl-only', 'ran-now', 'ran-only');
    row.style.removeProperty('--h');
  }
  if (row === hoverRow) describeRow(view, row);
}

export function describeRow(view, row) {
  var snap = shownSnap();
  if (!snap || !view.figures) return;
  var line = +row.dataset.line;
  var v = view.figures.lines.get(line);
  var bars = row.firstChild.lastChild;
  if (!v || !bars.firstChild) {
    if (bars.firstChild) {
      bars.firstChild.firstChild.removeAttribute('title');
      bars.children[1].firstChild.removeAttribute('title');
    }
    row.firstChild.title = 'line ' + line + ': no data';
    return;
  }
  var win = snap.window ? 'last ' + snap.window + ' s' : 'recent';
  var kind = heatKind(snap), sampled = !heatIsExact(snap);
  var rt, tt, share = v.ranOnly ? '' : shareText(snap, v), extra = '';
  if (kind === 'ran') {
    rt = win + ': ran in ' + full(v.r) + ' window' + (v.r === 1 ? '' : 's') +
      (share ? ' (' + share + ' of about ' + full(ranDen) + ')' : '');
    tt = 'total: ran in ' + full(v.t) + ' window' + (v.t === 1 ? '' : 's') + ' of ' +
      (1 / WINDOWS_PER_S) + ' s';
  } else {
    rt = win + ': ' + full(v.r) + ' ' + unitWord(snap, v.ri) + secondsHint(snap, v.ri ? 0 : v.r);
    tt = 'total: ' + full(v.t) + ' ' + unitWord(snap, v.ti) + secondsHint(snap, v.ti ? 0 : v.t);
    if (share && sampled) extra += '\n' + share + " of the program's recent sampled time";
  }
  if (linesOn(snap)) {
    if (sampled) {
      extra += '\nlines mode: ' + (v.ranR ? 'ran in ' + full(v.ranR) + ' of the windows of the ' + win
        : v.ranT ? 'not run in the ' + win : 'not seen running');
      if (v.ranOnly) extra += ' — too short for the sampler to catch';
    }
    if (v.last) {
      extra += '\n' + (v.ranNow ? 'ran just now: ' : '') + 'last ran ' +
        agoText((+snap.time || 0) * 1000 - v.last) + ' ago';
    }
  }
  bars.firstChild.firstChild.title = rt;
  bars.children[1].firstChild.title = tt;
  row.firstChild.title = 'line ' + line + '\n' + rt + '\n' + tt + extra;
}

/* The pointer is over `row`'s gutter (null: over none). */
export function setHoverRow(row) { hoverRow = row; }

/* The row under the pointer, if it is one of `view`'s: its title says how long
 * ago the line last ran, so it is written again with each snapshot. */
export function describeHovered(view) {
  if (hoverRow && view.rows[+hoverRow.dataset.line] === hoverRow) describeRow(view, hoverRow);
}

/* Rows of chunks far from the viewport are not painted on each update; their
 * chunk is marked dirty and brought up to date when it scrolls into view. */
function syncChunk(view, c) {
  view.dirty.delete(c);
  var snap = shownSnap(), figs = view.figures;
  if (!snap || !figs) return;
  var first = c * CHUNK + 1, last = Math.min(view.n, first + CHUNK - 1);
  for (var line = first; line <= last; line++) {
    var v = figs.lines.get(line) || null;
    var sig = rowSig(snap, v);
    if ((view.painted.get(line) || '') !== sig) {
      paintRow(view, line, v, snap);
      if (sig) view.painted.set(line, sig); else view.painted.delete(line);
    }
  }
}

export function observeChunks(view) {
  if (!('IntersectionObserver' in window)) return;
  if (!view.io) {
    view.io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        var c = +e.target.dataset.chunk;
        if (e.isIntersecting) {
          view.visible.add(c);
          if (view.dirty.has(c)) syncChunk(view, c);
        } else {
          view.visible.delete(c);
        }
      });
    }, { root: $('source'), rootMargin: '400px 0px' });
  }
  view.io.disconnect();
  view.visible.clear();
  view.chunks.forEach(function (ch) { view.io.observe(ch); });
}

/* Paint what changed of `view` for `snap`: its figures are `figs` (fileFigures). */
export function paintFigures(view, snap, figs) {
  var recentKey = heatFields(snap)[0];
  recentAll = (snap.files || []).reduce(function (acc, f) {
    return acc + (+f[recentKey] || 0);
  }, 0);
  ranDen = heatKind(snap) === 'ran' ? ranWindows(snap) : 1;
  view.figures = figs;
  var painted = view.painted;
  var lazy = !!view.io;
  function sync(line, v) {
    var sig = rowSig(snap, v);
    if ((painted.get(line) || '') === sig) return;
    if (lazy && !view.visible.has(chunkOf(line))) { view.dirty.add(chunkOf(line)); return; }
    paintRow(view, line, v, snap);
    if (sig) painted.set(line, sig); else painted.delete(line);
  }
  figs.lines.forEach(function (v, line) { sync(line, v); });
  Array.from(painted.keys()).forEach(function (line) {
    if (!figs.lines.has(line)) sync(line, null);
  });
}
