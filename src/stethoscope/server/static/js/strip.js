/* The activity strip under the header: heat and CPU over time, the readout
 * beside it, the tooltip under the pointer, and (for a recording) the marker of
 * the position asked for.
 *
 * Owns its SVG, the geometry of the last drawing, and the point under the
 * pointer. Reads the activity, the recording and the position in it asked for.
 */

import { $, el, setText, svgEl } from './dom.js';
import { clockText, compact, cpuPct, posText, secText } from './format.js';
import { recording, recordingWant } from './facts.js';
import { actDomain, currentActivity, heatMeans, heatText, heatUnit } from './activity.js';
import { areaPath, indexNear, linePath, seriesMax, tickStep } from './plot.js';

var ACT_PLOT_H = 44;        // px: the strip's plot, then its time axis
var ACT_AXIS_H = 14;

var svg = null, layer = null, marker = null, guide = null;
var geo = null;             // the last drawing: {xOf, t0, t1, L, R, W, PH, xs, yh, yc}
var hover = -1;             // the strip's point under the pointer
var hoverX = null;          // and the pointer's x (clientX) while it is over the strip

export function drawStrip() {
  var box = $('act-plot'), strip = $('activity');
  var act = currentActivity(), rec = recording();
  var W = Math.floor(box.clientWidth);
  if (!act || W < 20) return;
  var times = act.times, n = times.length;
  var PH = ACT_PLOT_H, H = PH + ACT_AXIS_H, top = 3;
  strip.dataset.points = String(n);
  strip.dataset.heat = act.heat;
  strip.dataset.max = String(seriesMax(act.total));
  strip.dataset.cpuMax = String(seriesMax(act.cpu));
  if (n) strip.dataset.end = String(times[n - 1]); else delete strip.dataset.end;
  $('act-empty').hidden = n > 0;
  setText($('act-span'), rec ? 'whole run' : n ? 'last ' + secText(n * act.interval) : '');
  $('act-key-heat').title = 'heat per ' + secText(act.interval) + ', all files together: ' + heatMeans(act);

  if (!svg) {
    svg = svgEl('svg', { 'aria-hidden': 'true' }, 'act-svg');
    var defs = svg.appendChild(svgEl('defs'));
    var g = defs.appendChild(svgEl('linearGradient', { id: 'act-heat-fill', x1: 0, y1: 0, x2: 0, y2: 1 }));
    g.appendChild(svgEl('stop', { offset: '0', 'stop-color': '#ff5a36', 'stop-opacity': '0.55' }));
    g.appendChild(svgEl('stop', { offset: '1', 'stop-color': '#ffa03c', 'stop-opacity': '0.06' }));
    layer = svg.appendChild(svgEl('g'));
    marker = svg.appendChild(svgEl('g', null, 'act-marker'));
    marker.appendChild(svgEl('line', { x1: 0, x2: 0, y1: 0, y2: PH + 2 }));
    marker.appendChild(svgEl('path', { d: 'M-4 0h8l-4 5z' }));
    guide = svg.appendChild(svgEl('g', null, 'act-guide'));
    guide.appendChild(svgEl('line', { x1: 0, x2: 0, y1: top, y2: PH }));
    guide.appendChild(svgEl('circle', { cx: 0, cy: 0, r: 2.5 }, 'act-dot-heat'));
    guide.appendChild(svgEl('circle', { cx: 0, cy: 0, r: 2.5 }, 'act-dot-cpu'));
    guide.style.display = 'none';
    box.insertBefore(svg, box.firstChild);
  }
  svg.setAttribute('width', String(W));
  svg.setAttribute('height', String(H));
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  layer.textContent = '';

  var dom = actDomain(act), t0 = dom[0], t1 = dom[1], span = Math.max(1e-6, t1 - t0);
  // A recording's strip leaves the half width of the slider's thumb at each end,
  // as the slider does.
  var pad = rec ? 8 : 1, L = pad, R = W - pad;
  function xOf(t) { return L + (t - t0) / span * (R - L); }
  var hmax = seriesMax(act.total), cmaxData = seriesMax(act.cpu);
  var cmax = Math.max(100, Math.ceil(cmaxData / 100) * 100);
  var xs = times.map(xOf);
  var yh = act.total.map(function (v) { return PH - (v === null || !hmax ? 0 : v / hmax * (PH - top)); });
  var yc = act.cpu.map(function (v) { return PH - (v === null ? 0 : Math.min(v, cmax) / cmax * (PH - top)); });
  geo = { xOf: xOf, t0: t0, t1: t1, L: L, R: R, W: W, PH: PH, xs: xs, yh: yh, yc: yc };

  layer.appendChild(svgEl('rect', { x: 0, y: 0, width: W, height: PH, rx: 3 }, 'act-bg'));
  // CPU gridlines: every 100 % (one core) below the top of the scale.
  for (var c = 100; c < cmax; c += 100) {
    var gy = (PH - c / cmax * (PH - top)).toFixed(1);
    layer.appendChild(svgEl('line', { x1: L, x2: R, y1: gy, y2: gy }, 'act-grid'));
  }
  // Time ticks and their labels.
  var step = tickStep(span, W);
  var ticks = [];
  if (rec) {
    // Round positions in the run (from its start), those the strip shows.
    var k = Math.ceil((t0 - rec.base) / step - 1e-9);
    for (; rec.base + k * step <= t1 + 1e-9; k++) ticks.push(rec.base + k * step);
  } else {
    for (var j = 0; t1 - j * step >= t0 - 1e-9; j++) ticks.unshift(t1 - j * step);
  }
  ticks.forEach(function (t) {
    var x = xOf(t);
    layer.appendChild(svgEl('line', { x1: x.toFixed(1), x2: x.toFixed(1), y1: PH, y2: PH + 3 }, 'act-tick'));
    var rel = rec ? t - rec.base : t - t1;
    var label = rec ? secText(rel) : Math.abs(rel) < 1e-6 ? 'now' : '−' + secText(rel);
    var anchor = x < 24 ? 'start' : x > W - 24 ? 'end' : 'middle';
    var tx = svgEl('text', { x: x.toFixed(1), y: H - 2, 'text-anchor': anchor }, 'act-label');
    tx.textContent = label;
    layer.appendChild(tx);
  });
  if (n) {
    layer.appendChild(svgEl('path', { d: areaPath(xs, yh, act.total, PH), fill: 'url(#act-heat-fill)' }, 'act-heat-area'));
    layer.appendChild(svgEl('path', { d: linePath(xs, yh, act.total) }, 'act-heat-line'));
    layer.appendChild(svgEl('path', { d: linePath(xs, yc, act.cpu) }, 'act-cpu-line'));
  }
  // The scales, in the legend: what the top of the plot stands for.
  var unit = heatUnit(act);
  setText($('act-heat-top'), hmax ? '0–' + compact(hmax) + (unit ? ' ' + unit : '') : 'none yet');
  setText($('act-cpu-top'), '0–' + cmax + '%');
  placeMarker();
  // Under the pointer: the point now there (live, the points move left).
  if (hoverX !== null) hover = pointAtX(hoverX);
  readout(hover);
  if (hover >= 0) showTip(hover); else hideTip();
}

