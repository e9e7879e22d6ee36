/* The threads panel: the cards of the snapshot's threads, in order, held still
 * while the pointer is over it; clicking a monitored frame opens its line.
 *
 * Owns the cards ("pid:ident" -> card; a forked child repeats idents), the
 * threads whose long stacks are unfolded, and whether the panel is held (with
 * the snapshot waiting for it). Reads the snapshot shown and the activity (for
 * the sparklines).
 */

import { $, setText } from './dom.js';
import { shownSnap } from './facts.js';
import { findProc, isCombined, pidOf, procList, procTree, threadKey } from './processes.js';
import { activityGen, currentActivity } from './activity.js';
import { drawSpark, placeSparkMark } from './sparks.js';
import { fillThread, makeThreadCard } from './thread-card.js';
import { selectFile } from './source.js';

var threadEls = new Map();  // "pid:ident" -> card record ({el, spark, ...signatures})
var expanded = new Set();   // thread keys whose long stacks are unfolded
var held = false;           // the pointer is over the panel
var pending = null;         // the latest snapshot not shown while held

/* While the pointer is over the panel it is not updated: stacks change length
 * and cards move at every snapshot, and a click must land on what was aimed at.
 * The latest snapshot is shown as soon as the pointer leaves. */
export function renderThreadsSoon(snap) {
  if (held) { pending = snap; return; }
  renderThreads(snap);
}

function holdThreads(hold) {
  held = hold;
  $('threads-panel').classList.toggle('held', hold);
  if (!hold && pending) {
    var snap = pending;
    pending = null;
    renderThreads(snap);
  }
}

/* Another view: a snapshot held back for the old one is not shown. */
export function forgetPendingThreads() { pending = null; }

export function renderThreads(snap) {
  var box = $('threads');
  var threads = Array.isArray(snap.threads) ? snap.threads.slice() : [];
  var own = String(snap.pid);
  var blocking = new Set((snap.exit && Array.isArray(snap.exit.blocking) ? snap.exit.blocking : [])
    .map(function (id) { return own + ':' + id; }));
  var combined = isCombined(snap);
  // In the combined view, grouped by process in the panel's order (main first).
  var procOrder = new Map();
  procTree(procList(snap)).forEach(function (n, i) { procOrder.set(String(n.p.pid), i); });
  function group(t) {
    var i = procOrder.get(pidOf(snap, t));
    return i === undefined ? procOrder.size : i;
  }
  // Main first, then threads holding the exit, then the monitor's order; ended last.
  function rank(t) {
    if (t.main) return 0;
    if (blocking.has(threadKey(snap, t))) return 1;
    return t.alive === false || t.kind === 'ended' ? 3 : 2;
  }
  threads = threads.map(function (t, i) { return { t: t, i: i }; })
    .sort(function (a, b) {
      return group(a.t) - group(b.t) || rank(a.t) - rank(b.t) || a.i - b.i;
    })
    .map(function (x) { return x.t; });
  var seen = new Set(), keys = [], pids = new Set();
  threads.forEach(function (t, i) {
    var key = threadKey(snap, t);
    if (seen.has(key)) return;          // the same thread twice: show it once
    seen.add(key);
    keys.push(key);
    var rec = threadEls.get(key);
    if (!rec) { rec = makeThreadCard(); threadEls.set(key, rec); }
    var pid = pidOf(snap, t);
    fillThread(rec, t, snap, blocking.has(key), findProc(snap, pid), combined, expanded.has(key));
    threadSpark(rec, key);
    rec.el.classList.toggle('group-start', combined && !pids.has(pid) && i > 0);
    pids.add(pid);
  });
  threadEls.forEach(function (rec, key) {
    if (!seen.has(key)) { rec.el.remove(); threadEls.delete(key); }
  });
  var cur = box.children, same = cur.length === keys.length;
  for (var i = 0; same && i < keys.length; i++) same = cur[i].dataset.key === keys[i];
  if (!same) keys.forEach(function (key) { box.appendChild(threadEls.get(key).el); });
  var nd = threads.filter(function (t) { return !t.daemon && !t.main && t.alive !== false; }).length;
  setText($('threads-count'), keys.length + (combined ? ' in ' + pids.size + ' processes' : '') +
    (nd ? ' · ' + nd + ' non-daemon' : '') +
    (blocking.size ? ' · ' + blocking.size + ' holding exit' : ''));
}

function threadSpark(rec, key) {
  var s = rec.spark;
  if (!s || s.actGen === activityGen()) return;
  s.actGen = activityGen();
  var act = currentActivity();
  var t = act && act.threads.get(key);
  drawSpark(s, t ? t.values : null, 'cpu', 'thread ' + (rec.el.querySelector('.t-name').textContent || key));
}

/* A new activity answer: every thread's sparkline from it. */
export function redrawThreadSparks() {
  threadEls.forEach(function (rec, key) { threadSpark(rec, key); });
}

/* The recording's position moved: the sparklines' markers. */
export function placeThreadSparkMarks() {
  threadEls.forEach(function (rec) { if (rec.spark) placeSparkMark(rec.spark); });
}

function onFrameActivate(target) {
  var fr = target.closest('.frame.mon');
  if (!fr) return false;
  var line = parseInt(fr.dataset.line, 10);
  selectFile(fr.dataset.file, { line: line, path: fr.dataset.path });
  return true;
}

export function wireThreads() {
  $('threads').addEventListener('click', function (ev) {
    var more = ev.target.closest('.more');
    if (more) {
      var key = more.dataset.key;
      if (expanded.has(key)) expanded.delete(key); else expanded.add(key);
      var snap = shownSnap();
      if (snap) renderThreads(pending || snap);
      pending = null;
      return;
    }
    onFrameActivate(ev.target);
  });
  $('threads').addEventListener('mouseenter', function () { holdThreads(true); });
  $('threads').addEventListener('mouseleave', function () { holdThreads(false); });
  $('threads').addEventListener('keydown', function (ev) {
    if ((ev.key === 'Enter' || ev.key === ' ') && onFrameActivate(ev.target)) ev.preventDefault();
  });
}
