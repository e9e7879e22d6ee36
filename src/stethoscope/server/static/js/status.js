/* The connection indicator and the banner.
 *
 * Owns the connection state (written to facts.js: setState is its only writer),
 * the indicator's heartbeat and staleness, and the banner under the header. Reads
 * the snapshot shown, the view, the recording and its position shown, and whether
 * the monitor refused the page.
 */

import { $, setText } from './dom.js';
import { connState, isDenied, recording, recordingShown, setConnState, shownSnap, viewPid } from './facts.js';
import { renderMode } from './mode.js';
import { findProc, pidOf, procLabel, procState } from './processes.js';

var STALL_AFTER = 4000;     // ms without a snapshot before we say so
var lastSnapAt = 0;
var beatTimer = 0;

/* Why a recording ends early, as its reader said (GET /api/recording's cut_reason). */
export function cutReason(replay) {
  var why = replay && replay.rec ? replay.rec.cut_reason : null;
  return typeof why === 'string' && why ? why : 'the program was killed';
}

export function setState(st) {
  setConnState(st);
  var snap = shownSnap();
  // A recording has no connection: body[data-state] says the state of the program
  // in the snapshot shown (set as each is shown), the indicator "recording".
  if (!recording() || !snap) document.body.dataset.state = st;
  var conn = $('conn');
  conn.className = 'conn conn-' + st;
  var label = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…',
    ended: 'ended', disconnected: 'disconnected', recording: 'recording' }[st] || st;
  setText($('conn-text'), label);
  updateBanner();
  if (snap) renderMode(snap);
}

export function updateBanner() {
  var b = $('banner');
  var text = '', cls = '';
  var snap = shownSnap(), rec = recording(), state = connState();
  // One process shown, and it has ended: its last report may still say its main
  // thread finished, but nothing of it runs or is served any more.
  var shown = snap && snap.view === 'process' && viewPid() !== 'all' ? findProc(snap, snap.pid) : null;
  var shownEnded = !!shown && shown.state !== 'running';
  var atEnd = rec && recordingShown() >= 0 && recordingShown() === rec.count - 1;
  if (rec && snap && snap.state === 'stopped') {
    text = 'end of the recording — the program had ended';
    cls = 'banner-ended';
  } else if (rec && atEnd && rec.truncated) {
    text = 'end of the recording — it was cut off here: ' + cutReason(rec);
    cls = 'banner-disconnected';
  } else if (state === 'ended') {
    text = 'program ended — showing the final picture';
    cls = 'banner-ended';
  } else if (state === 'disconnected') {
    text = isDenied()
      ? 'disconnected — the monitor refused this page (open the URL with ?token=… that stethoscope printed)'
      : 'disconnected — lost contact with the monitor; showing the last data received';
    cls = 'banner-disconnected';
  } else if (shownEnded) {
    text = 'process ' + shown.pid + ' (' + procLabel(shown) + ') ' + procState(shown).text +
      ' — showing its last report';
    cls = 'banner-ended';
  } else if (snap && snap.state === 'main-finished') {
    var names = blockingNames(snap);
    text = names.length
      ? 'main thread finished — ' + names.length + ' non-daemon thread' + (names.length > 1 ? 's' : '') +
        ' keep' + (names.length > 1 ? '' : 's') + ' the process alive: ' + names.join(', ')
      : 'main thread finished — still serving the final picture (daemon=False)';
    cls = 'banner-finished';
  }
  if (!text) { b.hidden = true; return; }
  b.className = 'banner ' + cls;
  setText(b, text);
  b.hidden = false;
}

/* exit.blocking names threads of the snapshot's own process (the main one in
 * the combined view); a child's thread may have the same ident. */
function blockingNames(snap) {
  var ids = snap.exit && Array.isArray(snap.exit.blocking) ? snap.exit.blocking.map(String) : [];
  var own = String(snap.pid);
  return ids.map(function (id) {
    var t = (snap.threads || []).filter(function (x) {
      return String(x.ident) === id && pidOf(snap, x) === own;
    })[0];
    return t ? String(t.name) : 'thread ' + id;
  });
}

/* A snapshot has just been shown: the indicator is not stale. */
export function markFresh() { lastSnapAt = Date.now(); }

export function beat() {
  var c = $('conn');
  c.classList.add('beat');
  clearTimeout(beatTimer);
  beatTimer = setTimeout(function () { c.classList.remove('beat'); }, 180);
}

/* Once a second: say so when a live stream has stalled. */
export function tick() {
  var state = connState();
  var stale = state === 'live' && lastSnapAt && Date.now() - lastSnapAt > STALL_AFTER;
  $('conn').classList.toggle('stale', !!stale);
  if (stale) setText($('conn-text'), 'live · no update for ' + Math.round((Date.now() - lastSnapAt) / 1000) + ' s');
  else if (state === 'live') setText($('conn-text'), 'live');
}
