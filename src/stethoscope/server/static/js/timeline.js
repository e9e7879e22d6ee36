/* The replay of a recording: the timeline that picks the snapshot shown.
 *
 * `stethoscope view FILE` serves a recording: GET /api/recording describes it,
 * /api/snapshot?at=I is its I-th snapshot, /api/activity covers the whole run.
 * No event stream: a timeline picks the snapshot shown.
 *
 * Writes the recording and the positions asked for and shown (facts.js); owns
 * the requests on their way and the playing state. Reads the view asked for.
 */

import { $, setText } from './dom.js';
import { apiFetch } from './token.js';
import { clockText, posText } from './format.js';
import { recording, recordingWant, setRecording, setRecordingShown, setRecordingWant, viewGen,
  viewPid } from './facts.js';
import { indexNear, lastAtOrBefore } from './plot.js';
import { applySnapshot } from './snapshots.js';
import { cutReason, setState } from './status.js';
import { dropProcess } from './view-select.js';
import { loadActivity } from './activity.js';
import { placeMarker, readoutUnlessHovered, timeAtX } from './strip.js';
import { placeFileSparkMarks } from './files.js';
import { placeThreadSparkMarks } from './threads.js';
import { showSourceMessage } from './source.js';

var tl = { busy: false, seq: 0, applied: 0, playing: false, timer: 0, debounce: 0,
  anchorIdx: 0, anchorWall: 0 };

/* Show the recording `rec` (GET /api/recording) from its first snapshot. */
export function startReplay(rec) {
  var times = (Array.isArray(rec.times) ? rec.times : []).map(Number);
  var count = Math.min(Math.max(0, Math.floor(+rec.count || 0)), times.length || +rec.count || 0);
  var base = +rec.started;
  if (!isFinite(base) || !times.length || base > times[0]) base = times.length ? times[0] : 0;
  var replay = { rec: rec, times: times, count: count, base: base, truncated: !!rec.truncated };
  setRecording(replay);
  document.body.dataset.replay = '1';
  setState('recording');
  var box = $('timeline');
  box.hidden = false;
  var range = $('tl-range');
  range.max = String(Math.max(0, count - 1));
  range.value = '0';
  range.disabled = count < 2;
  $('tl-play').disabled = count < 2;
  $('tl-trunc').hidden = !replay.truncated;
  $('tl-trunc').title = 'the recording was cut off: ' + cutReason(replay) +
    '; it ends with the last snapshot that could be read';
  var file = String(rec.file || '');
  setText($('tl-file'), file);
  var h = rec.header || {};
  var argv = Array.isArray(h.argv) ? h.argv.map(String).join(' ') : '';
  $('tl-file').title = 'recording ' + file + (argv ? '\nof: ' + argv : '') +
    (rec.started ? '\nstarted ' + new Date(rec.started * 1000).toLocaleString() : '') +
    '\n' + count + ' snapshots' + (replay.truncated ? ' (truncated)' : '');
  $('conn').title = 'a recording' + (file ? ' (' + file + ')' : '') + ': no live connection';
  $('activity').classList.add('seekable');
  if (!count) {
    setText($('tl-pos'), 'empty');
    showSourceMessage('this recording holds no snapshot');
    return;
  }
  tlGo(0);
  loadActivity();
}

function tlLast() { var r = recording(); return r ? Math.max(0, r.count - 1) : 0; }

/* Show position i: slider, label and markers at once; the snapshot as it comes. */
function tlGo(i, debounce) {
  var rec = recording();
  if (!rec || !rec.count) return;
  i = Math.max(0, Math.min(tlLast(), Math.round(+i || 0)));
  setRecordingWant(i);
  var range = $('tl-range');
  if (+range.value !== i) range.value = String(i);
  var rt = rec.times;
  var last = rt.length ? rt[rt.length - 1] : rec.base;
  setText($('tl-pos'), posText((rt[i] != null ? rt[i] : rec.base) - rec.base) + ' / ' +
    posText(last - rec.base));
  $('tl-pos').title = 'snapshot ' + (i + 1) + ' of ' + rec.count +
    (rt[i] != null ? ', recorded at ' + clockText(rt[i]) : '');
  placeMarker();
  placeFileSparkMarks();
  placeThreadSparkMarks();
  readoutUnlessHovered();
  clearTimeout(tl.debounce);
  if (debounce) tl.debounce = setTimeout(tlFetch, 70);
  else tlFetch();
}