/* The values beside the strip: at the point under the pointer, else the latest
 * (live) or the position of the recording. */
function readout(i) {
  var act = currentActivity();
  if (!act) return;
  var n = act.times.length;
  if (i < 0) i = recording() ? replayPoint() : n - 1;
  var h = i >= 0 && i < n ? act.total[i] : null, c = i >= 0 && i < n ? act.cpu[i] : null;
  setText($('act-heat'), heatText(act, h));
  setText($('act-cpu'), cpuPct(c));
}

/* The recording's position moved: the readout follows, unless the pointer is
 * over a point. */
export function readoutUnlessHovered() {
  if (currentActivity() && hover < 0) readout(-1);
}

/* The activity point of the recording's current position. */
function replayPoint() {
  var rec = recording(), act = currentActivity();
  if (!rec || !act || !act.times.length) return -1;
  var t = rec.times[recordingWant()] || rec.base;
  return indexNear(act.times, t);
}

/* The marker of the recording's position asked for (none live). */
export function placeMarker() {
  var m = marker, rec = recording();
  if (!m) return;
  if (!rec || !geo || !rec.times.length) { m.style.display = 'none'; return; }
  var x = geo.xOf(rec.times[recordingWant()] || rec.base);
  x = Math.max(geo.L, Math.min(geo.R, x));
  m.setAttribute('transform', 'translate(' + x.toFixed(1) + ' 0)');
  m.style.display = '';
}

