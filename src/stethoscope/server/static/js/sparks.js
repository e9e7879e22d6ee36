/* Sparklines: a file's heat, or a thread's CPU, over the span of the activity.
 *
 * Owns nothing but the SVG of each sparkline it makes (the files sidebar and the
 * thread cards keep them, and say when to draw). Reads the activity, the
 * recording and the position in it asked for (its marker).
 */

import { svgEl } from './dom.js';
import { cpuPct, secText } from './format.js';
import { recording, recordingWant } from './facts.js';
import { actDomain, currentActivity, heatText } from './activity.js';
import { areaPath, lastValue, linePath, seriesMax } from './plot.js';

var SPARK_W = 58, SPARK_H = 14, SPARK_WIDE_H = 16;
var CPU_FLOOR = 5;          // %: a thread's sparkline scale never goes below this

/* A sparkline: a file's heat at a fixed size, or a thread's CPU across its card
 * (`wide`: stretched to the width CSS gives it; its strokes do not scale). */
export function makeSpark(kind, wide) {
  var w = wide ? 100 : SPARK_W, h = wide ? SPARK_WIDE_H : SPARK_H;
  var attrs = { viewBox: '0 0 ' + w + ' ' + h };
  if (wide) attrs.preserveAspectRatio = 'none';
  else { attrs.width = w; attrs.height = h; }
  var s = svgEl('svg', attrs, 'spark spark-' + kind + (wide ? ' spark-wide' : ''));
  s.spW = w;
  s.spH = h;
  s.appendChild(svgEl('line', { x1: 0, x2: w, y1: h - 0.5, y2: h - 0.5 }, 'sp-base'));
  s.appendChild(svgEl('path', { d: '' }, 'sp-area'));
  s.appendChild(svgEl('path', { d: '' }, 'sp-line'));
  s.appendChild(svgEl('line', { x1: 0, x2: 0, y1: 0, y2: h }, 'sp-mark'));
  s.appendChild(svgEl('title'));
  s.dataset.points = '0';
  s.dataset.max = '0';
  return s;
}

/* Draw `values` (null: no data there) scaled to their own maximum (CPU: at least
 * CPU_FLOOR %, so an idle thread's noise stays flat). */
export function drawSpark(s, values, kind, what) {
  var act = currentActivity(), replay = !!recording();
  values = values || [];
  var n = values.length, max = seriesMax(values), last = lastValue(values);
  s.dataset.points = String(n);
  s.dataset.max = String(max);
  if (last === null) delete s.dataset.last; else s.dataset.last = String(last);
  var empty = !n || max <= 0;
  s.classList.toggle('spark-empty', empty);
  var area = s.children[1], line = s.children[2];
  var title = s.lastChild;
  var span = act ? (replay ? 'the whole recording' : 'the last ' + secText(n * act.interval)) : '';
  if (!act || !n) {
    area.setAttribute('d', '');
    line.setAttribute('d', '');
    title.textContent = what + ': no activity data' + (act ? ' (not among the most active)' : ' yet');
    placeSparkMark(s);
    return;
  }
  var dom = sparkDomain(act), t0 = dom[0], spanT = Math.max(1e-6, dom[1] - t0);
  var W = s.spW, top = 1.5, base = s.spH - 0.5;
  var scale = kind === 'cpu' ? Math.max(max, CPU_FLOOR) : max || 1;
  var xs = new Array(n), ys = new Array(n);
  for (var i = 0; i < n; i++) {
    xs[i] = (act.times[i] - t0) / spanT * W;
    ys[i] = base - (values[i] === null ? 0 : values[i] / scale * (base - top));
  }
  area.setAttribute('d', empty ? '' : areaPath(xs, ys, values, base));
  line.setAttribute('d', linePath(xs, ys, values));
  title.textContent = kind === 'cpu'
    ? what + ' — CPU over ' + span + ': max ' + cpuPct(max) + (replay ? '' : ', now ' + cpuPct(last))
    : what + ' — heat over ' + span + ' (per ' + secText(act.interval) + '): max ' + heatText(act, max) +
      (replay ? '' : ', now ' + heatText(act, last));
  placeSparkMark(s);
}

/* Sparklines span the data there is (the strip may leave room on its left). */
function sparkDomain(act) {
  if (recording() || !act.times.length) return actDomain(act);
  var t = act.times;
  return [t[0] - act.interval, t[t.length - 1]];
}

/* The marker of the recording's position (none live). */
export function placeSparkMark(s) {
  var m = s.children[3], rec = recording(), act = currentActivity();
  if (!rec || !act || !rec.times.length) { m.style.display = 'none'; return; }
  var dom = sparkDomain(act);
  var x = (rec.times[recordingWant()] - dom[0]) / Math.max(1e-6, dom[1] - dom[0]) * s.spW;
  x = Math.max(0.5, Math.min(s.spW - 0.5, x));
  m.setAttribute('x1', x.toFixed(1));
  m.setAttribute('x2', x.toFixed(1));
  m.style.display = '';
}
