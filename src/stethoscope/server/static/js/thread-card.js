/* One thread's card: name, badges, process label, state, CPU and its sparkline,
 * hints, stack (folded when long) and where the thread was started.
 *
 * A card per thread, built once; each snapshot updates its parts in place
 * (frames are reused by position), so a frame under the pointer is not replaced
 * between mousedown and mouseup and clicks are never lost to a live update.
 * Owns nothing but what each card remembers of what it shows (its signatures);
 * threads.js keeps the cards.
 */

import { el, setText } from './dom.js';
import { basename, duration } from './format.js';
import { fullCmd, pidOf, procLabel, procState, threadKey } from './processes.js';
import { makeSpark } from './sparks.js';

var STACK_FOLD = 24; // frames shown before "… N more"

var KIND_CLASS = {
  running: 'k-run', ended: 'k-ended', sleep: 'k-sleep',
  'queue.get': 'k-wait', 'queue.put': 'k-wait', join: 'k-wait', event: 'k-wait',
  condition: 'k-wait', barrier: 'k-wait', lock: 'k-wait', future: 'k-wait',
  select: 'k-io', server: 'k-io', 'socket.recv': 'k-io', 'socket.accept': 'k-io',
  'socket.send': 'k-io', subprocess: 'k-io', input: 'k-io', read: 'k-io', waiting: 'k-wait'
};

function fillFrame(li, fr, isCur) {
  fr = fr || {};
  var monitored = fr.file !== null && fr.file !== undefined;
  setText(li.firstChild, fr.func != null ? fr.func : '?');
  setText(li.lastChild, basename(fr.path) + ':' + fr.line);
  li.title = String(fr.path || '') + ':' + fr.line +
    (monitored ? '\nclick to open' : '\n(not a monitored file)');
  li.className = 'frame ' + (monitored ? 'mon' : 'ext') + (isCur ? ' cur' : '');
  if (monitored) {
    li.dataset.file = String(fr.file);
    li.dataset.line = String(fr.line);
    li.dataset.path = String(fr.path || '');
    li.tabIndex = 0;
    li.setAttribute('role', 'link');
  } else {
    delete li.dataset.file; delete li.dataset.line; delete li.dataset.path;
    li.removeAttribute('tabindex');
    li.removeAttribute('role');
  }
}

/* Make `ol` show `frames` (innermost first), reusing its <li> elements. */
function fillFrames(ol, frames, markCur) {
  var curDone = !markCur;
  for (var i = 0; i < frames.length; i++) {
    var li = ol.children[i];
    if (!li) {
      li = el('li', 'frame');
      li.appendChild(el('span', 'fn'));
      li.appendChild(el('span', 'loc'));
      ol.appendChild(li);
    }
    var isCur = !curDone && frames[i] && frames[i].file != null;
    if (isCur) curDone = true;
    fillFrame(li, frames[i], isCur);
  }
  while (ol.children.length > frames.length) ol.lastChild.remove();
}

export function makeThreadCard() {
  var card = el('div', 'thread');
  var head = card.appendChild(el('div', 't-head'));
  head.appendChild(el('span', 't-name'));
  head.appendChild(el('span', 't-badges'));
  head.appendChild(el('span', 't-id'));
  head.appendChild(el('span', 't-proc'));
  var st = card.appendChild(el('div', 't-state'));
  st.appendChild(el('span', 't-dot'));
  st.appendChild(el('span', 't-state-text'));
  st.appendChild(el('span', 't-age'));
  st.appendChild(el('span', 't-cpu'));
  var spark = st.appendChild(makeSpark('cpu', true));
  card.appendChild(el('ul', 't-hints'));
  card.appendChild(el('ol', 'stack'));
  card.appendChild(el('div', 't-empty'));
  var more = card.appendChild(el('button', 'more'));
  more.type = 'button';
  var made = card.appendChild(el('details', 't-created'));
  made.appendChild(el('summary', 't-created-sum'));
  made.appendChild(el('ol', 'stack'));
  return { el: card, spark: spark, badgeSig: '', hintSig: '', createdSig: '', procSig: '' };
}

function badge(cls, text, title) {
  var b = el('span', 'badge ' + cls, text);
  if (title) b.title = title;
  return b;
}

/* `proc`: the thread's process (when listed); `combined`: label the card with it;
 * `open`: its long stack is unfolded. The sparkline is threads.js's to draw. */