function pointAtX(clientX) {
  var act = currentActivity();
  if (!geo || !act || !act.times.length) return -1;
  var r = svg.getBoundingClientRect();
  var t = geo.t0 + (clientX - r.left - geo.L) / (geo.R - geo.L) * (geo.t1 - geo.t0);
  var i = indexNear(act.times, t);
  // Live, the left of the strip may be before the first point.
  return Math.abs(geo.xs[i] - (clientX - r.left)) <= Math.max(12, (geo.R - geo.L) / act.times.length) ? i : -1;
}

/* The moment under a click at `clientX`, or null before the strip is drawn. */
export function timeAtX(clientX) {
  if (!geo) return null;
  var r = $('act-plot').getBoundingClientRect();
  return geo.t0 + (clientX - r.left - geo.L) / (geo.R - geo.L) * (geo.t1 - geo.t0);
}

function showTip(i) {
  var act = currentActivity(), rec = recording(), tip = $('act-tip');
  if (!act || !geo || i < 0 || i >= act.times.length) { hideTip(); return; }
  var t = act.times[i];
  tip.textContent = '';
  var head = tip.appendChild(el('div', 'tip-head'));
  head.appendChild(el('b', '', rec ? posText(t - rec.base) : i === act.times.length - 1 ? 'now' : '−' + secText(act.times[act.times.length - 1] - t)));
  head.appendChild(el('span', 'tip-clock', clockText(t) + ' · ' + secText(act.interval) + ' ending here'));
  var rows = tip.appendChild(el('div', 'tip-rows'));
  var r1 = rows.appendChild(el('div', 'tip-row'));
  r1.appendChild(el('span', 'act-swatch sw-heat'));
  r1.appendChild(el('span', '', 'heat ' + heatText(act, act.total[i])));
  var r2 = rows.appendChild(el('div', 'tip-row'));
  r2.appendChild(el('span', 'act-swatch sw-cpu'));
  r2.appendChild(el('span', '', 'CPU ' + cpuPct(act.cpu[i])));
  var files = [];
  act.files.forEach(function (f) { if (f.values[i]) files.push(f); });
  files.sort(function (a, b) { return b.values[i] - a.values[i]; });
  files.slice(0, 3).forEach(function (f) {
    var r = rows.appendChild(el('div', 'tip-row tip-file'));
    r.appendChild(el('span', 'tip-name', f.name));
    r.appendChild(el('span', 'tip-num', compact(f.values[i])));
  });
  if (rec) tip.appendChild(el('div', 'tip-hint', 'click to go to this moment'));
  tip.hidden = false;
  var x = geo.xs[i];
  var w = tip.offsetWidth, boxW = $('act-plot').clientWidth;
  tip.style.left = Math.max(0, Math.min(boxW - w, x + 12)) + 'px';
  guide.setAttribute('transform', 'translate(' + x.toFixed(1) + ' 0)');
  var dh = guide.children[1], dc = guide.children[2];
  dh.setAttribute('cy', geo.yh[i].toFixed(1));
  dh.style.display = act.total[i] === null ? 'none' : '';
  dc.setAttribute('cy', geo.yc[i].toFixed(1));
  dc.style.display = act.cpu[i] === null ? 'none' : '';
  guide.style.display = '';
}

function hideTip() {
  $('act-tip').hidden = true;
  if (guide) guide.style.display = 'none';
}

export function wireStrip() {
  var plot = $('act-plot');
  plot.addEventListener('mousemove', function (ev) {
    hoverX = ev.clientX;
    var i = pointAtX(ev.clientX);
    hover = i;
    if (i < 0) { hideTip(); readout(-1); return; }
    showTip(i);
    readout(i);
  });
  plot.addEventListener('mouseleave', function () {
    hover = -1;
    hoverX = null;
    hideTip();
    readout(-1);
  });
  if ('ResizeObserver' in window) {
    var last = 0;
    new ResizeObserver(function () {
      var w = plot.clientWidth;
      if (w !== last) { last = w; drawStrip(); }
    }).observe(plot);
  } else {
    window.addEventListener('resize', drawStrip);
  }
}
