/* Which process the page shows: "All processes" (pid=all) or one (pid=N).
 *
 * The choice lives in the URL hash (#pid=N) and in the pid parameter of every
 * snapshot request (facts.js). Owns the hash, the notice of the process panel,
 * and the one listener main.js gives (whenViewChanges), which asks for the new
 * view's data. Writes the view asked for; reads the connection state and the
 * processes last listed.
 */

import { $, setText } from './dom.js';
import { connState, setView, viewPid } from './facts.js';
import { procLabel } from './processes.js';
import { listedProc, markSelectedProc } from './process-panel.js';

var noticeTimer = 0;
var onChange = function () {};

/* `fn()` is called after each change of view (the generation is bumped already). */
export function whenViewChanges(fn) { onChange = fn; }

function showProcNotice(text) {
  var n = $('procs-notice');
  setText(n, text);
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(hideProcNotice, 20000);
}

function hideProcNotice() {
  clearTimeout(noticeTimer);
  $('procs-notice').hidden = true;
}

// The view in the URL hash: "#pid=1234"; other parts of the hash are kept as they are.
function hashParts() {
  return location.hash.replace(/^#/, '').split('&').filter(function (x) { return x !== ''; });
}

function pidFromHash() {
  var found = hashParts().filter(function (x) { return x.indexOf('pid=') === 0; })[0];
  if (!found) return 'all';
  var v = decodeURIComponent(found.slice(4));
  return v === '' ? 'all' : v;
}

function writeHash(pid) {
  var parts = hashParts().filter(function (x) { return x.indexOf('pid=') !== 0; });
  if (pid !== 'all') parts.unshift('pid=' + encodeURIComponent(pid));
  var h = parts.join('&');
  if (location.hash.replace(/^#/, '') === h) return;
  if (window.history && history.replaceState) {
    history.replaceState(null, '', location.pathname + location.search + (h ? '#' + h : ''));
  }
}

/* Show one process ('1234') or all of them ('all'): a new snapshot and a new
 * event stream for that view; answers for the old view are dropped. */
function selectProcess(pid, opts) {
  opts = opts || {};
  pid = String(pid);
  var shown = viewPid();
  if (pid === shown && !opts.force) return;
  if (connState() === 'ended') {
    showProcNotice('the program has ended: only the final picture of ' +
      (shown === 'all' ? 'all processes' : 'process ' + shown) + ' is left');
    return;
  }
  setView(pid);
  writeHash(pid);
  if (!opts.keep) hideProcNotice();
  markSelectedProc();
  onChange();
}

/* The process shown is not (or no longer) one of the program's: back to all. */
export function dropProcess(pid) {
  if (viewPid() !== pid) return;
  var p = listedProc(pid);
  showProcNotice(p
    ? 'process ' + pid + ' (' + procLabel(p) + ') is no longer listed — showing all processes'
    : 'process ' + pid + ' is not listed (any more) — showing all processes');
  selectProcess('all', { keep: true });
}

/* The view the URL hash asks for, at load and when the hash is edited. */
export function followHash() {
  var pid = pidFromHash();
  if (pid !== 'all' && !/^[0-9]{1,9}$/.test(pid)) {
    writeHash('all');
    showProcNotice('"' + pid + '" is not a process id — showing all processes');
    pid = 'all';
  }
  return pid;
}

export function wireViewSelect() {
  $('procs').addEventListener('click', function (ev) {
    var b = ev.target.closest('.proc');
    if (b) selectProcess(b.dataset.pid);
  });
  window.addEventListener('hashchange', function () {
    var pid = followHash();
    if (pid !== viewPid()) selectProcess(pid);
  });
}