/* One snapshot request at a time; when it comes back, the latest position asked
 * for is fetched next. Answers for another view, or older than the picture
 * shown, are dropped. */
export function tlFetch() {
  if (!recording() || tl.busy) return;
  var i = recordingWant(), gen = viewGen(), pid = viewPid(), seq = ++tl.seq;
  tl.busy = true;
  function done() {
    var last = tl.seq === seq;     // no later request was started meanwhile
    if (last) tl.busy = false;
    return last;
  }
  apiFetch('/api/snapshot?at=' + i + '&pid=' + encodeURIComponent(pid)).then(function (r) {
    if ((r.status === 404 || r.status === 400) && pid !== 'all' && gen === viewGen()) {
      done();
      dropProcess(pid);       // not a process of the program at this moment
      return null;
    }
    return r.ok ? r.json() : null;
  }).then(function (snap) {
    var last = done();
    if (snap && gen === viewGen() && seq > tl.applied) {
      tl.applied = seq;
      setRecordingShown(i);
      applySnapshot(snap);
      $('timeline').dataset.index = String(i);
    }
    if (last && (recordingWant() !== i || gen !== viewGen())) tlFetch();
  }).catch(function () {
    if (done() && recordingWant() !== i) tlFetch();
  });
}

function tlPlay() {
  var rec = recording();
  if (!rec || rec.count < 2) return;
  if (recordingWant() >= tlLast()) tlGo(0);
  tl.playing = true;
  tlAnchor();
  clearInterval(tl.timer);
  tl.timer = setInterval(tlTick, 50);
  tlButton();
}

function tlPause() {
  tl.playing = false;
  clearInterval(tl.timer);
  tl.timer = 0;
  tlButton();
}

function tlAnchor() {
  tl.anchorIdx = recordingWant();
  tl.anchorWall = performance.now();
}

function tlButton() {
  var b = $('tl-play');
  setText(b, tl.playing ? '❚❚' : '▶');
  b.setAttribute('aria-label', tl.playing ? 'pause' : 'play');
  b.title = (tl.playing ? 'pause' : 'play the recording') + ' (space)';
  b.classList.toggle('playing', tl.playing);
  $('timeline').dataset.playing = tl.playing ? '1' : '0';
}

/* Playing: the position follows the recorded times, sped up; snapshots the
 * page cannot fetch in time are skipped. */
function tlTick() {
  var rec = recording();
  if (!tl.playing || !rec) return;
  var rt = rec.times;
  var speed = +$('tl-speed').value || 1;
  var t = rt[tl.anchorIdx] + (performance.now() - tl.anchorWall) / 1000 * speed;
  var i = Math.max(tl.anchorIdx, lastAtOrBefore(rt, t));
  if (rt.length < rec.count) i = Math.min(tlLast(), tl.anchorIdx + Math.floor((performance.now() - tl.anchorWall) / 250 * speed));
  if (i !== recordingWant()) tlGo(i);
  if (i >= tlLast()) tlPause();
}

export function wireTimeline() {
  $('act-plot').addEventListener('click', function (ev) {
    // A click on the strip goes to that moment of the recording.
    var rec = recording();
    if (!rec || !rec.times.length) return;
    var t = timeAtX(ev.clientX);
    if (t === null) return;
    tlGo(indexNear(rec.times, t));
    if (tl.playing) tlAnchor();
  });
  var range = $('tl-range');
  range.addEventListener('input', function () {
    tlGo(+range.value, true);
    if (tl.playing) tlAnchor();
  });
  range.addEventListener('keydown', function (ev) {
    if (ev.key === ' ') { ev.preventDefault(); if (tl.playing) tlPause(); else tlPlay(); }
  });
  $('tl-play').addEventListener('click', function () {
    if (tl.playing) tlPause(); else tlPlay();
  });
  $('tl-speed').addEventListener('change', function () { if (tl.playing) tlAnchor(); });
}
