/* How the page writes numbers, durations, moments and paths.
 *
 * Owns nothing; pure functions.
 */

export function basename(p) {
  if (!p) return '';
  var s = String(p).replace(/[\\/]+$/, '');
  var i = Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\'));
  return i >= 0 ? s.slice(i + 1) : s;
}

export function dirname(p) {
  var s = String(p || '');
  var i = Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\'));
  return i > 0 ? s.slice(0, i) : '';
}

export function full(n) { return Number(n || 0).toLocaleString('en-US'); }

export function compact(n) {
  n = Number(n || 0);
  if (n < 1000) return String(Math.round(n));
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e4 ? 1 : 0) + 'k';
  if (n < 1e9) return (n / 1e6).toFixed(n < 1e7 ? 1 : 0) + 'M';
  return (n / 1e9).toFixed(1) + 'G';
}

export function duration(sec) {
  sec = Math.max(0, Math.floor(sec || 0));
  var h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
  if (h) return h + 'h' + String(m).padStart(2, '0') + 'm';
  if (m) return m + 'm' + String(s).padStart(2, '0') + 's';
  return s + 's';
}

export function agoText(ms) {
  var s = Math.max(0, ms) / 1000;
  return s < 10 ? s.toFixed(1) + ' s' : duration(s);
}

export function secText(sec) {
  var a = Math.abs(sec);
  if (a < 60) return (Math.round(a * 10) / 10) + ' s';
  var m = Math.floor(a / 60), s = Math.round(a % 60);
  if (s === 60) { m++; s = 0; }
  if (m >= 60) return Math.floor(m / 60) + ' h' + (m % 60 ? ' ' + m % 60 + ' min' : '');
  return m + ' min' + (s ? ' ' + s + ' s' : '');
}

/* A position in a recording: "12.5 s", "1:02.5", "1:02:03". */
export function posText(sec) {
  sec = Math.max(0, sec || 0);
  if (sec < 60) return sec.toFixed(1) + ' s';
  var h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
  var ss = (s < 10 ? '0' : '') + s.toFixed(1);
  return h ? h + ':' + String(m).padStart(2, '0') + ':' + String(Math.floor(s)).padStart(2, '0') : m + ':' + ss;
}

export function clockText(t) {
  var d = new Date(t * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map(function (x) {
    return String(x).padStart(2, '0');
  }).join(':');
}

/* A CPU figure of the activity plots; "–" where there is none. */
export function cpuPct(v) {
  return v === null ? '–' : (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + '%';
}

/* A process's CPU figure in the process panel; empty where there is none. */
export function cpuText(cpu) {
  return typeof cpu === 'number' && isFinite(cpu) ? (cpu >= 10 ? cpu.toFixed(0) : cpu.toFixed(1)) + '%' : '';
}
