/* Showing a snapshot: every part of the page drawn from it.
 *
 * The only writer of the snapshot shown (facts.js). The event stream, the first
 * request of a view and the timeline hand snapshots here; a snapshot of a process
 * no longer listed sends the page back to all processes instead.
 */

import { connState, recording, setShownSnap, shownGen, viewGen, viewPid } from './facts.js';
import { findFile } from './heat.js';
import { findProc, nowByFile, ownView, procList } from './processes.js';
import { renderHeader, renderNotes } from './header.js';
import { renderProcs } from './process-panel.js';
import { dropProcess } from './view-select.js';
import { renderFiles } from './files.js';
import { renderThreads, renderThreadsSoon } from './threads.js';
import { refreshSource, selectFile, selectedFile } from './source.js';
import { markFresh, updateBanner } from './status.js';
import { activityWordsArrived } from './activity.js';

/* Show `snap`. True when it says the program's own monitor has stopped, so the
 * live stream ends (the caller, stream.js, ends it). */
export function applySnapshot(snap) {
  if (!snap || typeof snap !== 'object') return false;
  var procs = procList(snap), pid = viewPid();
  if (pid !== 'all' && (snap.view === 'combined' || (procs.length && !findProc(snap, pid)))) {
    // The process shown dropped out of the list (the newest 100 ended ones stay):
    // the stream has fallen back to the combined view already.
    dropProcess(pid);                   // names it from the list it was last in
    if (procs.length) renderProcs(snap);
    return false;
  }
  var gen = viewGen();
  var newView = shownGen() !== gen;
  setShownSnap(snap, gen);
  markFresh();
  document.body.dataset.view = pid;
  var nowMap = nowByFile(snap);
  renderHeader(snap, selectedFile());
  renderNotes(snap);
  renderProcs(snap);
  renderFiles(snap, nowMap);
  if (newView) renderThreads(snap); else renderThreadsSoon(snap);
  updateBanner();
  var files = Array.isArray(snap.files) ? snap.files : [];
  var selected = selectedFile();
  if (files.length && (!selected || (newView && !findFile(snap, selected)))) {
    // First load, or a process that never ran the file shown: its hottest file.
    selectFile(files[0].id, {});
  } else {
    refreshSource(snap, nowMap);
  }
  activityWordsArrived();
  if (recording()) {
    document.body.dataset.state = String(snap.state || 'running');
    updateBanner();
    return false;
  }
  // A child that has ended says "stopped" in its own picture; only the program's
  // own monitor stopping ends the stream.
  return snap.state === 'stopped' && ownView(snap) && connState() !== 'ended';
}
