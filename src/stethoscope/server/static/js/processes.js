/* What a snapshot says of the program's processes, and of which process each
 * thread and executing line belongs to.
 *
 * Owns nothing; pure functions of a snapshot. A program with child processes
 * lists them all in `processes`, the monitored one first.
 */

import { basename } from './format.js';

var SIGNALS = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT',
  7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2',
  13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM' };
var HOW = {
  'return': 'its multiprocessing target returned or raised (exit code as multiprocessing reports it)',
  exit: 'a normal interpreter exit',
  'os._exit': 'it called os._exit()',
  SIGTERM: 'it received SIGTERM',
  vanished: 'it was gone without a final report (killed, e.g. by SIGKILL)'
};

export function procList(snap) {
  return snap && Array.isArray(snap.processes)
    ? snap.processes.filter(function (p) { return p && p.pid != null; }) : [];
}

export function findProc(snap, pid) {
  var ps = procList(snap);
  for (var i = 0; i < ps.length; i++) if (String(ps[i].pid) === String(pid)) return ps[i];
  return null;
}

function endedPids(snap) {
  var out = new Set();
  procList(snap).forEach(function (p) { if (p.state !== 'running') out.add(String(p.pid)); });
  return out;
}

export function procLabel(p) {
  if (p.name) return String(p.name);
  return p.method === 'main' ? 'main' : String(p.method || 'process');
}

/* How a process stands: short text, a class, and what the monitor knows. */
export function procState(p) {
  var code = typeof p.exit_code === 'number' ? p.exit_code : null;
  var how = String(p.exit_how || '');
  var why = HOW[how] ? 'ended: ' + HOW[how] : '';
  if (p.state === 'running') return { text: 'running', cls: 'ps-run', title: 'running' };
  if (code !== null && code < 0) {
    var sig = -code, name = SIGNALS[sig] || 'signal ' + sig;
    var word = sig === 15 ? 'terminated' : sig === 2 ? 'interrupted' : 'killed';
    return { text: word + ' (' + name + ')', cls: 'ps-killed',
      title: (why || 'ended') + '\nexit code ' + code + ': ended by ' + name };
  }
  if (p.state === 'killed') {
    return { text: 'killed', cls: 'ps-killed', title: (why || 'killed') + '; its exit status is not known' };
  }
  if (how === 'SIGTERM') return { text: 'terminated (SIGTERM)', cls: 'ps-killed', title: why };
  var extra = how === 'os._exit' ? ' (os._exit)' : '';
  if (code !== null) {
    return { text: 'exited ' + code + extra, cls: code === 0 ? 'ps-ok' : 'ps-bad', title: why + '\nexit code ' + code };
  }
  if (p.state === 'exited') {
    return { text: 'exited' + extra, cls: 'ps-ok', title: (why || 'exited') + '\nthe exit code is not known' };
  }
  return { text: String(p.state || '?'), cls: 'ps-ok', title: why };
}

// Quoted as a POSIX shell would need it (the rule of Python's shlex.quote).
function quoteArg(a) {
  a = String(a);
  if (a === '') return "''";
  return /[^\w@%+=:,./-]/.test(a) ? "'" + a.replace(/'/g, "'\"'\"'") + "'" : a;
}

export function fullCmd(argv) { return argv.map(quoteArg).join(' '); }

/* The command line with the interpreter's directory dropped and very long
 * arguments cut; the whole of it goes into the tooltip. */
export function shortCmd(argv) {
  return argv.map(function (a, i) {
    a = String(a);
    if (i === 0) return quoteArg(basename(a) || a);
    return quoteArg(a.length > 90 ? a.slice(0, 89) + '…' : a);
  }).join(' ');
}

/* Processes in tree order: each under its parent (ppid), children by start
 * time as listed; one whose parent is not listed goes under the main process. */
export function procTree(procs) {
  if (!procs.length) return [];
  var main = String(procs[0].pid);
  var byPid = new Map(), kids = new Map(), out = [], seen = new Set();
  procs.forEach(function (p) { byPid.set(String(p.pid), p); });
  procs.forEach(function (p, i) {
    if (i === 0) return;
    var parent = String(p.ppid);
    if (!byPid.has(parent) || parent === String(p.pid)) parent = main;
    if (!kids.has(parent)) kids.set(parent, []);
    kids.get(parent).push(p);
  });
  function walk(p, depth) {
    var key = String(p.pid);
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ p: p, depth: depth });
    (kids.get(key) || []).forEach(function (c) { walk(c, depth + 1); });
  }
  walk(procs[0], 0);
  procs.forEach(function (p) { walk(p, 1); });   // parents that form a loop
  return out;
}

/* The picture is the program's own process (the first listed) or the combined
 * view, not a child's own. The mode switch acts on the program's own monitor: a
 * child's view shows that child's mode, which the page cannot change. */
export function ownView(snap) {
  var procs = procList(snap);
  return snap.view !== 'process' || !procs.length || String(procs[0].pid) === String(snap.pid);
}

/* The process a thread or `now` entry belongs to: its pid field, or in a
 * single-process view (pid null) the snapshot's own pid. */
export function pidOf(snap, item) {
  return String(item && item.pid != null ? item.pid : snap.pid);
}

export function threadKey(snap, t) { return pidOf(snap, t) + ':' + t.ident; }

export function isCombined(snap) { return !!snap && snap.view === 'combined' && procList(snap).length > 1; }

/* The `now` entries of processes still running: a process that has ended keeps
 * its last report in the snapshot, but nothing in it executes any more. */
export function liveNow(snap) {
  var gone = endedPids(snap);
  return (Array.isArray(snap.now) ? snap.now : []).filter(function (n) {
    return n && n.file != null && !gone.has(pidOf(snap, n));
  });
}

/* file id -> line -> the names of the threads executing it now. */
export function nowByFile(snap) {
  var m = new Map();
  var names = new Map();
  var combined = isCombined(snap);
  (snap.threads || []).forEach(function (t) { names.set(threadKey(snap, t), t.name); });
  liveNow(snap).forEach(function (n) {
    var lines = m.get(n.file);
    if (!lines) { lines = new Map(); m.set(n.file, lines); }
    var who = lines.get(n.line) || [];
    var key = pidOf(snap, n) + ':' + n.thread;
    who.push((names.has(key) ? String(names.get(key)) : 'thread ' + n.thread) +
      (combined ? ' (pid ' + pidOf(snap, n) + ')' : ''));
    lines.set(n.line, who);
  });
  return m;
}
