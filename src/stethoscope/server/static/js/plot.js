/* The geometry of the activity plots: series, their SVG paths, time ticks, and
 * the point nearest to a moment.
 *
 * Owns nothing; pure functions. A series is an array of numbers with null where
 * there is no data.
 */

export function seriesMax(values) {
  var m = 0;
  for (var i = 0; i < values.length; i++) if (values[i] !== null && values[i] > m) m = values[i];
  return m;
}

export function lastValue(values) {
  for (var i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

/* SVG path of a series: lines between neighbours, broken where a value is null. */
export function linePath(xs, ys, values) {
  var d = '', run = 0;
  for (var i = 0; i < values.length; i++) {
    if (values[i] === null) {
      if (run === 1) d += 'h1.5';
      run = 0;
      continue;
    }
    d += (run ? 'L' : 'M') + xs[i].toFixed(1) + ' ' + ys[i].toFixed(1);
    run++;
  }
  if (run === 1) d += 'h1.5';
  return d;
}

/* The area under a series, closed at `base`, one shape per run without nulls. */
export function areaPath(xs, ys, values, base) {
  var d = '', start = -1, b = base.toFixed(1);
  function close(end) {
    if (start < 0) return;
    var x0 = xs[start], x1 = xs[end];
    if (end === start) { x0 -= 0.75; x1 += 0.75; }
    d += 'M' + x0.toFixed(1) + ' ' + b;
    if (end === start) d += 'L' + x0.toFixed(1) + ' ' + ys[start].toFixed(1) + 'L' + x1.toFixed(1) + ' ' + ys[start].toFixed(1);
    else for (var j = start; j <= end; j++) d += 'L' + xs[j].toFixed(1) + ' ' + ys[j].toFixed(1);
    d += 'L' + x1.toFixed(1) + ' ' + b + 'Z';
    start = -1;
  }
  for (var i = 0; i < values.length; i++) {
    if (values[i] === null) close(i - 1);
    else if (start < 0) start = i;
  }
  close(values.length - 1);
  return d;
}

/* Time ticks: a round step that leaves about 110 px per label. */
export function tickStep(span, width) {
  var steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  var most = Math.max(2, Math.floor(width / 110));
  for (var i = 0; i < steps.length; i++) if (span / steps[i] <= most) return steps[i];
  return steps[steps.length - 1];
}

export function indexNear(times, t) {
  // the index of the point nearest to t (times ascending)
  var lo = 0, hi = times.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    var mid = (lo + hi) >> 1;
    if (times[mid] < t) lo = mid + 1; else hi = mid;
  }
  if (lo > 0 && Math.abs(times[lo - 1] - t) <= Math.abs(times[lo] - t)) lo--;
  return lo;
}

export function lastAtOrBefore(times, t) {
  var lo = 0, hi = times.length - 1, best = 0;
  while (lo <= hi) {
    var mid = (lo + hi) >> 1;
    if (times[mid] <= t) { best = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return best;
}
