/* The mode switch in the header.
 *
 * The select shows the mode asked for; #mode what runs (a snapshot's `mode`).
 * POST /api/mode?mode=M answers the mode now running, or 400 with a reason.
 *
 * Owns what was asked for and the switch under way (modeWanted, modeBusy,
 * modeSeq, modeHold) and the message under the header (#mode-msg). Reads the
 * connection state, whether a recording is shown, and the snapshot shown.
 */

import { $, setText, parse } from './dom.js';
import { apiFetch } from './token.js';
import { connState, recording, shownSnap } from './facts.js';
import { WINDOWS_PER_S } from './heat.js';
import { ownView } from './processes.js';

var MODES = ['auto', 'sample', 'lines', 'trace'];

/* Which running modes each requested mode may turn into ("sample" is the
 * fallback of every mode that cannot run here). */
var MODE_RUNS = {
  auto: ['sample+lines', 'sample'], sample: ['sample'], lines: ['lines', 'sample'],
  trace: ['trace', 'sample']
};

var modeWanted = '';      // the mode asked for, as the select shows it
var modeBusy = false;     // a POST /api/mode is on its way
var modeSeq = 0;
var modeHold = null;      // {running, until}: the answer of a switch, until snapshots agree

function requestedFrom(running) {
  return running === 'sample+lines' ? 'auto' : MODES.indexOf(running) >= 0 ? running : 'sample';
}

function pyAtLeast(snap, major, minor) {
  var m = /^(\d+)\.(\d+)/.exec(String(snap && snap.python || ''));
  if (!m) return true;
  return +m[1] > major || (+m[1] === major && +m[2] >= minor);
}

export function renderMode(snap) {
  var running = String(snap.mode || '');
  // A snapshot built just before a switch may arrive after its answer: for a
  // moment the answer wins, until a snapshot says the same.
  var hold = modeHold;
  if (hold && (running === hold.running || Date.now() > hold.until)) modeHold = hold = null;
  if (hold && ownView(snap)) running = hold.running;
  var b = $('mode'), pick = $('mode-pick');
  setText(b, modeBusy ? 'switching…' : running || '–');
  b.classList.toggle('busy', !!modeBusy);
  // What was asked for: the page's last request while the monitor runs one of
  // its outcomes; otherwise (first load, a switch from elsewhere) read from `mode`.
  if (!modeBusy && running && !hold && snap.requested_mode && ownView(snap) &&
      MODES.indexOf(snap.requested_mode) >= 0) {
    modeWanted = snap.requested_mode;  // what the monitor was asked for, by anyone
  } else if (!modeBusy && running &&
      (!modeWanted || (MODE_RUNS[modeWanted] || []).indexOf(running) < 0)) {
    modeWanted = requestedFrom(running);
  }
  if (!modeBusy && modeWanted && pick.value !== modeWanted) pick.value = modeWanted;
  var own = ownView(snap);
  var ended = connState() === 'ended' || snap.state === 'stopped';
  var replay = !!recording();
  pick.disabled = !!modeBusy || !own || ended || replay;
  var old = !pyAtLeast(snap, 3, 12);
  pick.title = replay ? 'a recording cannot switch modes: it shows what the program ran then'
    : ended ? 'the monitor has stopped'
    : !own ? 'this is a child process\'s own mode: switch modes from the main process or all processes'
    : 'the collection mode to ask for (counts collected so far are kept):\n' +
      'auto: sampled time' + (old ? '' : ' + lines mode') + '\nsample: sampled time only\n' +
      'lines: which lines ran, every line, ' + WINDOWS_PER_S + ' windows/s' +
      (old ? ' (needs Python 3.12+: sampling here)' : '') + '\n' +
      'trace: exact line counts, slower' + (old ? ' (on Python < 3.12 only from the program\'s main thread)' : '');
  b.title = 'what the monitor runs now' + (running === 'sample+lines'
    ? ': the sampler, and lines mode for which lines ran' : '');
}

function showModeMsg(text, kind) {
  var box = $('mode-msg');
  setText($('mode-msg-text'), text);
  $('mode-msg-text').title = text;     // the whole of it, if the line is cut
  box.className = 'mode-msg mode-msg-' + kind;
  box.hidden = false;
}

function hideModeMsg() { $('mode-msg').hidden = true; }

/* The first line of a text/plain error, without the status the server puts first. */
function plainReason(text, status) {
  var line = String(text || '').split('\n').filter(function (x) { return x.trim(); })[0] || '';
  line = line.trim();
  if (line.indexOf(status + ' ') === 0) line = line.slice(String(status).length + 1);
  return line.length > 300 ? line.slice(0, 299) + '…' : line;
}

function switchMode(mode) {
  if (MODES.indexOf(mode) < 0) return;
  var before = modeWanted;
  var seq = ++modeSeq;
  modeBusy = true;
  hideModeMsg();
  $('mode-pick').disabled = true;
  $('mode').classList.add('busy');
  setText($('mode'), 'switching…');
  function done() {
    if (seq !== modeSeq) return false;
    modeBusy = false;
    $('mode').classList.remove('busy');
    return true;
  }
  apiFetch('/api/mode?mode=' + encodeURIComponent(mode), { method: 'POST' }).then(function (r) {
    return r.text().then(function (body) { return { r: r, body: body }; });
  }).then(function (res) {
    if (!done()) return;
    var running = null;
    if (res.r.ok) {
      var data = parse(res.body);
      running = data && typeof data.mode === 'string' ? data.mode : null;
    }
    var snap = shownSnap();
    if (running) {
      modeWanted = mode;
      modeHold = { running: running, until: Date.now() + 1500 };
      var expected = mode === 'auto' && snap && !pyAtLeast(snap, 3, 12)
        ? 'sample' : (MODE_RUNS[mode] || [])[0];
      if (expected !== running) {
        showModeMsg('asked for ' + mode + ': the monitor runs ' + running + ' (see the notes)', 'warn');
      }
    } else {
      modeWanted = before;
      var why = res.r.status === 403 ? 'the monitor refused this page (open the URL with ?token=… that stethoscope printed)'
        : plainReason(res.body, res.r.status) || 'HTTP ' + res.r.status;
      showModeMsg('cannot switch to ' + mode + ': ' + why, 'error');
    }
    if (snap) renderMode(snap);
  }, function (err) {
    if (!done()) return;
    modeWanted = before;
    showModeMsg('cannot switch to ' + mode + ': no answer from the monitor (' +
      String(err && err.message || err) + ')', 'error');
    var snap = shownSnap();
    if (snap) renderMode(snap);
  });
}

export function wireMode() {
  $('mode-pick').addEventListener('change', function (ev) { switchMode(ev.target.value); });
  $('mode-msg-close').addEventListener('click', hideModeMsg);
}
