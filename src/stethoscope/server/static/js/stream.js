/* The live connection: GET /api/snapshot once per view, then /api/events (SSE)
 * for live snapshots, retried when it breaks.
 *
 * Owns the event source and its retry timers; writes whether the monitor refused
 * the page (facts.js). Reads the view asked for. Snapshots go to applySnapshot;
 * a view whose process the monitor does not know goes back to all processes.
 */

import { parse } from './dom.js';
import { apiEvents, apiFetch } from './token.js';
import { connState, setDenied, shownGen, viewGen, viewPid, viewUrl } from './facts.js';
import { applySnapshot } from './snapshots.js';
import { beat, setState, updateBanner } from './status.js';
import { dropProcess } from './view-select.js';

var GIVE_UP_AFTER = 4000;   // ms of failed reconnection before "disconnected"

var es = null;
var giveUpTimer = 0;
var retryTimer = 0;

function show(snap) {
  if (applySnapshot(snap)) endStream();
}

function endStream() {
  clearTimeout(giveUpTimer);
  clearTimeout(retryTimer);
  if (es) { es.close(); es = null; }
  setState('ended');
}

export function connect() {
  clearTimeout(retryTimer);
  clearTimeout(giveUpTimer);
  giveUpTimer = 0;
  if (es) es.close();
  var source = apiEvents(viewUrl('/api/events'));  // the token in its query
  es = source;
  source.addEventListener('snapshot', function (ev) {
    if (es !== source) return;
    var snap = parse(ev.data);
    clearTimeout(giveUpTimer);
    giveUpTimer = 0;
    var state = connState();
    if (state !== 'live' && state !== 'ended') setState('live');
    show(snap);
    beat();
  });
  source.addEventListener('end', function (ev) {
    if (es !== source) return;
    var snap = parse(ev.data);
    endStream();
    if (snap) applySnapshot(snap);
  });
  source.onerror = function () {
    if (es !== source || connState() === 'ended') return;
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (HTTP error or wrong content type): check why, retry slowly.
      source.close();
      es = null;
      if (viewPid() !== 'all') {
        // Perhaps only this process is unknown (404): then show all of them.
        var pid = viewPid();
        probe(function (status) {
          if ((status === 404 || status === 400) && viewPid() === pid) { dropProcess(pid); return; }
          if (es || connState() === 'ended') return;
          setState('disconnected');
          retryTimer = setTimeout(connect, 5000);
        });
        return;
      }
      probe();
      setState('disconnected');
      retryTimer = setTimeout(connect, 5000);
      return;
    }
    if (connState() !== 'disconnected') setState('reconnecting');
    if (!giveUpTimer) {
      giveUpTimer = setTimeout(function () {
        giveUpTimer = 0;
        var state = connState();
        if (state === 'reconnecting' || state === 'connecting') setState('disconnected');
      }, GIVE_UP_AFTER);
    }
  };
}

function probe(then) {
  apiFetch(viewUrl('/api/snapshot')).then(function (r) {
    setDenied(r.status === 403);
    if (then) then(r.status);
    if (connState() === 'disconnected') updateBanner();
  }, function () {
    setDenied(false);
    if (then) then(0);
  });
}

/* One snapshot of the current view, at once (the stream may beat it to it). */
export function loadSnapshot() {
  var gen = viewGen(), pid = viewPid();
  apiFetch(viewUrl('/api/snapshot')).then(function (r) {
    if (r.status === 403) setDenied(true);
    if ((r.status === 404 || r.status === 400) && gen === viewGen()) dropProcess(pid);
    return r.ok ? r.json() : null;
  }).then(function (snap) {
    // The stream may already have delivered a newer picture of this view.
    if (snap && gen === viewGen() && shownGen() !== gen) show(snap);
  }).catch(function () { /* the event stream reports connection problems */ });
}
