/* What a snapshot's heat means, and how much of it each file and line has.
 *
 * Owns nothing; pure functions of a snapshot. The kinds of heat are the
 * snapshot's own table, `heat_kinds` (made from HEAT_KINDS in model/heat.py), and
 * `heat` names the one in use: which line fields it reads, whether its figures are
 * exact, what they are called. The page never restates any of it.
 */

// Lines mode notes which lines ran in each tick window of the sampler thread (0.2 s).
export var WINDOWS_PER_S = 5;
// A line whose last window ended this close to the snapshot ran "just now": the
// latest window or two, allowing for a late tick and the 0.25 s stream interval.
var RAN_NOW_MS = 600;
var NO_KIND = {};

function own(obj, key) { return !!obj && typeof obj === 'object' && Object.prototype.hasOwnProperty.call(obj, key); }

/* The table's entry for `kind` (its fields: recent, total, exact, unit, file_unit,
 * short_unit, title, activity_unit, activity_title), or {} if the table lacks it. */
export function kindInfo(snap, kind) {
  var kinds = snap && snap.heat_kinds;
  return own(kinds, kind) && kinds[kind] && typeof kinds[kind] === 'object' ? kinds[kind] : NO_KIND;
}

/* The kind the page colours by. */
function heatInfo(snap) { return kindInfo(snap, snap && snap.heat); }

/* What the page colours by: "time" (sampled), "hits" (trace: exact counts) or
 * "ran" (lines mode: the tick windows a line ran in). Hits and ran are exact:
 * no inclusive fallback for them. */
export function heatKind(snap) {
  return heatInfo(snap) !== NO_KIND ? String(snap.heat) : '';
}

export function heatIsExact(snap) { return !!heatInfo(snap).exact; }

/* Lines mode runs ("lines" or "sample+lines"): ran_* figures are live. After a
 * switch to another mode they stay in the snapshot, frozen, and are not shown. */
export function linesOn(snap) {
  return !!snap && (snap.mode === 'lines' || snap.mode === 'sample+lines');
}

/* [recent, total]: the line (and file) fields of the heat in use. */
export function heatFields(snap) {
  var info = heatInfo(snap);
  return [info.recent, info.total];
}

/* Where each line field is in a row: name -> index (-1: absent). */
function columns(snap) {
  var names = (snap && Array.isArray(snap.line_fields)) ? snap.line_fields : [];
  return function (name) { return name ? names.indexOf(name) : -1; };
}

export function unitWord(snap, incl) {
  if (incl) return 'samples on the stack (inclusive: no self time here)';
  return heatInfo(snap).unit;
}

/* The unit of a file's sum (the sidebar, the source header). */
export function fileUnit(snap, incl) {
  if (incl) return 'samples on the stack';
  return heatInfo(snap).file_unit;
}

export function secondsHint(snap, n) {
  if (heatIsExact(snap)) return '';
  var hz = snap && snap.sample_hz && Number(snap.sample_hz.achieved);
  if (!hz || !n) return '';
  var s = n / hz;
  return ' (≈ ' + (s < 10 ? s.toFixed(2) : s.toFixed(1)) + ' s)';
}

export function findFile(snap, id) {
  var fs = (snap && snap.files) || [];
  for (var i = 0; i < fs.length; i++) if (fs[i].id === id) return fs[i];
  return null;
}

/* Figures of one file in the metric the page colours by. For sampled time a
 * line with no self samples falls back to its inclusive count, so callers of
 * hot code light up too; such values are flagged and drawn differently. */
export function fileFigures(snap, file) {
  var col = columns(snap);
  var exact = heatIsExact(snap);     // exact figures: no inclusive fallback
  var keys = heatFields(snap);
  var kr = col(keys[0]), kt = col(keys[1]);
  var F = { line: col('line'), incl_recent: col('incl_recent'), incl_total: col('incl_total') };
  // Lines mode beside the heat: when each line last ran, and whether it did recently.
  var lines = kindInfo(snap, 'ran');
  F.ran_recent = col(lines.recent);
  F.ran_total = col(lines.total);
  F.ran_last_ms = col('ran_last_ms');
  var ran = linesOn(snap) && F.ran_last_ms >= 0 && F.ran_recent >= 0 && F.ran_total >= 0;
  var nowMs = (+snap.time || 0) * 1000;
  var rows = Array.isArray(file.lines) ? file.lines : [];
  var out = new Map();
  var maxR = 0, maxT = 0, maxIR = 0, maxIT = 0;
  var i, row;
  for (i = 0; i < rows.length; i++) {
    row = rows[i];
    var r = +row[kr] || 0, t = +row[kt] || 0;
    if (r > maxR) maxR = r;
    if (t > maxT) maxT = t;
    if (!exact) {
      var ir = F.incl_recent >= 0 ? +row[F.incl_recent] || 0 : 0;
      var it = F.incl_total >= 0 ? +row[F.incl_total] || 0 : 0;
      if (ir > maxIR) maxIR = ir;
      if (it > maxIT) maxIT = it;
    }
  }
  for (i = 0; i < rows.length; i++) {
    row = rows[i];
    var line = +row[F.line];
    var v = { r: +row[kr] || 0, t: +row[kt] || 0, ri: false, ti: false, fr: 0, ft: 0,
      ranR: 0, ranT: 0, last: 0, ranNow: false, ranOnly: false };
    if (!exact) {
      if (!v.r && F.incl_recent >= 0 && +row[F.incl_recent]) { v.r = +row[F.incl_recent]; v.ri = true; }
      if (!v.t && F.incl_total >= 0 && +row[F.incl_total]) { v.t = +row[F.incl_total]; v.ti = true; }
    }
    v.fr = v.r ? v.r / ((v.ri ? maxIR : maxR) || v.r) : 0;
    v.ft = v.t ? v.t / ((v.ti ? maxIT : maxT) || v.t) : 0;
    if (ran) {
      v.ranR = +row[F.ran_recent] || 0;
      v.ranT = +row[F.ran_total] || 0;
      v.last = +row[F.ran_last_ms] || 0;
      v.ranNow = v.last > 0 && nowMs - v.last < RAN_NOW_MS;
      // Ran in the window, yet no sample saw it (short lines the sampler misses).
      v.ranOnly = !exact && v.ranR > 0 && !v.r;
    }
    if (v.r || v.t || v.ranR || v.ranT) out.set(line, v);
  }
  return { lines: out, maxR: maxR, maxT: maxT };
}

export function fileRecent(snap, f) {
  var exact = heatIsExact(snap);
  var r = +f[heatFields(snap)[0]] || 0;
  var incl = false;
  if (!r && !exact && +f.incl_recent) { r = +f.incl_recent; incl = true; }
  return { v: r, incl: incl };
}

export function fileTotal(snap, f) {
  var exact = heatIsExact(snap);
  var t = +f[heatFields(snap)[1]] || 0;
  if (!t && !exact) t = +f.incl_total || 0;
  return t;
}

/* The windows of the recent window, for "ran %": the monitor counts them
 * (ran_windows.recent). In the combined view of several processes a child's
 * line may have run in more windows than the program's own: never over 100 %. */
export function ranWindows(snap) {
  var w = snap.ran_windows && +snap.ran_windows.recent;
  return w > 0 ? w : 1;
}
