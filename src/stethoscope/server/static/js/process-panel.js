/* The process panel: "All processes" and one entry per process, in tree order.
 *
 * One entry per process, built once and updated in place (like thread cards),
 * so an entry under the pointer or holding the focus is never replaced.
 * Owns the entries ('all' or pid -> entry) and the processes last listed (pid ->
 * info: names for notices, whether the one shown still runs). Reads the view
 * asked for (which entry is selected). Choosing an entry is view-select.js's.
 */

import { $, el, setText } from './dom.js';
import { cpuText, duration } from './format.js';
import { viewPid } from './facts.js';
import { fullCmd, procLabel, procList, procState, procTree, shortCmd } from './processes.js';

var procEls = new Map();    // 'all' or pid -> process panel entry
var listed = new Map();     // pid -> latest process info

/* The process `pid` as the panel last listed it, or undefined. */
export function listedProc(pid) { return listed.get(pid); }

function makeProcEl(key) {
  var li = el('li', 'proc-item');
  var b = li.appendChild(el('button', 'proc'));
  b.type = 'button';
  b.dataset.pid = key;
  var top = b.appendChild(el('span', 'p-top'));
  top.appendChild(el('span', 'p-dot'));
  top.appendChild(el('span', 'p-name'));
  top.appendChild(el('span', 'p-method'));
  top.appendChild(el('span', 'p-pid'));
  top.appendChild(el('span', 'p-cpu'));
  var sub = b.appendChild(el('span', 'p-sub'));
  sub.appendChild(el('span', 'p-state'));
  sub.appendChild(el('span', 'p-cmd'));
  return { li: li, btn: b };
}

function procEl(key) {
  var rec = procEls.get(key);
  if (!rec) { rec = makeProcEl(key); procEls.set(key, rec); }
  return rec;
}

function fillAllEntry(rec, procs) {
  var b = rec.btn, top = b.firstChild, sub = b.lastChild;
  var running = procs.filter(function (p) { return p.state === 'running'; });
  var cpu = running.reduce(function (acc, p) { return acc + (typeof p.cpu === 'number' ? p.cpu : 0); }, 0);
  b.className = 'proc proc-all ps-run';
  setText(top.children[1], 'All processes (combined)');
  setText(top.children[2], '');
  setText(top.children[3], '');
  setText(top.children[4], running.length ? cpuText(cpu) : '');
  top.children[4].title = 'CPU of the running processes together, in percent of one core';
  setText(sub.firstChild, procs.length + ' processes · ' + running.length + ' running');
  setText(sub.lastChild, '');
  b.title = 'heat summed over every process; the threads of all of them';
}

function fillProc(rec, p, depth, snap) {
  var b = rec.btn, top = b.firstChild, sub = b.lastChild;
  var st = procState(p);
  var argv = Array.isArray(p.argv) ? p.argv.map(String) : [];
  b.className = 'proc ' + st.cls + (p.method === 'main' ? ' proc-main' : '');
  b.dataset.depth = String(depth);
  b.dataset.state = String(p.state || '');
  b.style.setProperty('--depth', String(Math.min(depth, 8)));
  var name = top.children[1];
  setText(name, procLabel(p));
  var up = p.started && snap.time ? ', up ' + duration(snap.time - p.started) : '';
  name.title = procLabel(p) + ' — pid ' + p.pid + ', parent ' + p.ppid + ', started by ' + p.method + up +
    '\nCPU time ' + (Number(p.cpu_seconds) || 0).toFixed(2) + ' s';
  setText(top.children[2], p.name && p.method && p.method !== 'main' ? String(p.method) : '');
  setText(top.children[3], 'pid ' + p.pid);
  var cpu = top.children[4];
  setText(cpu, p.state === 'running' ? cpuText(p.cpu) : '');
  cpu.classList.toggle('busy', p.state === 'running' && typeof p.cpu === 'number' && p.cpu >= 50);
  cpu.title = p.state === 'running' ? 'percent of one core over about the last second' : '';
  var state = sub.firstChild;
  setText(state, st.text);
  state.title = st.title;
  var cmd = sub.lastChild;
  setText(cmd, shortCmd(argv));
  cmd.title = fullCmd(argv);
  b.removeAttribute('title');
}

export function renderProcs(snap) {
  var procs = procList(snap);
  listed = new Map();
  procs.forEach(function (p) { listed.set(String(p.pid), p); });
  var multi = procs.length > 1;
  document.body.classList.toggle('multi', multi);
  $('procs-panel').hidden = !multi;
  var keys = [];
  if (multi) {
    keys.push('all');
    fillAllEntry(procEl('all'), procs);
    procTree(procs).forEach(function (n) {
      var key = String(n.p.pid);
      keys.push(key);
      fillProc(procEl(key), n.p, n.depth, snap);
    });
  }
  var want = new Set(keys);
  procEls.forEach(function (rec, key) {
    if (!want.has(key)) { rec.li.remove(); procEls.delete(key); }
  });
  // Move only what is out of place: a moved button would lose the focus.
  var ul = $('procs');
  keys.forEach(function (key, i) {
    var li = procEls.get(key).li;
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
  });
  markSelectedProc();
  var running = procs.filter(function (p) { return p.state === 'running'; }).length;
  setText($('procs-count'), multi ? procs.length + (running < procs.length ? ' · ' + running + ' running' : '') : '');
}

export function markSelectedProc() {
  var pid = viewPid();
  procEls.forEach(function (rec, key) {
    var on = key === pid;
    rec.btn.classList.toggle('selected', on);
    if (on) rec.btn.setAttribute('aria-current', 'true'); else rec.btn.removeAttribute('aria-current');
  });
}

/* Arrow keys, Home and End move the focus between the entries. */
export function wireProcessKeys() {
  $('procs').addEventListener('keydown', function (ev) {
    var b = ev.target.closest('.proc');
    if (!b) return;
    var all = Array.prototype.slice.call($('procs').querySelectorAll('.proc'));
    var i = all.indexOf(b), j = -1;
    if (ev.key === 'ArrowDown') j = Math.min(all.length - 1, i + 1);
    else if (ev.key === 'ArrowUp') j = Math.max(0, i - 1);
    else if (ev.key === 'Home') j = 0;
    else if (ev.key === 'End') j = all.length - 1;
    if (j < 0) return;
    ev.preventDefault();
    all[j].focus();
  });
}
