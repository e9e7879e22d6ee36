/* stethoscope web page: the start, and the wiring of its modules.
 *
 * Reads only the HTTP API described in docs/http-api.md: /api/snapshot once,
 * /api/events (SSE) for live snapshots, /api/source/<id> once per file, and
 * POST /api/mode when the mode switch in the header is used.
 * Every string coming from the monitored program (paths, thread names, source
 * text, notes) is inserted with textContent / createTextNode, never as HTML.
 * The source view of a file is built once; later snapshots only touch the rows
 * whose figures changed, so a 5,000-line file stays cheap to update.
 *
 * GET /api/activity (about once a second while the tab is visible) feeds the
 * activity strip under the header and the sparklines of files and threads.
 * When GET /api/recording describes one, the page shows a recording (stethoscope view):
 * no event stream, a timeline that loads /api/snapshot?at=I instead.
 *
 * A program with child processes gets a process panel: "All processes" (the
 * combined view, pid=all) or one process (pid=N). The choice lives in the URL
 * hash (#pid=N) and in the pid parameter of every snapshot request.
 *
 * Each module owns its own state; facts.js holds the few facts several read.
 * Imports go one way, towards the leaves (dom, format, facts, heat, processes,
 * plot); where a lower module must call a higher one it calls the one listener
 * given here (whenViewChanges, whenActivity, whenFileSelected). Owns nothing but
 * the activity polling's timer.
 */

// first: it takes the token from the address bar before anything else runs
import { apiFetch } from './token.js';
import { connState, recording, setView, viewGen, viewPid } from './facts.js';
import { findProc, procList } from './processes.js';
import { activityBusy, activityMissing, loadActivity, whenActivity } from './activity.js';
import { wireMode } from './mode.js';
import { setState, tick } from './status.js';
import { renderProcs, listedProc, wireProcessKeys } from './process-panel.js';
import { dropProcess, followHash, whenViewChanges, wireViewSelect } from './view-select.js';
import { markSelectedFile, redrawFileSparks, wireFiles } from './files.js';
import { forgetPendingThreads, redrawThreadSparks, wireThreads } from './threads.js';
import { whenFileSelected, wireSource } from './source.js';
import { drawStrip, wireStrip } from './strip.js';
import { startReplay, tlFetch, wireTimeline } from './timeline.js';
import { connect, loadSnapshot } from './stream.js';

var ACT_EVERY = 1000;       // ms between live activity requests

/* A new view was chosen: its data, from the recording or the live monitor. */
function loadView() {
  forgetPendingThreads();
  if (recording()) {
    tlFetch();
    loadActivity();
    return;
  }
  loadSnapshot();
  connect();
  if (!activityMissing()) loadActivity();
}

function pollActivity() {
  if (recording() || activityMissing() || activityBusy()) return;
  if (document.visibilityState === 'hidden') return;
  if (connState() !== 'live') return;  // not while the stream is down, nor once it ended
  // One process shown: only while it runs. An ended one's figures no longer
  // change, and once it drops out of the list the monitor answers 404.
  if (viewPid() !== 'all') {
    var p = listedProc(viewPid());
    if (!p || p.state !== 'running') return;
  }
  loadActivity();
}

/* Live: the snapshot, the event stream, and the activity once a second. */
function startLive() {
  setInterval(pollActivity, ACT_EVERY);
  if (viewPid() === 'all') { loadSnapshot(); connect(); loadActivity(); return; }
  // A process from an old URL may be gone: ask the combined picture, which lists
  // every process, before asking for this one (no 404 to recover from).
  var pid = viewPid(), gen = viewGen();
  apiFetch('/api/snapshot?pid=all').then(function (r) {
    return r.ok ? r.json() : null;
  }).then(function (snap) {
    if (gen !== viewGen()) return;
    if (snap && procList(snap).length && !findProc(snap, pid)) {
      renderProcs(snap);
      dropProcess(pid);
      return;
    }
    loadSnapshot();
    connect();
    loadActivity();
  }).catch(function () {
    if (gen !== viewGen()) return;
    loadSnapshot();
    connect();
    loadActivity();
  });
}

/* GET /api/recording: `then(rec)` with the recording's description, or null for a
 * live monitor (it answers 200 with null). */
function checkRecording(then) {
  apiFetch('/api/recording').then(function (r) {
    return r.status === 200 ? r.json() : null;
  }).catch(function () { return null; }).then(function (rec) {
    then(rec && typeof rec === 'object' && rec.count != null && Array.isArray(rec.times) ? rec : null);
  });
}

function wire() {
  whenViewChanges(loadView);
  whenFileSelected(markSelectedFile);
  whenActivity(function () {
    drawStrip();
    redrawFileSparks();
    redrawThreadSparks();
  });
  wireMode();
  wireFiles();
  wireThreads();
  wireViewSelect();
  wireProcessKeys();
  wireStrip();
  wireTimeline();
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') pollActivity();
  });
  wireSource();
}

function start() {
  wire();
  setState('connecting');
  setInterval(tick, 1000);
  setView(followHash());        // a reload keeps the process shown
  checkRecording(function (rec) { if (rec) startReplay(rec); else startLive(); });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
