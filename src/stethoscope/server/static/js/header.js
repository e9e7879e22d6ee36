/* The header (program, pid, python, rate, uptime, the view), the heat label with
 * the column heads and legend of the source view, and the notes.
 *
 * Owns what the notes list last showed. Reads only the snapshot it is given and
 * the id of the file shown (for the tab's title); the mode switch draws its part
 * (mode.js).
 */

import { $, el, setText } from './dom.js';
import { basename, duration } from './format.js';
import { WINDOWS_PER_S, findFile, heatIsExact, heatKind, linesOn } from './heat.js';
import { renderMode } from './mode.js';
import { findProc, procLabel, procList } from './processes.js';

var notesSig = '';

/* `selected`: the id of the file the source view shows. */
export function renderHeader(snap, selected) {
  var argv = Array.isArray(snap.argv) ? snap.argv.map(String) : [];
  var prog = argv.length ? argv.join(' ') : '(unknown program)';
  setText($('argv'), prog);
  $('argv').title = prog;
  setText($('pid'), snap.pid != null ? snap.pid : '–');
  setText($('python'), snap.python || '–');
  renderMode(snap);
  var hz = snap.sample_hz || {};
  var ach = Number(hz.achieved), req = Number(hz.requested);
  setText($('rate'), isFinite(ach) && hz.achieved != null ? ach.toFixed(ach >= 100 ? 0 : 1) + ' Hz' : '–');
  $('rate').title = 'achieved ' + (isFinite(ach) ? ach.toFixed(1) : '?') + ' Hz of ' +
    (isFinite(req) ? req.toFixed(0) : '?') + ' Hz requested';
  $('rate').classList.toggle('warn', isFinite(ach) && isFinite(req) && req > 0 && ach < req * 0.5);
  if (snap.started && snap.time) setText($('uptime'), duration(snap.time - snap.started));
  renderHeatLabel(snap);
  var sel = selected && findFile(snap, selected);
  var one = snap.view === 'process' && procList(snap).length > 1;
  var p = one ? findProc(snap, snap.pid) : null;
  $('view-kv').hidden = procList(snap).length <= 1;
  setText($('view'), one ? 'pid ' + snap.pid + (p ? ' · ' + procLabel(p) : '') : 'all processes');
  document.title = 'stethoscope — ' + (sel ? sel.name + ' — ' : '') + basename(argv[0] || '') +
    (snap.pid != null ? ' (pid ' + snap.pid + (one ? ' only' : '') + ')' : '');
}

/* What the bars mean, in the header pill, the column heads and the legend. */
function renderHeatLabel(snap) {
  var kind = heatKind(snap), lines = linesOn(snap);
  // Sampled figures (not exact) fall back to inclusive counts, and lines mode
  // beside them sees lines no sample caught.
  var sampled = !heatIsExact(snap);
  var win = snap.window ? 'the last ' + snap.window + ' s' : 'the recent window';
  var text, title;
  if (kind === 'hits') {
    text = 'heat = exact executed-line counts';
    title = 'trace mode: bars show how many times each line ran (exact counts)';
  } else if (kind === 'ran') {
    text = 'heat = windows each line ran in (every line, ' + WINDOWS_PER_S + ' windows/s)';
    title = 'lines mode: every line that runs is seen, however short, once per ' +
      (1 / WINDOWS_PER_S) + ' s window; a line\'s figure is the number of windows it ran in ' +
      '(not how often or how long it ran). The percentage is its share of the windows of ' + win +
      '; a dot in the gutter marks lines that ran just now.';
  } else {
    text = lines ? 'heat = sampled time' : 'heat = sampled time (self samples)';
    title = 'bars show sampled time spent on each line itself; lines with only inclusive time ' +
      '(callers) are striped' + (lines ? '.\nLines mode runs beside the sampler and sees every line ' +
      'that runs: a dot in the gutter marks lines that ran in the latest window, a blue tint (and ' +
      '"ran") lines that ran in ' + win + ' but that no sample caught (short lines)' : '');
  }
  var label = $('heat-label');
  if (label.firstChild && label.firstChild.nodeType === 3) setText(label.firstChild, text);
  else { label.textContent = ''; label.appendChild(document.createTextNode(text)); }
  // Sampled time with lines mode: what the gutter's dot means, in its colour.
  var more = label.querySelector('.hl-ran');
  if (lines && sampled && !more) {
    more = el('span', 'hl-ran');
    more.appendChild(el('span', 'hl-dot'));
    more.appendChild(document.createTextNode('ran just now (exact)'));
    label.appendChild(more);
  } else if (!(lines && sampled) && more) {
    more.remove();
  }
  label.title = title;
  setText($('ch-recent'), snap.window ? 'last ' + snap.window + ' s' : 'recent');
  // The figure beside the bars is the page's own (rows.js, shareText): a count,
  // a share of the windows, or a share of the program's sampled time.
  setText($('ch-pct'), kind === 'hits' ? 'runs' : kind === 'ran' ? 'ran %' : '% time');
  $('ch-pct').title = kind === 'hits' ? 'executions in the recent window'
    : kind === 'ran' ? 'share of the tick windows of ' + win + ' in which the line ran'
    : "share of the program's recent sampled time spent on this line itself" +
      (lines ? '; "ran": it ran, but no sample caught it' : '');
  $('lg-incl').hidden = !sampled;
  $('lg-ran-only').hidden = !(lines && sampled);
  $('lg-ran-now').hidden = !lines;
  document.body.dataset.heat = kind;
}

export function renderNotes(snap) {
  var notes = Array.isArray(snap.notes) ? snap.notes.map(String) : [];
  var sig = JSON.stringify(notes);
  if (sig === notesSig) return;
  notesSig = sig;
  var ul = $('notes');
  ul.textContent = '';
  notes.forEach(function (n) { ul.appendChild(el('li', 'note', n)); });
  ul.hidden = notes.length === 0;
}