export function fillThread(rec, t, snap, blocking, proc, combined, open) {
  var card = rec.el;
  var key = threadKey(snap, t);
  // A process that has ended left its last report: its threads no longer run.
  var procGone = !!proc && proc.state !== 'running';
  var ended = t.alive === false || t.kind === 'ended' || procGone;
  card.className = 'thread' + (t.main ? ' main' : '') + (t.daemon ? ' daemon' : ' nondaemon') +
    (ended ? ' dead' : '') + (blocking ? ' blocking' : '') + (procGone ? ' proc-gone' : '');
  card.dataset.ident = String(t.ident);
  card.dataset.pid = pidOf(snap, t);
  card.dataset.key = key;
  card.dataset.daemon = String(!!t.daemon);
  card.dataset.main = String(!!t.main);
  if (t.kind) card.dataset.kind = String(t.kind); else delete card.dataset.kind;

  var head = card.firstChild;
  var name = head.children[0];
  setText(name, t.name != null ? t.name : '?');
  name.title = String(t.name);

  var procEnd = procGone ? procState(proc).text : '';
  var pLabel = head.children[3];
  var procSig = combined && proc ? 'pid ' + proc.pid + ' · ' + procLabel(proc) : (combined ? 'pid ' + pidOf(snap, t) : '');
  if (procSig !== rec.procSig) {
    rec.procSig = procSig;
    setText(pLabel, procSig);
    pLabel.title = proc ? fullCmd(Array.isArray(proc.argv) ? proc.argv.map(String) : []) : '';
  }
  pLabel.hidden = !procSig;

  var badgeSig = [t.main, t.daemon, t.daemon_inherited, ended, blocking, procEnd].join();
  if (badgeSig !== rec.badgeSig) {
    rec.badgeSig = badgeSig;
    var badges = head.children[1];
    badges.textContent = '';
    if (t.main) badges.appendChild(badge('badge-main', 'main'));
    if (t.daemon) badges.appendChild(badge('badge-daemon', 'daemon'));
    else badges.appendChild(badge('badge-nondaemon', t.daemon_inherited ? 'non-daemon (inherited)' : 'non-daemon',
      t.daemon_inherited ? 'non-daemon only because the thread that started it was, and daemon= was not given'
        : (t.main ? '' : 'the interpreter waits for this thread before it exits')));
    if (blocking) badges.appendChild(badge('badge-blocking', 'holds exit',
      'the main thread has finished; this thread keeps the process alive'));
    if (procGone) badges.appendChild(badge('badge-dead', 'process ' + procEnd,
      'the process has ended: this is its last report'));
    else if (ended) badges.appendChild(badge('badge-dead', 'ended'));
  }

  var cpu = card.children[1].children[3];
  var hasCpu = typeof t.cpu === 'number' && !ended;
  setText(cpu, hasCpu ? (t.cpu >= 10 ? t.cpu.toFixed(0) : t.cpu.toFixed(1)) + '% cpu' : '');
  cpu.classList.toggle('busy', hasCpu && t.cpu >= 50);
  cpu.title = hasCpu ? 'percent of one core over the last fraction of a second' : '';
  var tid = head.children[2];
  setText(tid, t.native_id != null ? 'tid ' + t.native_id : '');
  tid.title = 'ident ' + t.ident + (t.native_id != null ? ', native id ' + t.native_id : '');

  var st = card.children[1];
  var stateText = procGone ? 'last seen: ' + (t.state || '?') : t.state || (ended ? 'ended' : '');
  st.hidden = !stateText && !hasCpu && !rec.spark;
  st.className = 't-state ' + (KIND_CLASS[t.kind] || (ended ? 'k-ended' : 'k-wait'));
  setText(st.children[1], stateText);
  var age = '';
  if (procGone) age = '';
  else if (ended && t.ended && snap.time) age = 'ended ' + duration(snap.time - t.ended) + ' ago';
  else if (t.started && snap.time) age = 'up ' + duration(snap.time - t.started);
  setText(st.children[2], age);

  var hints = Array.isArray(t.hints) ? t.hints.map(String) : [];
  var hintSig = JSON.stringify(hints);
  if (hintSig !== rec.hintSig) {
    rec.hintSig = hintSig;
    var ul = card.children[2];
    ul.textContent = '';
    hints.forEach(function (h) { ul.appendChild(el('li', 'hint', h)); });
  }
  card.children[2].hidden = hints.length === 0;

  var stack = Array.isArray(t.stack) ? t.stack : [];
  var fold = !open && stack.length > STACK_FOLD + 2;
  var ol = card.children[3];
  fillFrames(ol, fold ? stack.slice(0, STACK_FOLD) : stack, true);
  ol.hidden = stack.length === 0;
  var empty = card.children[4];
  setText(empty, 'no Python frames');
  empty.hidden = stack.length > 0 || ended;   // the state line already says it ended
  var more = card.children[5];
  more.hidden = stack.length <= STACK_FOLD + 2;
  more.dataset.key = key;
  setText(more, open ? 'show fewer frames' : '… ' + (stack.length - STACK_FOLD) + ' more frames (outermost last)');

  var created = Array.isArray(t.created_at) ? t.created_at : [];
  var made = card.children[6];
  made.hidden = created.length === 0;
  var createdSig = JSON.stringify(created) + '|' + t.created_by;
  if (created.length && createdSig !== rec.createdSig) {
    rec.createdSig = createdSig;
    var top = created[0] || {};
    setText(made.firstChild, 'started' + (t.created_by ? ' by ' + t.created_by : '') + ' at ' +
      basename(top.path) + ':' + top.line + (top.func ? ' in ' + top.func : ''));
    made.firstChild.title = 'where Thread.start() was called (click for the whole stack)';
    fillFrames(made.lastChild, created, false);
  }
}
