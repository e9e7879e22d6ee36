/* The few facts several modules read. Each has one writer, named here; everyone
 * else only reads them through these accessors.
 *
 *   the snapshot shown, and the view it was for ... snapshots.js (applySnapshot)
 *   the process view asked for ...................... view-select.js; main.js at start
 *   the connection, and a refusal of the page ....... status.js (setState); stream.js
 *   the recording shown (stethoscope view), and
 *   the positions in it asked for and shown ......... timeline.js
 *
 * A program with child processes can be shown as "all processes" (the combined
 * view, pid=all) or as one process (pid=N): the pid parameter of every snapshot,
 * event stream and activity request (viewUrl). Each change of view bumps the view
 * generation: answers for an older one are dropped.
 * Nothing here touches the DOM or the network.
 */

var snap = null;        // the snapshot shown
var snapGen = -1;       // the view generation of the picture shown
var pid = 'all';        // the view asked for: 'all' (combined) or a pid, as a string
var gen = 0;            // bumped at each change of view
var state = 'connecting';
var denied = false;     // the monitor answered 403: the page lacks the token
var rec = null;         // a recording: {rec, times, count, base, truncated}
var want = 0;           // the recording's position asked for (slider, markers)
var shown = -1;         // and the position of the snapshot shown

export function shownSnap() { return snap; }
export function shownGen() { return snapGen; }
export function setShownSnap(s, g) { snap = s; snapGen = g; }

export function viewPid() { return pid; }
export function viewGen() { return gen; }
export function setView(p) { pid = String(p); gen++; }

/* `path` asked for the view shown. */
export function viewUrl(path) { return path + '?pid=' + encodeURIComponent(pid); }

/* connecting, live, reconnecting, ended, disconnected, or recording. */
export function connState() { return state; }
export function setConnState(st) { state = st; }
export function isDenied() { return denied; }
export function setDenied(d) { denied = !!d; }

/* The recording shown, or null when the page watches a live program. */
export function recording() { return rec; }
export function setRecording(r) { rec = r; }
export function recordingWant() { return want; }
export function setRecordingWant(i) { want = i; }
export function recordingShown() { return shown; }
export function setRecordingShown(i) { shown = i; }
