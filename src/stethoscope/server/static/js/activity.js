/* Activity over time: GET /api/activity, normalised, for the strip and the
 * sparklines.
 *
 * GET /api/activity: the heat of the program (and of each file) and CPU (of the
 * program and of each thread) per point of `interval` seconds. Live it is asked
 * for once a second while the tab is visible (main.js polls); a recording answers
 * the whole run. The strip under the header plots it; each file and thread gets a
 * sparkline.
 *
 * Owns the latest answer (normActivity), its generation (bumped with each:
 * sparklines drawn from an older one are redrawn) and the requests on their way;
 * calls the one listener main.js gives (whenActivity) with each new answer. Reads
 * the view and the recording; the words for the heat come from the heat kinds
 * table of the snapshot shown.
 */

import { $ } from './dom.js';
import { apiFetch } from './token.js';
import { basename, compact } from './format.js';
import { recording, shownSnap, viewGen, viewPid, viewUrl } from './facts.js';
import { kindInfo } from './heat.js';

var ACT_MIN_SPAN = 10;      // s: the live strip spans at least this much time

var act = null;             // the latest /api/activity, normalised (normActivity)
var actGen = 0;
var actSeq = 0;
var actBusy = false;
var actMissing = false;     // the monitor has no /api/activity: no strip, no polling
var drawnWithWords = false; // the heat's unit was known when `act` was drawn
var listener = function () {};

export function currentActivity() { return act; }
export function activityGen() { return actGen; }
export function activityMissing() { return actMissing; }
export function activityBusy() { return actBusy; }

/* `fn()` is called with each new answer (after currentActivity() changed). */
export function whenActivity(fn) { listener = fn; }

function num(v) {
  if (v === null || v === undefined || v === '') return null;
  v = +v;
  return isFinite(v) ? v : null;
}

/* The answer checked and made uniform: every series as long as `times`, holes null. */
function normActivity(d) {
  if (!d || typeof d !== 'object') return null;
  var times = (Array.isArray(d.times) ? d.times : []).map(Number).filter(isFinite);
  var n = times.length;
  function series(a) {
    a = Array.isArray(a) ? a : [];
    var out = new Array(n);
    for (var i = 0; i < n; i++) out[i] = num(a[i]);
    return out;
  }
  var norm = {
    interval: +d.interval > 0 ? +d.interval : 1,
    heat: typeof d.heat === 'string' ? d.heat : '',
    times: times, total: series(d.total), cpu: series(d.cpu),
    files: new Map(), threads: new Map()
  };
  (Array.isArray(d.files) ? d.files : []).forEach(function (f) {
    if (f && f.id != null) {
      norm.files.set(String(f.id), { name: String(f.name || basename(f.path) || f.id), values: series(f.values) });
    }
  });
  (Array.isArray(d.threads) ? d.threads : []).forEach(function (t) {
    if (!t) return;
    var key = t.key != null ? String(t.key) : String(t.pid) + ':' + String(t.ident);
    norm.threads.set(key, { name: String(t.name != null ? t.name : 'thread ' + t.ident), values: series(t.values) });
  });
  return norm;
}

/* The heat kinds table's entry for the activity's heat (from the snapshot shown:
 * every snapshot carries the same table). */
function heatWords(a) { return kindInfo(shownSnap(), a.heat); }

/* What a point's heat counts: "samples", "line runs", "lines ran". */
export function heatUnit(a) { return heatWords(a).activity_unit || ''; }

/* What the activity's heat is, in a sentence. */
export function heatMeans(a) { return heatWords(a).activity_title || ''; }

export function heatText(a, v) {
  var unit = heatUnit(a);
  return v === null ? '–' : compact(v) + (unit ? ' ' + unit : '');
}

/* The time span the strip and the sparklines show: a recording from its first
 * snapshot to its last (what the slider spans, so that with snapshots at an even
 * pace the slider's thumb stays under the strip's marker); live at least
 * ACT_MIN_SPAN s ending at the latest point. */
export function actDomain(a) {
  var t = a.times, n = t.length, rec = recording();
  if (rec) {
    var rt = rec.times;
    var start = Math.min(n ? t[0] : Infinity, rt.length ? rt[0] : Infinity);
    var end = Math.max(n ? t[n - 1] : -Infinity, rt.length ? rt[rt.length - 1] : -Infinity);
    if (!isFinite(start) || !isFinite(end)) return [rec.base, rec.base + 1];
    return [start, end > start ? end : start + 1];
  }
  if (!n) return [0, ACT_MIN_SPAN];
  var t1 = t[n - 1];
  return [Math.min(t[0] - a.interval, t1 - ACT_MIN_SPAN), t1];
}

/* One /api/activity for the process shown; answers for another view are dropped. */
export function loadActivity() {
  var gen = viewGen(), seq = ++actSeq, all = viewPid() === 'all';
  actBusy = true;
  apiFetch(viewUrl('/api/activity')).then(function (r) {
    if (r.status === 404 && all) {
      // A monitor without activity data: no strip, and no more asking.
      actMissing = true;
      $('activity').hidden = true;
    }
    return r.ok ? r.json() : null;
  }).then(function (data) {
    if (seq === actSeq) actBusy = false;
    if (gen !== viewGen() || seq !== actSeq) return;
    var a = normActivity(data);
    if (a) setActivity(a);
  }).catch(function () {
    if (seq === actSeq) actBusy = false;
  });
}

function setActivity(a) {
  act = a;
  actGen++;
  drawnWithWords = !!heatUnit(a);
  listener();
}

/* A snapshot has been shown: if the activity was drawn before any snapshot said
 * what its heat is called, draw it again with the words. */
export function activityWordsArrived() {
  if (act && !drawnWithWords && heatUnit(act)) setActivity(act);
}
