/* stethoscope web page.
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
 */
(function () {
  'use strict';

  var CHUNK = 200;            // rows per content-visibility block
  var STACK_FOLD = 24;        // frames shown before "… N more"
  var STALL_AFTER = 4000;     // ms without a snapshot before we say so
  var GIVE_UP_AFTER = 4000;   // ms of failed reconnection before "disconnected"
  var TOKEN_KINDS = { kw: 1, str: 1, com: 1, num: 1, def: 1, builtin: 1, op: 1, deco: 1 };
  var FIELDS = ['line', 'hits_recent', 'hits_total', 'self_recent', 'self_total',
    'incl_recent', 'incl_total', 'ran_recent', 'ran_total', 'ran_last_ms'];
  // Lines mode notes which lines ran in each tick window of the sampler thread (0.2 s).
  var WINDOWS_PER_S = 5;
  // A line whose last window ended this close to the snapshot ran "just now": the
  // latest window or two, allowing for a late tick and the 0.25 s stream interval.
  var RAN_NOW_MS = 600;
  var MODES = ['auto', 'sample', 'lines', 'trace'];

  var S = {
    snap: null,
    state: 'connecting',
    selected: null,         // file id shown
    sources: new Map(),     // id -> Promise<source|null>
    views: new Map(),       // id -> view object (built DOM + last painted figures)
    fileEls: new Map(),     // id -> sidebar <li>
    threadEls: new Map(),   // "pid:ident" -> {el, sig} (a forked child repeats idents)
    expanded: new Set(),    // thread keys whose long stacks are unfolded
    pid: 'all',             // the view asked for: 'all' (combined) or a pid, as a string
    gen: 0,                 // bumped at each change of view: answers for an older one are dropped
    snapGen: -1,            // the view generation of the picture shown
    procEls: new Map(),     // 'all' or pid -> process panel entry
    procs: new Map(),       // pid -> latest process info (names for notices)
    noticeTimer: 0,
    notesSig: '',
    es: null,
    lastSnapAt: 0,
    giveUpTimer: 0,
    retryTimer: 0,
    nowCycle: 0,
    modeWanted: '',         // the mode asked for, as the select shows it
    modeBusy: false,        // a POST /api/mode is on its way
    modeSeq: 0,
    modeHold: null,         // {running, until}: the answer of a switch, until snapshots agree
    ranDen: 1,              // windows of the recent window, for "ran %"
    lineHeight: 0,
    mapPending: false,
    act: null,              // the latest /api/activity, normalised (normActivity)
    actGen: 0,              // bumped with each: sparklines drawn from an older one are redrawn
    actSeq: 0,
    actBusy: false,
    actMissing: false,      // the monitor has no /api/activity: no strip, no polling
    actHover: -1,           // the strip's point under the pointer
    actHoverX: null,        // and the pointer's x (clientX) while it is over the strip
    actSvg: null, actLayer: null, actMarker: null, actGuide: null, actGeo: null,
    replay: null,           // a recording (stethoscope view): {rec, times, count, base, truncated}
    tl: { want: 0, shown: -1, busy: false, seq: 0, applied: 0, playing: false, timer: 0,
      debounce: 0, anchorIdx: 0, anchorWall: 0 }
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function setText(node, text) {
    text = String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  function basename(p) {
    if (!p) return '';
    var s = String(p).replace(/[\\/]+$/, '');
    var i = Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\'));
    return i >= 0 ? s.slice(i + 1) : s;
  }

  function dirname(p) {
    var s = String(p || '');
    var i = Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\'));
    return i > 0 ? s.slice(0, i) : '';
  }

  function full(n) { return Number(n || 0).toLocaleString('en-US'); }

  function compact(n) {
    n = Number(n || 0);
    if (n < 1000) return String(Math.round(n));
    if (n < 1e6) return (n / 1e3).toFixed(n < 1e4 ? 1 : 0) + 'k';
    if (n < 1e9) return (n / 1e6).toFixed(n < 1e7 ? 1 : 0) + 'M';
    return (n / 1e9).toFixed(1) + 'G';
  }

  function duration(sec) {
    sec = Math.max(0, Math.floor(sec || 0));
    var h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
    if (h) return h + 'h' + String(m).padStart(2, '0') + 'm';
    if (m) return m + 'm' + String(s).padStart(2, '0') + 's';
    return s + 's';
  }

  // ---------------------------------------------------------------- metrics

  /* What the page colours by: "time" (sampled), "hits" (trace: exact counts) or
   * "ran" (lines mode: the tick windows a line ran in). Hits and ran are exact:
   * no inclusive fallback for them. */
  function heatKind(snap) {
    var h = snap && snap.heat;
    return h === 'hits' || h === 'ran' ? h : 'time';
  }

  function heatIsExact(snap) { return heatKind(snap) !== 'time'; }

  /* Lines mode runs ("lines" or "sample+lines"): ran_* figures are live. After a
   * switch to another mode they stay in the snapshot, frozen, and are not shown. */
  function linesOn(snap) {
    return !!snap && (snap.mode === 'lines' || snap.mode === 'sample+lines');
  }

  function heatFields(snap) {
    var k = heatKind(snap);
    return k === 'hits' ? ['hits_recent', 'hits_total']
      : k === 'ran' ? ['ran_recent', 'ran_total'] : ['self_recent', 'self_total'];
  }

  function agoText(ms) {
    var s = Math.max(0, ms) / 1000;
    return s < 10 ? s.toFixed(1) + ' s' : duration(s);
  }

  function fieldIndex(snap) {
    var names = (snap && Array.isArray(snap.line_fields)) ? snap.line_fields : FIELDS;
    var idx = {};
    for (var i = 0; i < FIELDS.length; i++) {
      var j = names.indexOf(FIELDS[i]);
      idx[FIELDS[i]] = j >= 0 ? j : -1;
    }
    return idx;
  }

  function unitWord(snap, incl) {
    if (incl) return 'samples on the stack (inclusive: no self time here)';
    return { hits: 'executions', ran: 'windows ran in', time: 'self samples' }[heatKind(snap)];
  }

  /* The unit of a file's sum (the sidebar, the source header). */
  function fileUnit(snap, incl) {
    if (incl) return 'samples on the stack';
    return { hits: 'executions', ran: 'line-windows (lines × windows each ran in)',
      time: 'self samples' }[heatKind(snap)];
  }

  function secondsHint(snap, n) {
    if (heatIsExact(snap)) return '';
    var hz = snap && snap.sample_hz && Number(snap.sample_hz.achieved);
    if (!hz || !n) return '';
    var s = n / hz;
    return ' (≈ ' + (s < 10 ? s.toFixed(2) : s.toFixed(1)) + ' s)';
  }

  /* Figures of one file in the metric the page colours by. For sampled time a
   * line with no self samples falls back to its inclusive count, so callers of
   * hot code light up too; such values are flagged and drawn differently. */
  function fileFigures(snap, file) {
    var F = fieldIndex(snap);
    var hits = heatIsExact(snap);     // exact figures: no inclusive fallback
    var keys = heatFields(snap);
    var kr = F[keys[0]], kt = F[keys[1]];
    // Lines mode beside the heat: when each line last ran, and whether it did recently.
    var ran = linesOn(snap) && F.ran_last_ms >= 0 && F.ran_recent >= 0 && F.ran_total >= 0;
    var nowMs = (+snap.time || 0) * 1000;
    var time = heatKind(snap) === 'time';
    var rows = Array.isArray(file.lines) ? file.lines : [];
    var out = new Map();
    var maxR = 0, maxT = 0, maxIR = 0, maxIT = 0;
    var i, row;
    for (i = 0; i < rows.length; i++) {
      row = rows[i];
      var r = +row[kr] || 0, t = +row[kt] || 0;
      if (r > maxR) maxR = r;
      if (t > maxT) maxT = t;
      if (!hits) {
        var ir = F.incl_recent >= 0 ? +row[F.incl_recent] || 0 : 0;
        var it = F.incl_total >= 0 ? +row[F.incl_total] || 0 : 0;
        if (ir > maxIR) maxIR = ir;
        if (it > maxIT) maxIT = it;
      }
    }
    for (i = 0; i < rows.length; i++) {
      row = rows[i];
      var line = +row[F.line];
      var v = { r: +row[kr] || 0, t: +row[kt] || 0, ri: false, ti: false, fr: 0, ft: 0,
        ranR: 0, ranT: 0, last: 0, ranNow: false, ranOnly: false };
      if (!hits) {
        if (!v.r && F.incl_recent >= 0 && +row[F.incl_recent]) { v.r = +row[F.incl_recent]; v.ri = true; }
        if (!v.t && F.incl_total >= 0 && +row[F.incl_total]) { v.t = +row[F.incl_total]; v.ti = true; }
      }
      v.fr = v.r ? v.r / ((v.ri ? maxIR : maxR) || v.r) : 0;
      v.ft = v.t ? v.t / ((v.ti ? maxIT : maxT) || v.t) : 0;
      if (ran) {
        v.ranR = +row[F.ran_recent] || 0;
        v.ranT = +row[F.ran_total] || 0;
        v.last = +row[F.ran_last_ms] || 0;
        v.ranNow = v.last > 0 && nowMs - v.last < RAN_NOW_MS;
        // Ran in the window, yet no sample saw it (short lines the sampler misses).
        v.ranOnly = time && v.ranR > 0 && !v.r;
      }
      if (v.r || v.t || v.ranR || v.ranT) out.set(line, v);
    }
    return { lines: out, maxR: maxR, maxT: maxT };
  }

  function fileRecent(snap, f) {
    var exact = heatIsExact(snap);
    var r = +f[heatFields(snap)[0]] || 0;
    var incl = false;
    if (!r && !exact && +f.incl_recent) { r = +f.incl_recent; incl = true; }
    return { v: r, incl: incl };
  }

  function fileTotal(snap, f) {
    var exact = heatIsExact(snap);
    var t = +f[heatFields(snap)[1]] || 0;
    if (!t && !exact) t = +f.incl_total || 0;
    return t;
  }

  /* The process a thread or `now` entry belongs to: its pid field, or in a
   * single-process view (pid null) the snapshot's own pid. */
  function pidOf(snap, item) {
    return String(item && item.pid != null ? item.pid : snap.pid);
  }

  function threadKey(snap, t) { return pidOf(snap, t) + ':' + t.ident; }

  function isCombined(snap) { return !!snap && snap.view === 'combined' && procList(snap).length > 1; }

  /* The `now` entries of processes still running: a process that has ended keeps
   * its last report in the snapshot, but nothing in it executes any more. */
  function liveNow(snap) {
    var gone = endedPids(snap);
    return (Array.isArray(snap.now) ? snap.now : []).filter(function (n) {
      return n && n.file != null && !gone.has(pidOf(snap, n));
    });
  }

  function nowByFile(snap) {
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

  // ---------------------------------------------------------------- state / banner

  function setState(st) {
    S.state = st;
    // A recording has no connection: body[data-state] says the state of the program
    // in the snapshot shown (set as each is shown), the indicator "recording".
    if (!S.replay || !S.snap) document.body.dataset.state = st;
    var conn = $('conn');
    conn.className = 'conn conn-' + st;
    var label = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…',
      ended: 'ended', disconnected: 'disconnected', recording: 'recording' }[st] || st;
    setText($('conn-text'), label);
    updateBanner();
    if (S.snap) renderMode(S.snap);
  }

  function updateBanner() {
    var b = $('banner');
    var text = '', cls = '';
    // One process shown, and it has ended: its last report may still say its main
    // thread finished, but nothing of it runs or is served any more.
    var shown = S.snap && S.snap.view === 'process' && S.pid !== 'all' ? findProc(S.snap, S.snap.pid) : null;
    var shownEnded = !!shown && shown.state !== 'running';
    var atEnd = S.replay && S.tl.shown >= 0 && S.tl.shown === S.replay.count - 1;
    if (S.replay && S.snap && S.snap.state === 'stopped') {
      text = 'end of the recording — the program had ended';
      cls = 'banner-ended';
    } else if (S.replay && atEnd && S.replay.truncated) {
      text = 'end of the recording — it was cut off here (the program was killed before it could finish the file)';
      cls = 'banner-disconnected';
    } else if (S.state === 'ended') {
      text = 'program ended — showing the final picture';
      cls = 'banner-ended';
    } else if (S.state === 'disconnected') {
      text = S.denied
        ? 'disconnected — the monitor refused this page (open the URL with ?token=… that stethoscope printed)'
        : 'disconnected — lost contact with the monitor; showing the last data received';
      cls = 'banner-disconnected';
    } else if (shownEnded) {
      text = 'process ' + shown.pid + ' (' + procLabel(shown) + ') ' + procState(shown).text +
        ' — showing its last report';
      cls = 'banner-ended';
    } else if (S.snap && S.snap.state === 'main-finished') {
      var names = blockingNames(S.snap);
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

  // ---------------------------------------------------------------- header

  function renderHeader(snap) {
    var argv = Array.isArray(snap.argv) ? snap.argv.map(String) : [];
    var prog = argv.length ? argv.join(' ') : '(unknown program)';
    setText($('argv'), prog);
    $('argv').title = prog;
    setText($('pid'), snap.pid != null ? snap.pid : '–');
    setText($('python'), snap.python || '–');
    renderMode(snap);
    var hz = snap.sample_hz || {};
    var ach = Number(hz.achieved), req = Number(hz.requested);
    setText($('rate'), isFinite(ach) && hz.achieved != null ? ach.toFixed(ach >= 100 ? 0 : 1) + ' Hz' : '–');
    $('rate').title = 'achieved ' + (isFinite(ach) ? ach.toFixed(1) : '?') + ' Hz of ' +
      (isFinite(req) ? req.toFixed(0) : '?') + ' Hz requested';
    $('rate').classList.toggle('warn', isFinite(ach) && isFinite(req) && req > 0 && ach < req * 0.5);
    if (snap.started && snap.time) setText($('uptime'), duration(snap.time - snap.started));
    renderHeatLabel(snap);
    var sel = S.selected && findFile(snap, S.selected);
    var one = snap.view === 'process' && procList(snap).length > 1;
    var p = one ? findProc(snap, snap.pid) : null;
    $('view-kv').hidden = procList(snap).length <= 1;
    setText($('view'), one ? 'pid ' + snap.pid + (p ? ' · ' + procLabel(p) : '') : 'all processes');
    document.title = 'stethoscope — ' + (sel ? sel.name + ' — ' : '') + basename(argv[0] || '') +
      (snap.pid != null ? ' (pid ' + snap.pid + (one ? ' only' : '') + ')' : '');
  }

  /* What the bars mean, in the header pill, the column heads and the legend. */
  function renderHeatLabel(snap) {
    var kind = heatKind(snap), lines = linesOn(snap);
    var win = snap.window ? 'the last ' + snap.window + ' s' : 'the recent window';
    var text, title;
    if (kind === 'hits') {
      text = 'heat = exact executed-line counts';
      title = 'trace mode: bars show how many times each line ran (exact counts)';
    } else if (kind === 'ran') {
      text = 'heat = windows each line ran in (every line, ' + WINDOWS_PER_S + ' windows/s)';
      title = 'lines mode: every line that runs is seen, however short, once per ' +
        (1 / WINDOWS_PER_S) + ' s window; a line\'s figure is the number of windows it ran in ' +
        '(not how often or how long it ran). The percentage is its share of the windows of ' + win +
        '; a dot in the gutter marks lines that ran just now.';
    } else {
      text = lines ? 'heat = sampled time' : 'heat = sampled time (self samples)';
      title = 'bars show sampled time spent on each line itself; lines with only inclusive time ' +
        '(callers) are striped' + (lines ? '.\nLines mode runs beside the sampler and sees every line ' +
        'that runs: a dot in the gutter marks lines that ran in the latest window, a blue tint (and ' +
        '"ran") lines that ran in ' + win + ' but that no sample caught (short lines)' : '');
    }
    var label = $('heat-label');
    if (label.firstChild && label.firstChild.nodeType === 3) setText(label.firstChild, text);
    else { label.textContent = ''; label.appendChild(document.createTextNode(text)); }
    // Sampled time with lines mode: what the gutter's dot means, in its colour.
    var more = label.querySelector('.hl-ran');
    if (lines && kind === 'time' && !more) {
      more = el('span', 'hl-ran');
      more.appendChild(el('span', 'hl-dot'));
      more.appendChild(document.createTextNode('ran just now (exact)'));
      label.appendChild(more);
    } else if (!(lines && kind === 'time') && more) {
      more.remove();
    }
    label.title = title;
    setText($('ch-recent'), snap.window ? 'last ' + snap.window + ' s' : 'recent');
    setText($('ch-pct'), { hits: 'runs', ran: 'ran %', time: '% time' }[kind]);
    $('ch-pct').title = {
      hits: 'executions in the recent window',
      ran: 'share of the tick windows of ' + win + ' in which the line ran',
      time: "share of the program's recent sampled time spent on this line itself" +
        (lines ? '; "ran": it ran, but no sample caught it' : '')
    }[kind];
    $('lg-incl').hidden = kind !== 'time';
    $('lg-ran-only').hidden = !(lines && kind === 'time');
    $('lg-ran-now').hidden = !lines;
    document.body.dataset.heat = kind;
  }

  // ---------------------------------------------------------------- mode switch
  //
  // The select shows the mode asked for; #mode what runs (a snapshot's `mode`).
  // POST /api/mode?mode=M answers the mode now running, or 400 with a reason.

  /* Which running modes each requested mode may turn into ("sample" is the
   * fallback of every mode that cannot run here). */
  var MODE_RUNS = {
    auto: ['sample+lines', 'sample'], sample: ['sample'], lines: ['lines', 'sample'],
    trace: ['trace', 'sample']
  };

  function requestedFrom(running) {
    return running === 'sample+lines' ? 'auto' : MODES.indexOf(running) >= 0 ? running : 'sample';
  }

  function pyAtLeast(snap, major, minor) {
    var m = /^(\d+)\.(\d+)/.exec(String(snap && snap.python || ''));
    if (!m) return true;
    return +m[1] > major || (+m[1] === major && +m[2] >= minor);
  }

  /* The process whose monitor the switch acts on: the program's own (the first
   * listed). A child's view shows that child's mode, which the page cannot change. */
  function ownView(snap) {
    var procs = procList(snap);
    return snap.view !== 'process' || !procs.length || String(procs[0].pid) === String(snap.pid);
  }

  function renderMode(snap) {
    var running = String(snap.mode || '');
    // A snapshot built just before a switch may arrive after its answer: for a
    // moment the answer wins, until a snapshot says the same.
    var hold = S.modeHold;
    if (hold && (running === hold.running || Date.now() > hold.until)) S.modeHold = hold = null;
    if (hold && ownView(snap)) running = hold.running;
    var b = $('mode'), pick = $('mode-pick');
    setText(b, S.modeBusy ? 'switching…' : running || '–');
    b.classList.toggle('busy', !!S.modeBusy);
    // What was asked for: the page's last request while the monitor runs one of
    // its outcomes; otherwise (first load, a switch from elsewhere) read from `mode`.
    if (!S.modeBusy && running && !hold && snap.requested_mode && ownView(snap) &&
        MODES.indexOf(snap.requested_mode) >= 0) {
      S.modeWanted = snap.requested_mode;  // what the monitor was asked for, by anyone
    } else if (!S.modeBusy && running &&
        (!S.modeWanted || (MODE_RUNS[S.modeWanted] || []).indexOf(running) < 0)) {
      S.modeWanted = requestedFrom(running);
    }
    if (!S.modeBusy && S.modeWanted && pick.value !== S.modeWanted) pick.value = S.modeWanted;
    var own = ownView(snap);
    var ended = S.state === 'ended' || snap.state === 'stopped';
    pick.disabled = !!S.modeBusy || !own || ended || !!S.replay;
    var old = !pyAtLeast(snap, 3, 12);
    pick.title = S.replay ? 'a recording cannot switch modes: it shows what the program ran then'
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
    var before = S.modeWanted;
    var seq = ++S.modeSeq;
    S.modeBusy = true;
    hideModeMsg();
    $('mode-pick').disabled = true;
    $('mode').classList.add('busy');
    setText($('mode'), 'switching…');
    function done() {
      if (seq !== S.modeSeq) return false;
      S.modeBusy = false;
      $('mode').classList.remove('busy');
      return true;
    }
    fetch('/api/mode?mode=' + encodeURIComponent(mode), {
      method: 'POST', credentials: 'same-origin', cache: 'no-store'
    }).then(function (r) {
      return r.text().then(function (body) { return { r: r, body: body }; });
    }).then(function (res) {
      if (!done()) return;
      var running = null;
      if (res.r.ok) {
        var data = parse(res.body);
        running = data && typeof data.mode === 'string' ? data.mode : null;
      }
      if (running) {
        S.modeWanted = mode;
        S.modeHold = { running: running, until: Date.now() + 1500 };
        var expected = mode === 'auto' && S.snap && !pyAtLeast(S.snap, 3, 12)
          ? 'sample' : (MODE_RUNS[mode] || [])[0];
        if (expected !== running) {
          showModeMsg('asked for ' + mode + ': the monitor runs ' + running + ' (see the notes)', 'warn');
        }
      } else {
        S.modeWanted = before;
        var why = res.r.status === 403 ? 'the monitor refused this page (token)'
          : plainReason(res.body, res.r.status) || 'HTTP ' + res.r.status;
        showModeMsg('cannot switch to ' + mode + ': ' + why, 'error');
      }
      if (S.snap) renderMode(S.snap);
    }, function (err) {
      if (!done()) return;
      S.modeWanted = before;
      showModeMsg('cannot switch to ' + mode + ': no answer from the monitor (' +
        String(err && err.message || err) + ')', 'error');
      if (S.snap) renderMode(S.snap);
    });
  }

  function renderNotes(snap) {
    var notes = Array.isArray(snap.notes) ? snap.notes.map(String) : [];
    var sig = JSON.stringify(notes);
    if (sig === S.notesSig) return;
    S.notesSig = sig;
    var ul = $('notes');
    ul.textContent = '';
    notes.forEach(function (n) { ul.appendChild(el('li', 'note', n)); });
    ul.hidden = notes.length === 0;
  }

  // ---------------------------------------------------------------- processes
  //
  // One entry per process, built once and updated in place (like thread cards),
  // so an entry under the pointer or holding the focus is never replaced.

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

  function procList(snap) {
    return snap && Array.isArray(snap.processes)
      ? snap.processes.filter(function (p) { return p && p.pid != null; }) : [];
  }

  function findProc(snap, pid) {
    var ps = procList(snap);
    for (var i = 0; i < ps.length; i++) if (String(ps[i].pid) === String(pid)) return ps[i];
    return null;
  }

  function endedPids(snap) {
    var out = new Set();
    procList(snap).forEach(function (p) { if (p.state !== 'running') out.add(String(p.pid)); });
    return out;
  }

  function procLabel(p) {
    if (p.name) return String(p.name);
    return p.method === 'main' ? 'main' : String(p.method || 'process');
  }

  /* How a process stands: short text, a class, and what the monitor knows. */
  function procState(p) {
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

  function fullCmd(argv) { return argv.map(quoteArg).join(' '); }

  /* The command line with the interpreter's directory dropped and very long
   * arguments cut; the whole of it goes into the tooltip. */
  function shortCmd(argv) {
    return argv.map(function (a, i) {
      a = String(a);
      if (i === 0) return quoteArg(basename(a) || a);
      return quoteArg(a.length > 90 ? a.slice(0, 89) + '…' : a);
    }).join(' ');
  }

  function cpuText(cpu) {
    return typeof cpu === 'number' && isFinite(cpu) ? (cpu >= 10 ? cpu.toFixed(0) : cpu.toFixed(1)) + '%' : '';
  }

  /* Processes in tree order: each under its parent (ppid), children by start
   * time as listed; one whose parent is not listed goes under the main process. */
  function procTree(procs) {
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
    var rec = S.procEls.get(key);
    if (!rec) { rec = makeProcEl(key); S.procEls.set(key, rec); }
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

  function renderProcs(snap) {
    var procs = procList(snap);
    S.procs = new Map();
    procs.forEach(function (p) { S.procs.set(String(p.pid), p); });
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
    S.procEls.forEach(function (rec, key) {
      if (!want.has(key)) { rec.li.remove(); S.procEls.delete(key); }
    });
    // Move only what is out of place: a moved button would lose the focus.
    var ul = $('procs');
    keys.forEach(function (key, i) {
      var li = S.procEls.get(key).li;
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
    });
    markSelectedProc();
    var running = procs.filter(function (p) { return p.state === 'running'; }).length;
    setText($('procs-count'), multi ? procs.length + (running < procs.length ? ' · ' + running + ' running' : '') : '');
  }

  function markSelectedProc() {
    S.procEls.forEach(function (rec, key) {
      var on = key === S.pid;
      rec.btn.classList.toggle('selected', on);
      if (on) rec.btn.setAttribute('aria-current', 'true'); else rec.btn.removeAttribute('aria-current');
    });
  }

  function showProcNotice(text) {
    var n = $('procs-notice');
    setText(n, text);
    n.hidden = false;
    clearTimeout(S.noticeTimer);
    S.noticeTimer = setTimeout(hideProcNotice, 20000);
  }

  function hideProcNotice() {
    clearTimeout(S.noticeTimer);
    $('procs-notice').hidden = true;
  }

  // The view in the URL hash: "#pid=1234"; other parts of the hash are kept as they are.
  function hashParts() {
    return location.hash.replace(/^#/, '').split('&').filter(function (x) { return x !== ''; });
  }

  function pidFromHash() {
    var found = hashParts().filter(function (x) { return x.indexOf('pid=') === 0; })[0];
    if (!found) return 'all';
    var v = decodeURIComponent(found.slice(4));
    return v === '' ? 'all' : v;
  }

  function writeHash(pid) {
    var parts = hashParts().filter(function (x) { return x.indexOf('pid=') !== 0; });
    if (pid !== 'all') parts.unshift('pid=' + encodeURIComponent(pid));
    var h = parts.join('&');
    if (location.hash.replace(/^#/, '') === h) return;
    if (window.history && history.replaceState) {
      history.replaceState(null, '', location.pathname + location.search + (h ? '#' + h : ''));
    }
  }

  function viewUrl(path) { return path + '?pid=' + encodeURIComponent(S.pid); }

  /* Show one process ('1234') or all of them ('all'): a new snapshot and a new
   * event stream for that view; answers for the old view are dropped. */
  function selectProcess(pid, opts) {
    opts = opts || {};
    pid = String(pid);
    if (pid === S.pid && !opts.force) return;
    if (S.state === 'ended') {
      showProcNotice('the program has ended: only the final picture of ' +
        (S.pid === 'all' ? 'all processes' : 'process ' + S.pid) + ' is left');
      return;
    }
    S.pid = pid;
    S.gen++;
    writeHash(pid);
    if (!opts.keep) hideProcNotice();
    markSelectedProc();
    S.threadsPending = null;
    S.actBusy = false;
    if (S.replay) {
      tlFetch();
      loadActivity();
      return;
    }
    loadSnapshot();
    connect();
    if (!S.actMissing) loadActivity();
  }

  /* The process shown is not (or no longer) one of the program's: back to all. */
  function dropProcess(pid) {
    if (S.pid !== pid) return;
    var p = S.procs.get(pid);
    showProcNotice(p
      ? 'process ' + pid + ' (' + procLabel(p) + ') is no longer listed — showing all processes'
      : 'process ' + pid + ' is not listed (any more) — showing all processes');
    selectProcess('all', { keep: true });
  }

  /* The view the URL hash asks for, at load and when the hash is edited. */
  function followHash() {
    var pid = pidFromHash();
    if (pid !== 'all' && !/^[0-9]{1,9}$/.test(pid)) {
      writeHash('all');
      showProcNotice('"' + pid + '" is not a process id — showing all processes');
      pid = 'all';
    }
    return pid;
  }

  // ---------------------------------------------------------------- files sidebar

  function findFile(snap, id) {
    var fs = (snap && snap.files) || [];
    for (var i = 0; i < fs.length; i++) if (fs[i].id === id) return fs[i];
    return null;
  }

  function makeFileEl(f) {
    var li = el('li', 'file');
    li.dataset.id = f.id;
    li.tabIndex = 0;
    li.setAttribute('role', 'button');
    var top = el('div', 'f-top');
    top.appendChild(el('span', 'f-now'));
    top.appendChild(el('span', 'f-name'));
    top.appendChild(makeSpark('heat'));
    top.appendChild(el('span', 'f-num'));
    li.appendChild(top);
    li.appendChild(el('div', 'f-dir')).appendChild(el('span', 'ltr'));
    var bar = el('div', 'f-bar');
    bar.appendChild(el('div', 'f-fill'));
    li.appendChild(bar);
    return li;
  }

  function renderFiles(snap, nowMap) {
    var ul = $('files');
    var files = Array.isArray(snap.files) ? snap.files : [];
    var maxR = 0;
    files.forEach(function (f) { var r = fileRecent(snap, f).v; if (r > maxR) maxR = r; });
    var seen = new Set();
    files.forEach(function (f) {
      seen.add(f.id);
      var li = S.fileEls.get(f.id);
      if (!li) { li = makeFileEl(f); S.fileEls.set(f.id, li); }
      var name = f.name || basename(f.path) || f.id;
      setText(li.querySelector('.f-name'), name);
      setText(li.querySelector('.f-dir .ltr'), dirname(f.path));
      var rec = fileRecent(snap, f), tot = fileTotal(snap, f);
      setText(li.querySelector('.f-num'), rec.v ? compact(rec.v) : (tot ? '·' : ''));
      var fill = li.querySelector('.f-fill');
      var w = maxR && rec.v ? Math.max(3, 100 * rec.v / maxR) : 0;
      fill.style.width = w.toFixed(1) + '%';
      fill.classList.toggle('incl', rec.incl);
      li.classList.toggle('active', rec.v > 0);
      li.classList.toggle('selected', f.id === S.selected);
      fileSpark(li, f.id);
      var nowLines = nowMap.get(f.id);
      li.classList.toggle('has-now', !!nowLines);
      li.title = String(f.path || name) + '\nrecent: ' + full(rec.v) + ' ' +
        fileUnit(snap, rec.incl) + '\ntotal: ' + full(tot) +
        (nowLines ? '\nexecuting now: line ' + Array.from(nowLines.keys()).join(', ') : '');
    });
    S.fileEls.forEach(function (li, id) {
      if (!seen.has(id)) { li.remove(); S.fileEls.delete(id); }
    });
    // Reorder only when the order changed: moving nodes under the pointer flickers.
    var cur = ul.children, same = cur.length === files.length;
    for (var i = 0; same && i < files.length; i++) same = cur[i].dataset.id === files[i].id;
    if (!same) files.forEach(function (f) { ul.appendChild(S.fileEls.get(f.id)); });
    setText($('files-count'), files.length ? String(files.length) : '');
    $('files-empty').hidden = files.length > 0;
  }

  // ---------------------------------------------------------------- source view

  function getSource(id) {
    var p = S.sources.get(id);
    if (!p) {
      p = fetch('/api/source/' + encodeURIComponent(id), { credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .catch(function (err) {
          S.sources.delete(id);          // allow a later retry
          return { error: String(err && err.message || err) };
        });
      S.sources.set(id, p);
    }
    return p;
  }

  function buildCodeLine(code, text, toks) {
    if (!toks || !toks.length) { code.textContent = text; return; }
    toks.sort(function (a, b) { return a[1] - b[1]; });
    var pos = 0;
    for (var i = 0; i < toks.length; i++) {
      var t = toks[i], s = Math.max(+t[1] || 0, pos), e = Math.min(+t[2] || 0, text.length);
      if (e <= s) continue;
      if (s > pos) code.appendChild(document.createTextNode(text.slice(pos, s)));
      var kind = String(t[3]);
      if (TOKEN_KINDS[kind] === 1) code.appendChild(el('span', 't-' + kind, text.slice(s, e)));
      else code.appendChild(document.createTextNode(text.slice(s, e)));
      pos = e;
    }
    if (pos < text.length) code.appendChild(document.createTextNode(text.slice(pos)));
  }

  function buildView(id, src) {
    var root = el('div', 'code-view');
    var lines = Array.isArray(src.lines) ? src.lines : [];
    var byLine = new Map();
    (Array.isArray(src.tokens) ? src.tokens : []).forEach(function (t) {
      var a = byLine.get(t[0]);
      if (!a) { a = []; byLine.set(t[0], a); }
      a.push(t);
    });
    var rows = new Array(lines.length + 1);
    var chunk = null, chunks = [];
    var width = String(lines.length).length;
    for (var i = 1; i <= lines.length; i++) {
      if ((i - 1) % CHUNK === 0) {
        chunk = el('div', 'chunk');
        var n = Math.min(CHUNK, lines.length - i + 1);
        chunk.style.setProperty('--rows', String(n));
        chunk.dataset.chunk = String(chunks.length);
        chunks.push(chunk);
        root.appendChild(chunk);
      }
      var row = el('div', 'line');
      row.dataset.line = String(i);
      var gut = el('span', 'gut');
      gut.appendChild(el('span', 'ln', i));
      gut.appendChild(el('span', 'bars'));
      row.appendChild(gut);
      var code = el('span', 'code');
      buildCodeLine(code, String(lines[i - 1]), byLine.get(i));
      row.appendChild(code);
      chunk.appendChild(row);
      rows[i] = row;
    }
    if (!lines.length) root.appendChild(el('div', 'empty', 'this file is empty'));
    return {
      id: id, src: src, root: root, rows: rows, n: lines.length, lnWidth: Math.max(3, width),
      painted: new Map(),    // line -> signature of what is drawn
      chunks: chunks,        // content-visibility blocks of CHUNK rows
      visible: new Set(),    // indexes of chunks near the viewport
      dirty: new Set(),      // indexes of chunks whose rows are behind the data
      io: null,
      nowLines: new Map(),   // line -> thread names
      figures: null,
      scrollTop: 0, scrollLeft: 0
    };
  }

  function ensureBars(row) {
    var bars = row.firstChild.lastChild;
    if (!bars.firstChild) {
      var tr = el('span', 'track'); tr.appendChild(el('span', 'bar-recent'));
      var tt = el('span', 'track'); tt.appendChild(el('span', 'bar-total'));
      bars.appendChild(tr); bars.appendChild(tt);
      bars.appendChild(el('span', 'pct'));
    }
    return bars;
  }

  function percentText(p) {
    return p >= 9.95 ? p.toFixed(0) + '%' : p >= 0.1 ? p.toFixed(1) + '%' : '<0.1%';
  }

  /* The figure printed beside the bars: for sampled time the line's share of the
   * program's recent self samples (all files), for hits the recent count, for
   * lines mode the share of the recent windows in which the line ran. A line that
   * ran (lines mode) but has no samples says "ran". */
  function shareText(snap, v) {
    if (v.ranOnly) return 'ran';
    if (!v.r || v.ri) return '';
    var kind = heatKind(snap);
    if (kind === 'hits') return compact(v.r);
    if (kind === 'ran') return percentText(Math.min(100, 100 * v.r / (S.ranDen || v.r)));
    var all = S.recentAll || 0;
    if (!all) return '';
    return percentText(100 * v.r / all);
  }

  /* The windows of the recent window, for "ran %": the monitor counts them
   * (ran_windows.recent). In the combined view of several processes a child's
   * line may have run in more windows than the program's own: never over 100 %. */
  function ranWindows(snap) {
    var w = snap.ran_windows && +snap.ran_windows.recent;
    return w > 0 ? w : 1;
  }

  // Bar width in percent, in half-percent steps so that a small change of the
  // file's maximum does not repaint every row; a non-zero value stays visible.
  function pct(f) { return f > 0 ? Math.max(4, Math.min(100, Math.round(f * 200) / 2)) : 0; }

  function rowSig(snap, v) {
    if (!v) return '';
    return v.r + '/' + v.t + '/' + pct(v.fr) + '/' + pct(v.ft) + '/' + (v.ri ? 1 : 0) +
      (v.ti ? 1 : 0) + (v.ranNow ? 1 : 0) + (v.ranOnly ? 1 : 0) + '/' + shareText(snap, v);
  }

  function paintRow(view, line, v, snap) {
    var row = view.rows[line];
    if (!row) return;
    var bars = ensureBars(row);
    var br = bars.firstChild.firstChild, bt = bars.children[1].firstChild, pc = bars.lastChild;
    // Titles are written on hover (see describeRow): building them for thousands
    // of rows on every update is what makes big files slow. The row under the
    // pointer gets fresh ones below; others drop theirs, which would be stale.
    if (row !== S.hoverRow) {
      br.removeAttribute('title'); bt.removeAttribute('title'); row.firstChild.removeAttribute('title');
    }
    if (v) {
      br.style.width = pct(v.fr) + '%';
      bt.style.width = pct(v.ft) + '%';
      br.dataset.value = String(v.r);
      bt.dataset.value = String(v.t);
      br.classList.toggle('incl', v.ri);
      bt.classList.toggle('incl', v.ti);
      row.classList.toggle('hot', v.r > 0);
      row.classList.toggle('warm', v.r === 0 && v.t > 0);
      row.classList.toggle('incl-only', v.r > 0 ? v.ri : v.ti);
      row.classList.toggle('ran-now', v.ranNow);
      row.classList.toggle('ran-only', v.ranOnly);
      // Perceptual scale: sqrt keeps moderately hot lines visible next to the hottest.
      row.style.setProperty('--h', v.r ? (Math.round(Math.sqrt(v.fr) * 50) / 50).toString() : '0');
      setText(pc, shareText(snap, v));
    } else {
      br.style.width = '0%'; bt.style.width = '0%';
      br.dataset.value = '0'; bt.dataset.value = '0';
      setText(pc, '');
      row.classList.remove('hot', 'warm', 'incl-only', 'ran-now', 'ran-only');
      row.style.removeProperty('--h');
    }
    if (row === S.hoverRow) describeRow(view, row);
  }

  function describeRow(view, row) {
    var snap = S.snap;
    if (!snap || !view.figures) return;
    var line = +row.dataset.line;
    var v = view.figures.lines.get(line);
    var bars = row.firstChild.lastChild;
    if (!v || !bars.firstChild) {
      if (bars.firstChild) {
        bars.firstChild.firstChild.removeAttribute('title');
        bars.children[1].firstChild.removeAttribute('title');
      }
      row.firstChild.title = 'line ' + line + ': no data';
      return;
    }
    var win = snap.window ? 'last ' + snap.window + ' s' : 'recent';
    var kind = heatKind(snap);
    var rt, tt, share = v.ranOnly ? '' : shareText(snap, v), extra = '';
    if (kind === 'ran') {
      rt = win + ': ran in ' + full(v.r) + ' window' + (v.r === 1 ? '' : 's') +
        (share ? ' (' + share + ' of about ' + full(S.ranDen) + ')' : '');
      tt = 'total: ran in ' + full(v.t) + ' window' + (v.t === 1 ? '' : 's') + ' of ' +
        (1 / WINDOWS_PER_S) + ' s';
    } else {
      rt = win + ': ' + full(v.r) + ' ' + unitWord(snap, v.ri) + secondsHint(snap, v.ri ? 0 : v.r);
      tt = 'total: ' + full(v.t) + ' ' + unitWord(snap, v.ti) + secondsHint(snap, v.ti ? 0 : v.t);
      if (share && kind === 'time') extra += '\n' + share + " of the program's recent sampled time";
    }
    if (linesOn(snap)) {
      if (kind === 'time') {
        extra += '\nlines mode: ' + (v.ranR ? 'ran in ' + full(v.ranR) + ' of the windows of the ' + win
          : v.ranT ? 'not run in the ' + win : 'not seen running');
        if (v.ranOnly) extra += ' — too short for the sampler to catch';
      }
      if (v.last) {
        extra += '\n' + (v.ranNow ? 'ran just now: ' : '') + 'last ran ' +
          agoText((+snap.time || 0) * 1000 - v.last) + ' ago';
      }
    }
    bars.firstChild.firstChild.title = rt;
    bars.children[1].firstChild.title = tt;
    row.firstChild.title = 'line ' + line + '\n' + rt + '\n' + tt + extra;
  }

  function chunkOf(line) { return Math.floor((line - 1) / CHUNK); }

  /* Rows of chunks far from the viewport are not painted on each update; their
   * chunk is marked dirty and brought up to date when it scrolls into view. */
  function syncChunk(view, c) {
    view.dirty.delete(c);
    var snap = S.snap, figs = view.figures;
    if (!snap || !figs) return;
    var first = c * CHUNK + 1, last = Math.min(view.n, first + CHUNK - 1);
    for (var line = first; line <= last; line++) {
      var v = figs.lines.get(line) || null;
      var sig = rowSig(snap, v);
      if ((view.painted.get(line) || '') !== sig) {
        paintRow(view, line, v, snap);
        if (sig) view.painted.set(line, sig); else view.painted.delete(line);
      }
    }
  }

  function observeChunks(view) {
    if (!('IntersectionObserver' in window)) return;
    if (!view.io) {
      view.io = new IntersectionObserver(function (entries) {
        entries.forEach(function (e) {
          var c = +e.target.dataset.chunk;
          if (e.isIntersecting) {
            view.visible.add(c);
            if (view.dirty.has(c)) syncChunk(view, c);
          } else {
            view.visible.delete(c);
          }
        });
      }, { root: $('source'), rootMargin: '400px 0px' });
    }
    view.io.disconnect();
    view.visible.clear();
    view.chunks.forEach(function (ch) { view.io.observe(ch); });
  }

  function updateView(view, snap, nowMap) {
    var file = findFile(snap, view.id);
    var figs = file ? fileFigures(snap, file) : { lines: new Map(), maxR: 0, maxT: 0 };
    var recentKey = heatFields(snap)[0];
    S.recentAll = (snap.files || []).reduce(function (acc, f) {
      return acc + (+f[recentKey] || 0);
    }, 0);
    S.ranDen = heatKind(snap) === 'ran' ? ranWindows(snap) : 1;
    view.figures = figs;
    var painted = view.painted;
    var lazy = !!view.io;
    function sync(line, v) {
      var sig = rowSig(snap, v);
      if ((painted.get(line) || '') === sig) return;
      if (lazy && !view.visible.has(chunkOf(line))) { view.dirty.add(chunkOf(line)); return; }
      paintRow(view, line, v, snap);
      if (sig) painted.set(line, sig); else painted.delete(line);
    }
    figs.lines.forEach(function (v, line) { sync(line, v); });
    Array.from(painted.keys()).forEach(function (line) {
      if (!figs.lines.has(line)) sync(line, null);
    });

    // Lines executing right now.
    var nowLines = nowMap.get(view.id) || new Map();
    view.nowLines.forEach(function (who, line) {
      if (!nowLines.has(line) && view.rows[line]) {
        view.rows[line].classList.remove('now');
        view.rows[line].lastChild.removeAttribute('title');
      }
    });
    nowLines.forEach(function (who, line) {
      var row = view.rows[line];
      if (!row) return;
      row.classList.add('now');
      row.lastChild.title = 'executing now in: ' + who.join(', ');
    });
    view.nowLines = nowLines;
    // The row under the pointer: its title says how long ago the line last ran.
    if (S.hoverRow && view.rows[+S.hoverRow.dataset.line] === S.hoverRow) describeRow(view, S.hoverRow);

    if (file) {
      var rec = fileRecent(snap, file);
      var stats = $('src-stats');
      setText(stats, (snap.window ? snap.window + ' s: ' : 'recent: ') + compact(rec.v) +
        ' · total: ' + compact(fileTotal(snap, file)));
      stats.title = (snap.window ? 'last ' + snap.window + ' s: ' : 'recent: ') + full(rec.v) + ' ' +
        fileUnit(snap, rec.incl) + secondsHint(snap, rec.incl ? 0 : rec.v) +
        '\ntotal: ' + full(fileTotal(snap, file)) + '\n' + figs.lines.size + ' lines with data';
    }
    scheduleMinimap();
  }

  function mountView(view) {
    var box = $('source');
    box.textContent = '';
    $('source-panel').style.setProperty('--ln-width', view.lnWidth + 'ch');
    box.appendChild(view.root);
    box.scrollTop = view.scrollTop;
    box.scrollLeft = view.scrollLeft;
    onSourceScroll();
    observeChunks(view);
    if (!S.lineHeight && view.rows[1]) S.lineHeight = view.rows[1].offsetHeight || 0;
  }

  function showSourceMessage(text) {
    var box = $('source');
    box.textContent = '';
    box.appendChild(el('div', 'empty', text));
  }

  function selectFile(id, opts) {
    opts = opts || {};
    var box = $('source');
    if (S.selected && S.selected !== id) {
      var prev = S.views.get(S.selected);
      if (prev && prev.root.parentNode === box) {
        prev.scrollTop = box.scrollTop;
        prev.scrollLeft = box.scrollLeft;
      }
    }
    var changed = S.selected !== id;
    S.selected = id;
    S.fileEls.forEach(function (li, fid) { li.classList.toggle('selected', fid === id); });
    var f = findFile(S.snap, id);
    var path = f ? f.path : (opts.path || '');
    setText($('src-name'), f ? (f.name || basename(f.path)) : basename(path) || id);
    setText($('src-path').firstChild, dirname(path));
    $('src-path').title = String(path || '');
    if (!f) setText($('src-stats'), '');
    var view = S.views.get(id);
    if (view) {
      if (changed || view.root.parentNode !== box) mountView(view);
      if (S.snap) updateView(view, S.snap, nowByFile(S.snap));
      if (opts.line) scrollToLine(view, opts.line, true);
      return;
    }
    showSourceMessage('loading source…');
    getSource(id).then(function (src) {
      if (S.selected !== id) return;
      if (!src || src.error) {
        showSourceMessage('source not available (' + (src && src.error || 'unknown error') + ')');
        return;
      }
      var v = S.views.get(id);
      if (!v) { v = buildView(id, src); S.views.set(id, v); }
      mountView(v);
      if (S.snap) updateView(v, S.snap, nowByFile(S.snap));
      if (opts.line) scrollToLine(v, opts.line, true);
    });
  }

  function lineGeometry(view) {
    var row = view.rows[1];
    var lh = S.lineHeight || (row && row.offsetHeight) || 18;
    var pad = parseFloat(getComputedStyle(view.root).paddingTop) || 0;
    return { lh: lh, pad: pad };
  }

  function scrollToLine(view, line, flash) {
    var row = view.rows[line];
    if (!row) return;
    var box = $('source');
    var geo = lineGeometry(view);
    box.scrollTop = Math.max(0, geo.pad + (line - 1) * geo.lh - box.clientHeight / 2 + geo.lh / 2);
    box.scrollLeft = 0;
    if (flash) {
      row.classList.remove('flash');
      void row.offsetWidth;   // restart the animation
      row.classList.add('flash');
      setTimeout(function () { row.classList.remove('flash'); }, 1600);
    }
    scheduleMinimap();
  }

  function onSourceScroll() {
    var box = $('source');
    var view = S.selected && S.views.get(S.selected);
    if (view && view.root.parentNode === box && view.sx !== box.scrollLeft) {
      view.sx = box.scrollLeft;
      view.root.style.setProperty('--sx', view.sx + 'px');
    }
    scheduleMinimap();
  }

  // ---------------------------------------------------------------- minimap

  function scheduleMinimap() {
    if (S.mapPending) return;
    S.mapPending = true;
    requestAnimationFrame(function () { S.mapPending = false; drawMinimap(); });
  }

  function drawMinimap() {
    var cv = $('minimap');
    var dpr = window.devicePixelRatio || 1;
    var cssH = cv.clientHeight, cssW = cv.clientWidth;
    if (!cssH || !cssW) return;
    var W = Math.round(cssW * dpr), H = Math.round(cssH * dpr);
    if (cv.width !== W) cv.width = W;
    if (cv.height !== H) cv.height = H;
    var ctx = cv.getContext('2d');
    ctx.clearRect(0, 0, W, H);
    var view = S.selected && S.views.get(S.selected);
    if (!view || !view.n || view.root.parentNode !== $('source')) return;
    // Marks sit where the lines are in the scrollable area, like an overview ruler:
    // for a file that fits on screen they line up with the rows themselves.
    var box = $('source');
    var geo = lineGeometry(view);
    var scale = H / Math.max(box.scrollHeight, box.clientHeight, 1);
    var h = Math.max(2 * dpr, geo.lh * scale);
    function yOf(line) { return (geo.pad + (line - 1) * geo.lh) * scale; }
    // Reduce to one value per pixel row (a big file has several lines per pixel),
    // then draw each intensity level as one path: a few fill calls per frame.
    var LEVELS = 8;
    var hotPx = new Float32Array(H), inclPx = new Float32Array(H), totPx = new Float32Array(H);
    var ranPx = new Float32Array(H);
    var figs = view.figures;
    if (figs) {
      figs.lines.forEach(function (v, line) {
        var y0 = Math.max(0, Math.floor(yOf(line))), y1 = Math.min(H, Math.ceil(yOf(line) + h));
        var arr = v.ranOnly ? ranPx : v.r ? (v.ri ? inclPx : hotPx) : totPx;
        var f = v.ranOnly ? 1 : v.r ? v.fr : v.ft;
        for (var y = y0; y < y1; y++) if (f > arr[y]) arr[y] = f;
      });
    }
    function drawLevels(arr, x, w, color) {
      for (var lvl = 1; lvl <= LEVELS; lvl++) {
        var lo = (lvl - 1) / LEVELS, hi = lvl / LEVELS, any = false;
        ctx.beginPath();
        for (var y = 0; y < H; y++) {
          var f = arr[y];
          if (f > lo && (f <= hi || lvl === LEVELS)) { ctx.rect(x, y, w, 1); any = true; }
        }
        if (any) { ctx.fillStyle = color(Math.sqrt(hi)); ctx.fill(); }
      }
    }
    drawLevels(totPx, W * 0.4, W * 0.6, function (a) { return 'rgba(196,150,63,' + (0.15 + 0.35 * a).toFixed(3) + ')'; });
    drawLevels(ranPx, 0, W, function () { return 'rgba(110,168,255,0.45)'; });
    drawLevels(inclPx, 0, W, function (a) { return 'rgba(231,168,106,' + (0.2 + 0.35 * a).toFixed(3) + ')'; });
    drawLevels(hotPx, 0, W, function (a) { return 'rgba(255,90,54,' + (0.35 + 0.65 * a).toFixed(3) + ')'; });
    ctx.fillStyle = '#3ddc97';
    view.nowLines.forEach(function (who, line) {
      ctx.fillRect(0, yOf(line), W * 0.3, Math.max(3 * dpr, h));
    });
    if (box.scrollHeight > box.clientHeight) {
      var top = box.scrollTop / box.scrollHeight * H;
      var vh = Math.max(4 * dpr, box.clientHeight / box.scrollHeight * H);
      ctx.fillStyle = 'rgba(160,180,220,0.13)';
      ctx.fillRect(0, top, W, vh);
      ctx.strokeStyle = 'rgba(160,180,220,0.35)';
      ctx.lineWidth = dpr;
      ctx.strokeRect(dpr / 2, top + dpr / 2, W - dpr, vh - dpr);
    }
  }

  // ---------------------------------------------------------------- threads
  //
  // A card per thread, built once; each snapshot updates its parts in place
  // (frames are reused by position), so a frame under the pointer is not replaced
  // between mousedown and mouseup and clicks are never lost to a live update.

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

  function makeThreadCard() {
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

  /* `proc`: the thread's process (when listed); `combined`: label the card with it. */
  function fillThread(rec, t, snap, blocking, proc, combined) {
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

    threadSpark(rec, key);
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
    var open = S.expanded.has(key);
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

  /* While the pointer is over the panel it is not updated: stacks change length
   * and cards move at every snapshot, and a click must land on what was aimed at.
   * The latest snapshot is shown as soon as the pointer leaves. */
  function renderThreadsSoon(snap) {
    if (S.threadsHeld) { S.threadsPending = snap; return; }
    renderThreads(snap);
  }

  function holdThreads(hold) {
    S.threadsHeld = hold;
    $('threads-panel').classList.toggle('held', hold);
    if (!hold && S.threadsPending) {
      var snap = S.threadsPending;
      S.threadsPending = null;
      renderThreads(snap);
    }
  }

  function renderThreads(snap) {
    var box = $('threads');
    var threads = Array.isArray(snap.threads) ? snap.threads.slice() : [];
    var own = String(snap.pid);
    var blocking = new Set((snap.exit && Array.isArray(snap.exit.blocking) ? snap.exit.blocking : [])
      .map(function (id) { return own + ':' + id; }));
    var combined = isCombined(snap);
    // In the combined view, grouped by process in the panel's order (main first).
    var procOrder = new Map();
    procTree(procList(snap)).forEach(function (n, i) { procOrder.set(String(n.p.pid), i); });
    function group(t) {
      var i = procOrder.get(pidOf(snap, t));
      return i === undefined ? procOrder.size : i;
    }
    // Main first, then threads holding the exit, then the monitor's order; ended last.
    function rank(t) {
      if (t.main) return 0;
      if (blocking.has(threadKey(snap, t))) return 1;
      return t.alive === false || t.kind === 'ended' ? 3 : 2;
    }
    threads = threads.map(function (t, i) { return { t: t, i: i }; })
      .sort(function (a, b) {
        return group(a.t) - group(b.t) || rank(a.t) - rank(b.t) || a.i - b.i;
      })
      .map(function (x) { return x.t; });
    var seen = new Set(), keys = [], pids = new Set();
    threads.forEach(function (t, i) {
      var key = threadKey(snap, t);
      if (seen.has(key)) return;          // the same thread twice: show it once
      seen.add(key);
      keys.push(key);
      var rec = S.threadEls.get(key);
      if (!rec) { rec = makeThreadCard(); S.threadEls.set(key, rec); }
      var pid = pidOf(snap, t);
      fillThread(rec, t, snap, blocking.has(key), findProc(snap, pid), combined);
      rec.el.classList.toggle('group-start', combined && !pids.has(pid) && i > 0);
      pids.add(pid);
    });
    S.threadEls.forEach(function (rec, key) {
      if (!seen.has(key)) { rec.el.remove(); S.threadEls.delete(key); }
    });
    var cur = box.children, same = cur.length === keys.length;
    for (var i = 0; same && i < keys.length; i++) same = cur[i].dataset.key === keys[i];
    if (!same) keys.forEach(function (key) { box.appendChild(S.threadEls.get(key).el); });
    var nd = threads.filter(function (t) { return !t.daemon && !t.main && t.alive !== false; }).length;
    setText($('threads-count'), keys.length + (combined ? ' in ' + pids.size + ' processes' : '') +
      (nd ? ' · ' + nd + ' non-daemon' : '') +
      (blocking.size ? ' · ' + blocking.size + ' holding exit' : ''));
  }

  // ---------------------------------------------------------------- snapshots

  function applySnapshot(snap) {
    if (!snap || typeof snap !== 'object') return;
    var procs = procList(snap);
    if (S.pid !== 'all' && (snap.view === 'combined' || (procs.length && !findProc(snap, S.pid)))) {
      // The process shown dropped out of the list (the newest 100 ended ones stay):
      // the stream has fallen back to the combined view already.
      dropProcess(S.pid);                 // names it from the list it was last in
      if (procs.length) renderProcs(snap);
      return;
    }
    var newView = S.snapGen !== S.gen;
    S.snapGen = S.gen;
    S.snap = snap;
    S.lastSnapAt = Date.now();
    document.body.dataset.view = S.pid;
    var nowMap = nowByFile(snap);
    renderHeader(snap);
    renderNotes(snap);
    renderProcs(snap);
    renderFiles(snap, nowMap);
    if (newView) renderThreads(snap); else renderThreadsSoon(snap);
    updateBanner();
    var files = Array.isArray(snap.files) ? snap.files : [];
    if (files.length && (!S.selected || (newView && !findFile(snap, S.selected)))) {
      // First load, or a process that never ran the file shown: its hottest file.
      selectFile(files[0].id, {});
    } else if (S.selected) {
      var view = S.views.get(S.selected);
      if (view && view.root.parentNode === $('source')) updateView(view, snap, nowMap);
      var f = findFile(snap, S.selected);
      if (f) {
        setText($('src-name'), f.name || basename(f.path));
        setText($('src-path').firstChild, dirname(f.path));
        $('src-path').title = String(f.path || '');
      }
    }
    // A child that has ended says "stopped" in its own picture; only the program's
    // own monitor stopping ends the stream.
    var mine = snap.view !== 'process' || !procs.length || String(procs[0].pid) === String(snap.pid);
    if (S.replay) {
      document.body.dataset.state = String(snap.state || 'running');
      updateBanner();
    } else if (snap.state === 'stopped' && mine && S.state !== 'ended') endStream();
  }

  function parse(data) {
    try { return JSON.parse(data); } catch (e) { return null; }
  }

  function endStream() {
    clearTimeout(S.giveUpTimer);
    clearTimeout(S.retryTimer);
    if (S.es) { S.es.close(); S.es = null; }
    setState('ended');
  }

  function connect() {
    clearTimeout(S.retryTimer);
    clearTimeout(S.giveUpTimer);
    S.giveUpTimer = 0;
    if (S.es) S.es.close();
    // Same origin: the HttpOnly token cookie set by the page request goes along.
    var es = new EventSource(viewUrl('/api/events'));
    S.es = es;
    es.addEventListener('snapshot', function (ev) {
      if (S.es !== es) return;
      var snap = parse(ev.data);
      S.streamed = true;
      clearTimeout(S.giveUpTimer);
      S.giveUpTimer = 0;
      if (S.state !== 'live' && S.state !== 'ended') setState('live');
      applySnapshot(snap);
      beat();
    });
    es.addEventListener('end', function (ev) {
      if (S.es !== es) return;
      var snap = parse(ev.data);
      endStream();
      if (snap) applySnapshot(snap);
    });
    es.onerror = function () {
      if (S.es !== es || S.state === 'ended') return;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (HTTP error or wrong content type): check why, retry slowly.
        es.close();
        S.es = null;
        if (S.pid !== 'all') {
          // Perhaps only this process is unknown (404): then show all of them.
          var pid = S.pid;
          probe(function (status) {
            if ((status === 404 || status === 400) && S.pid === pid) { dropProcess(pid); return; }
            if (S.es || S.state === 'ended') return;
            setState('disconnected');
            S.retryTimer = setTimeout(connect, 5000);
          });
          return;
        }
        probe();
        setState('disconnected');
        S.retryTimer = setTimeout(connect, 5000);
        return;
      }
      if (S.state !== 'disconnected') setState('reconnecting');
      if (!S.giveUpTimer) {
        S.giveUpTimer = setTimeout(function () {
          S.giveUpTimer = 0;
          if (S.state === 'reconnecting' || S.state === 'connecting') setState('disconnected');
        }, GIVE_UP_AFTER);
      }
    };
  }

  function probe(then) {
    fetch(viewUrl('/api/snapshot'), { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      S.denied = r.status === 403;
      if (then) then(r.status);
      if (S.state === 'disconnected') updateBanner();
    }, function () {
      S.denied = false;
      if (then) then(0);
    });
  }

  /* One snapshot of the current view, at once (the stream may beat it to it). */
  function loadSnapshot() {
    var gen = S.gen, pid = S.pid;
    fetch(viewUrl('/api/snapshot'), { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 403) { S.denied = true; }
      if ((r.status === 404 || r.status === 400) && gen === S.gen) dropProcess(pid);
      return r.ok ? r.json() : null;
    }).then(function (snap) {
      // The stream may already have delivered a newer picture of this view.
      if (snap && gen === S.gen && S.snapGen !== gen) applySnapshot(snap);
    }).catch(function () { /* the event stream reports connection problems */ });
  }

  function beat() {
    var c = $('conn');
    c.classList.add('beat');
    clearTimeout(S.beatTimer);
    S.beatTimer = setTimeout(function () { c.classList.remove('beat'); }, 180);
  }

  function tick() {
    var stale = S.state === 'live' && S.lastSnapAt && Date.now() - S.lastSnapAt > STALL_AFTER;
    $('conn').classList.toggle('stale', !!stale);
    if (stale) setText($('conn-text'), 'live · no update for ' + Math.round((Date.now() - S.lastSnapAt) / 1000) + ' s');
    else if (S.state === 'live') setText($('conn-text'), 'live');
  }

  // ---------------------------------------------------------------- activity
  //
  // GET /api/activity: the heat of the program (and of each file) and CPU (of the
  // program and of each thread) per point of `interval` seconds. Live it is asked
  // for once a second while the tab is visible; a recording answers the whole run.
  // The strip under the header plots it; each file and thread gets a sparkline.

  var SVGNS = 'http://www.w3.org/2000/svg';
  var ACT_EVERY = 1000;       // ms between live activity requests
  var ACT_MIN_SPAN = 10;      // s: the live strip spans at least this much time
  var ACT_PLOT_H = 44;        // px: the strip's plot, then its time axis
  var ACT_AXIS_H = 14;
  var SPARK_W = 58, SPARK_H = 14, SPARK_WIDE_H = 16;
  var CPU_FLOOR = 5;          // %: a thread's sparkline scale never goes below this
  var HEAT_UNIT = { time: 'samples', hits: 'line runs', ran: 'lines ran' };
  var HEAT_MEANS = {
    time: 'sampled time: samples in which a line of the monitored files was running on a CPU',
    hits: 'executed lines (trace mode: exact counts)',
    ran: 'lines that ran (lines mode: each line once per 0.2 s window)'
  };

  function svgEl(tag, attrs, cls) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (cls) e.setAttribute('class', cls);
    return e;
  }

  function num(v) {
    if (v === null || v === undefined || v === '') return null;
    v = +v;
    return isFinite(v) ? v : null;
  }

  function seriesMax(values) {
    var m = 0;
    for (var i = 0; i < values.length; i++) if (values[i] !== null && values[i] > m) m = values[i];
    return m;
  }

  function lastValue(values) {
    for (var i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
    return null;
  }

  /* The answer checked and made uniform: every series as long as `times`, holes null. */
  function normActivity(d) {
    if (!d || typeof d !== 'object') return null;
    var times = (Array.isArray(d.times) ? d.times : []).map(Number).filter(isFinite);
    var n = times.length;
    function series(a) {
      a = Array.isArray(a) ? a : [];
      var out = new Array(n);
      for (var i = 0; i < n; i++) out[i] = num(a[i]);
      return out;
    }
    var act = {
      interval: +d.interval > 0 ? +d.interval : 1,
      heat: d.heat === 'hits' || d.heat === 'ran' ? d.heat : 'time',
      times: times, total: series(d.total), cpu: series(d.cpu),
      files: new Map(), threads: new Map()
    };
    (Array.isArray(d.files) ? d.files : []).forEach(function (f) {
      if (f && f.id != null) {
        act.files.set(String(f.id), { name: String(f.name || basename(f.path) || f.id), values: series(f.values) });
      }
    });
    (Array.isArray(d.threads) ? d.threads : []).forEach(function (t) {
      if (!t) return;
      var key = t.key != null ? String(t.key) : String(t.pid) + ':' + String(t.ident);
      act.threads.set(key, { name: String(t.name != null ? t.name : 'thread ' + t.ident), values: series(t.values) });
    });
    return act;
  }

  /* The time span the strip and the sparklines show: a recording from its first
   * snapshot to its last (what the slider spans, so that with snapshots at an even
   * pace the slider's thumb stays under the strip's marker); live at least
   * ACT_MIN_SPAN s ending at the latest point. */
  function actDomain(act) {
    var t = act.times, n = t.length;
    if (S.replay) {
      var rt = S.replay.times;
      var start = Math.min(n ? t[0] : Infinity, rt.length ? rt[0] : Infinity);
      var end = Math.max(n ? t[n - 1] : -Infinity, rt.length ? rt[rt.length - 1] : -Infinity);
      if (!isFinite(start) || !isFinite(end)) return [S.replay.base, S.replay.base + 1];
      return [start, end > start ? end : start + 1];
    }
    if (!n) return [0, ACT_MIN_SPAN];
    var t1 = t[n - 1];
    return [Math.min(t[0] - act.interval, t1 - ACT_MIN_SPAN), t1];
  }

  function secText(sec) {
    var a = Math.abs(sec);
    if (a < 60) return (Math.round(a * 10) / 10) + ' s';
    var m = Math.floor(a / 60), s = Math.round(a % 60);
    if (s === 60) { m++; s = 0; }
    if (m >= 60) return Math.floor(m / 60) + ' h' + (m % 60 ? ' ' + m % 60 + ' min' : '');
    return m + ' min' + (s ? ' ' + s + ' s' : '');
  }

  /* A position in a recording: "12.5 s", "1:02.5", "1:02:03". */
  function posText(sec) {
    sec = Math.max(0, sec || 0);
    if (sec < 60) return sec.toFixed(1) + ' s';
    var h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
    var ss = (s < 10 ? '0' : '') + s.toFixed(1);
    return h ? h + ':' + String(m).padStart(2, '0') + ':' + String(Math.floor(s)).padStart(2, '0') : m + ':' + ss;
  }

  function clockText(t) {
    var d = new Date(t * 1000);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map(function (x) {
      return String(x).padStart(2, '0');
    }).join(':');
  }

  function cpuPct(v) {
    return v === null ? '–' : (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + '%';
  }

  function heatText(act, v) {
    return v === null ? '–' : compact(v) + ' ' + HEAT_UNIT[act.heat];
  }

  /* SVG path of a series: lines between neighbours, broken where a value is null. */
  function linePath(xs, ys, values) {
    var d = '', run = 0;
    for (var i = 0; i < values.length; i++) {
      if (values[i] === null) {
        if (run === 1) d += 'h1.5';
        run = 0;
        continue;
      }
      d += (run ? 'L' : 'M') + xs[i].toFixed(1) + ' ' + ys[i].toFixed(1);
      run++;
    }
    if (run === 1) d += 'h1.5';
    return d;
  }

  /* The area under a series, closed at `base`, one shape per run without nulls. */
  function areaPath(xs, ys, values, base) {
    var d = '', start = -1, b = base.toFixed(1);
    function close(end) {
      if (start < 0) return;
      var x0 = xs[start], x1 = xs[end];
      if (end === start) { x0 -= 0.75; x1 += 0.75; }
      d += 'M' + x0.toFixed(1) + ' ' + b;
      if (end === start) d += 'L' + x0.toFixed(1) + ' ' + ys[start].toFixed(1) + 'L' + x1.toFixed(1) + ' ' + ys[start].toFixed(1);
      else for (var j = start; j <= end; j++) d += 'L' + xs[j].toFixed(1) + ' ' + ys[j].toFixed(1);
      d += 'L' + x1.toFixed(1) + ' ' + b + 'Z';
      start = -1;
    }
    for (var i = 0; i < values.length; i++) {
      if (values[i] === null) close(i - 1);
      else if (start < 0) start = i;
    }
    close(values.length - 1);
    return d;
  }

  /* Time ticks: a round step that leaves about 110 px per label. */
  function tickStep(span, width) {
    var steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
    var most = Math.max(2, Math.floor(width / 110));
    for (var i = 0; i < steps.length; i++) if (span / steps[i] <= most) return steps[i];
    return steps[steps.length - 1];
  }

  function indexNear(times, t) {
    // the index of the point nearest to t (times ascending)
    var lo = 0, hi = times.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (times[mid] < t) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(times[lo - 1] - t) <= Math.abs(times[lo] - t)) lo--;
    return lo;
  }

  function lastAtOrBefore(times, t) {
    var lo = 0, hi = times.length - 1, best = 0;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (times[mid] <= t) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  function pollActivity() {
    if (S.replay || S.actMissing || S.actBusy) return;
    if (document.visibilityState === 'hidden') return;
    if (S.state !== 'live') return;      // not while the stream is down, nor once it ended
    // One process shown: only while it runs. An ended one's figures no longer
    // change, and once it drops out of the list the monitor answers 404.
    if (S.pid !== 'all') {
      var p = S.procs.get(S.pid);
      if (!p || p.state !== 'running') return;
    }
    loadActivity();
  }

  /* One /api/activity for the process shown; answers for another view are dropped. */
  function loadActivity() {
    var gen = S.gen, seq = ++S.actSeq, all = S.pid === 'all';
    S.actBusy = true;
    fetch(viewUrl('/api/activity'), { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 404 && all) {
        // A monitor without activity data: no strip, and no more asking.
        S.actMissing = true;
        $('activity').hidden = true;
      }
      return r.ok ? r.json() : null;
    }).then(function (data) {
      if (seq === S.actSeq) S.actBusy = false;
      if (gen !== S.gen || seq !== S.actSeq) return;
      var act = normActivity(data);
      if (act) setActivity(act);
    }).catch(function () {
      if (seq === S.actSeq) S.actBusy = false;
    });
  }

  function setActivity(act) {
    S.act = act;
    S.actGen++;
    drawStrip();
    S.fileEls.forEach(function (li, id) { fileSpark(li, id); });
    S.threadEls.forEach(function (rec, key) { threadSpark(rec, key); });
  }

  // ---- the strip

  function drawStrip() {
    var box = $('act-plot'), strip = $('activity');
    var act = S.act;
    var W = Math.floor(box.clientWidth);
    if (!act || W < 20) return;
    var times = act.times, n = times.length;
    var PH = ACT_PLOT_H, H = PH + ACT_AXIS_H, top = 3;
    strip.dataset.points = String(n);
    strip.dataset.heat = act.heat;
    strip.dataset.max = String(seriesMax(act.total));
    strip.dataset.cpuMax = String(seriesMax(act.cpu));
    if (n) strip.dataset.end = String(times[n - 1]); else delete strip.dataset.end;
    $('act-empty').hidden = n > 0;
    setText($('act-span'), S.replay ? 'whole run' : n ? 'last ' + secText(n * act.interval) : '');
    $('act-key-heat').title = 'heat per ' + secText(act.interval) + ', all files together: ' + HEAT_MEANS[act.heat];

    var svg = S.actSvg;
    if (!svg) {
      svg = S.actSvg = svgEl('svg', { 'aria-hidden': 'true' }, 'act-svg');
      var defs = svg.appendChild(svgEl('defs'));
      var g = defs.appendChild(svgEl('linearGradient', { id: 'act-heat-fill', x1: 0, y1: 0, x2: 0, y2: 1 }));
      g.appendChild(svgEl('stop', { offset: '0', 'stop-color': '#ff5a36', 'stop-opacity': '0.55' }));
      g.appendChild(svgEl('stop', { offset: '1', 'stop-color': '#ffa03c', 'stop-opacity': '0.06' }));
      S.actLayer = svg.appendChild(svgEl('g'));
      S.actMarker = svg.appendChild(svgEl('g', null, 'act-marker'));
      S.actMarker.appendChild(svgEl('line', { x1: 0, x2: 0, y1: 0, y2: PH + 2 }));
      S.actMarker.appendChild(svgEl('path', { d: 'M-4 0h8l-4 5z' }));
      S.actGuide = svg.appendChild(svgEl('g', null, 'act-guide'));
      S.actGuide.appendChild(svgEl('line', { x1: 0, x2: 0, y1: top, y2: PH }));
      S.actGuide.appendChild(svgEl('circle', { cx: 0, cy: 0, r: 2.5 }, 'act-dot-heat'));
      S.actGuide.appendChild(svgEl('circle', { cx: 0, cy: 0, r: 2.5 }, 'act-dot-cpu'));
      S.actGuide.style.display = 'none';
      box.insertBefore(svg, box.firstChild);
    }
    svg.setAttribute('width', String(W));
    svg.setAttribute('height', String(H));
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var layer = S.actLayer;
    layer.textContent = '';

    var dom = actDomain(act), t0 = dom[0], t1 = dom[1], span = Math.max(1e-6, t1 - t0);
    // A recording's strip leaves the half width of the slider's thumb at each end,
    // as the slider does.
    var pad = S.replay ? 8 : 1, L = pad, R = W - pad;
    function xOf(t) { return L + (t - t0) / span * (R - L); }
    var hmax = seriesMax(act.total), cmaxData = seriesMax(act.cpu);
    var cmax = Math.max(100, Math.ceil(cmaxData / 100) * 100);
    var xs = times.map(xOf);
    var yh = act.total.map(function (v) { return PH - (v === null || !hmax ? 0 : v / hmax * (PH - top)); });
    var yc = act.cpu.map(function (v) { return PH - (v === null ? 0 : Math.min(v, cmax) / cmax * (PH - top)); });
    S.actGeo = { xOf: xOf, t0: t0, t1: t1, L: L, R: R, W: W, PH: PH, xs: xs, yh: yh, yc: yc };

    layer.appendChild(svgEl('rect', { x: 0, y: 0, width: W, height: PH, rx: 3 }, 'act-bg'));
    // CPU gridlines: every 100 % (one core) below the top of the scale.
    for (var c = 100; c < cmax; c += 100) {
      var gy = (PH - c / cmax * (PH - top)).toFixed(1);
      layer.appendChild(svgEl('line', { x1: L, x2: R, y1: gy, y2: gy }, 'act-grid'));
    }
    // Time ticks and their labels.
    var step = tickStep(span, W);
    var ticks = [];
    if (S.replay) {
      // Round positions in the run (from its start), those the strip shows.
      var k = Math.ceil((t0 - S.replay.base) / step - 1e-9);
      for (; S.replay.base + k * step <= t1 + 1e-9; k++) ticks.push(S.replay.base + k * step);
    } else {
      for (var j = 0; t1 - j * step >= t0 - 1e-9; j++) ticks.unshift(t1 - j * step);
    }
    ticks.forEach(function (t) {
      var x = xOf(t);
      layer.appendChild(svgEl('line', { x1: x.toFixed(1), x2: x.toFixed(1), y1: PH, y2: PH + 3 }, 'act-tick'));
      var rel = S.replay ? t - S.replay.base : t - t1;
      var label = S.replay ? secText(rel) : Math.abs(rel) < 1e-6 ? 'now' : '−' + secText(rel);
      var anchor = x < 24 ? 'start' : x > W - 24 ? 'end' : 'middle';
      var tx = svgEl('text', { x: x.toFixed(1), y: H - 2, 'text-anchor': anchor }, 'act-label');
      tx.textContent = label;
      layer.appendChild(tx);
    });
    if (n) {
      layer.appendChild(svgEl('path', { d: areaPath(xs, yh, act.total, PH), fill: 'url(#act-heat-fill)' }, 'act-heat-area'));
      layer.appendChild(svgEl('path', { d: linePath(xs, yh, act.total) }, 'act-heat-line'));
      layer.appendChild(svgEl('path', { d: linePath(xs, yc, act.cpu) }, 'act-cpu-line'));
    }
    // The scales, in the legend: what the top of the plot stands for.
    setText($('act-heat-top'), hmax ? '0–' + compact(hmax) + ' ' + HEAT_UNIT[act.heat] : 'none yet');
    setText($('act-cpu-top'), '0–' + cmax + '%');
    placeMarker();
    // Under the pointer: the point now there (live, the points move left).
    if (S.actHoverX !== null) S.actHover = pointAtX(S.actHoverX);
    readout(S.actHover);
    if (S.actHover >= 0) showTip(S.actHover); else hideTip();
  }

  /* The values beside the strip: at the point under the pointer, else the latest
   * (live) or the position of the recording. */
  function readout(i) {
    var act = S.act;
    if (!act) return;
    var n = act.times.length;
    if (i < 0) i = S.replay ? replayPoint() : n - 1;
    var h = i >= 0 && i < n ? act.total[i] : null, c = i >= 0 && i < n ? act.cpu[i] : null;
    setText($('act-heat'), heatText(act, h));
    setText($('act-cpu'), cpuPct(c));
  }

  /* The activity point of the recording's current position. */
  function replayPoint() {
    if (!S.replay || !S.act || !S.act.times.length) return -1;
    var t = S.replay.times[S.tl.want] || S.replay.base;
    return indexNear(S.act.times, t);
  }

  function placeMarker() {
    var m = S.actMarker, geo = S.actGeo;
    if (!m) return;
    if (!S.replay || !geo || !S.replay.times.length) { m.style.display = 'none'; return; }
    var x = geo.xOf(S.replay.times[S.tl.want] || S.replay.base);
    x = Math.max(geo.L, Math.min(geo.R, x));
    m.setAttribute('transform', 'translate(' + x.toFixed(1) + ' 0)');
    m.style.display = '';
  }

  function pointAtX(clientX) {
    var geo = S.actGeo, act = S.act;
    if (!geo || !act || !act.times.length) return -1;
    var r = S.actSvg.getBoundingClientRect();
    var t = geo.t0 + (clientX - r.left - geo.L) / (geo.R - geo.L) * (geo.t1 - geo.t0);
    var i = indexNear(act.times, t);
    // Live, the left of the strip may be before the first point.
    return Math.abs(geo.xs[i] - (clientX - r.left)) <= Math.max(12, (geo.R - geo.L) / act.times.length) ? i : -1;
  }

  function showTip(i) {
    var act = S.act, geo = S.actGeo, tip = $('act-tip');
    if (!act || !geo || i < 0 || i >= act.times.length) { hideTip(); return; }
    var t = act.times[i];
    tip.textContent = '';
    var head = tip.appendChild(el('div', 'tip-head'));
    head.appendChild(el('b', '', S.replay ? posText(t - S.replay.base) : i === act.times.length - 1 ? 'now' : '−' + secText(act.times[act.times.length - 1] - t)));
    head.appendChild(el('span', 'tip-clock', clockText(t) + ' · ' + secText(act.interval) + ' ending here'));
    var rows = tip.appendChild(el('div', 'tip-rows'));
    var r1 = rows.appendChild(el('div', 'tip-row'));
    r1.appendChild(el('span', 'act-swatch sw-heat'));
    r1.appendChild(el('span', '', 'heat ' + heatText(act, act.total[i])));
    var r2 = rows.appendChild(el('div', 'tip-row'));
    r2.appendChild(el('span', 'act-swatch sw-cpu'));
    r2.appendChild(el('span', '', 'CPU ' + cpuPct(act.cpu[i])));
    var files = [];
    act.files.forEach(function (f) { if (f.values[i]) files.push(f); });
    files.sort(function (a, b) { return b.values[i] - a.values[i]; });
    files.slice(0, 3).forEach(function (f) {
      var r = rows.appendChild(el('div', 'tip-row tip-file'));
      r.appendChild(el('span', 'tip-name', f.name));
      r.appendChild(el('span', 'tip-num', compact(f.values[i])));
    });
    if (S.replay) tip.appendChild(el('div', 'tip-hint', 'click to go to this moment'));
    tip.hidden = false;
    var x = geo.xs[i];
    var w = tip.offsetWidth, boxW = $('act-plot').clientWidth;
    tip.style.left = Math.max(0, Math.min(boxW - w, x + 12)) + 'px';
    S.actGuide.setAttribute('transform', 'translate(' + x.toFixed(1) + ' 0)');
    var dh = S.actGuide.children[1], dc = S.actGuide.children[2];
    dh.setAttribute('cy', geo.yh[i].toFixed(1));
    dh.style.display = act.total[i] === null ? 'none' : '';
    dc.setAttribute('cy', geo.yc[i].toFixed(1));
    dc.style.display = act.cpu[i] === null ? 'none' : '';
    S.actGuide.style.display = '';
  }

  function hideTip() {
    $('act-tip').hidden = true;
    if (S.actGuide) S.actGuide.style.display = 'none';
  }

  // ---- sparklines

  /* A sparkline: a file's heat at a fixed size, or a thread's CPU across its card
   * (`wide`: stretched to the width CSS gives it; its strokes do not scale). */
  function makeSpark(kind, wide) {
    var w = wide ? 100 : SPARK_W, h = wide ? SPARK_WIDE_H : SPARK_H;
    var attrs = { viewBox: '0 0 ' + w + ' ' + h };
    if (wide) attrs.preserveAspectRatio = 'none';
    else { attrs.width = w; attrs.height = h; }
    var s = svgEl('svg', attrs, 'spark spark-' + kind + (wide ? ' spark-wide' : ''));
    s.spW = w;
    s.spH = h;
    s.appendChild(svgEl('line', { x1: 0, x2: w, y1: h - 0.5, y2: h - 0.5 }, 'sp-base'));
    s.appendChild(svgEl('path', { d: '' }, 'sp-area'));
    s.appendChild(svgEl('path', { d: '' }, 'sp-line'));
    s.appendChild(svgEl('line', { x1: 0, x2: 0, y1: 0, y2: h }, 'sp-mark'));
    s.appendChild(svgEl('title'));
    s.dataset.points = '0';
    s.dataset.max = '0';
    return s;
  }

  /* Draw `values` (null: no data there) scaled to their own maximum (CPU: at least
   * CPU_FLOOR %, so an idle thread's noise stays flat). */
  function drawSpark(s, values, kind, what) {
    var act = S.act;
    values = values || [];
    var n = values.length, max = seriesMax(values), last = lastValue(values);
    s.dataset.points = String(n);
    s.dataset.max = String(max);
    if (last === null) delete s.dataset.last; else s.dataset.last = String(last);
    var empty = !n || max <= 0;
    s.classList.toggle('spark-empty', empty);
    var area = s.children[1], line = s.children[2];
    var title = s.lastChild;
    var span = act ? (S.replay ? 'the whole recording' : 'the last ' + secText(n * act.interval)) : '';
    if (!act || !n) {
      area.setAttribute('d', '');
      line.setAttribute('d', '');
      title.textContent = what + ': no activity data' + (act ? ' (not among the most active)' : ' yet');
      placeSparkMark(s);
      return;
    }
    var dom = sparkDomain(act), t0 = dom[0], spanT = Math.max(1e-6, dom[1] - t0);
    var W = s.spW, top = 1.5, base = s.spH - 0.5;
    var scale = kind === 'cpu' ? Math.max(max, CPU_FLOOR) : max || 1;
    var xs = new Array(n), ys = new Array(n);
    for (var i = 0; i < n; i++) {
      xs[i] = (act.times[i] - t0) / spanT * W;
      ys[i] = base - (values[i] === null ? 0 : values[i] / scale * (base - top));
    }
    area.setAttribute('d', empty ? '' : areaPath(xs, ys, values, base));
    line.setAttribute('d', linePath(xs, ys, values));
    title.textContent = kind === 'cpu'
      ? what + ' — CPU over ' + span + ': max ' + cpuPct(max) + (S.replay ? '' : ', now ' + cpuPct(last))
      : what + ' — heat over ' + span + ' (per ' + secText(act.interval) + '): max ' + heatText(act, max) +
        (S.replay ? '' : ', now ' + heatText(act, last));
    placeSparkMark(s);
  }

  /* Sparklines span the data there is (the strip may leave room on its left). */
  function sparkDomain(act) {
    if (S.replay || !act.times.length) return actDomain(act);
    var t = act.times;
    return [t[0] - act.interval, t[t.length - 1]];
  }

  function placeSparkMark(s) {
    var m = s.children[3];
    if (!S.replay || !S.act || !S.replay.times.length) { m.style.display = 'none'; return; }
    var dom = sparkDomain(S.act);
    var x = (S.replay.times[S.tl.want] - dom[0]) / Math.max(1e-6, dom[1] - dom[0]) * s.spW;
    x = Math.max(0.5, Math.min(s.spW - 0.5, x));
    m.setAttribute('x1', x.toFixed(1));
    m.setAttribute('x2', x.toFixed(1));
    m.style.display = '';
  }

  function fileSpark(li, id) {
    var s = li.querySelector('.spark');
    if (!s || s.actGen === S.actGen) return;
    s.actGen = S.actGen;
    var f = S.act && S.act.files.get(id);
    var name = li.querySelector('.f-name').textContent || id;
    drawSpark(s, f ? f.values : null, 'heat', name);
  }

  function threadSpark(rec, key) {
    var s = rec.spark;
    if (!s || s.actGen === S.actGen) return;
    s.actGen = S.actGen;
    var t = S.act && S.act.threads.get(key);
    drawSpark(s, t ? t.values : null, 'cpu', 'thread ' + (rec.el.querySelector('.t-name').textContent || key));
  }

  // ---------------------------------------------------------------- replay
  //
  // `stethoscope view FILE` serves a recording: GET /api/recording describes it,
  // /api/snapshot?at=I is its I-th snapshot, /api/activity covers the whole run.
  // No event stream: a timeline picks the snapshot shown.

  function startReplay(rec) {
    var times = (Array.isArray(rec.times) ? rec.times : []).map(Number);
    var count = Math.min(Math.max(0, Math.floor(+rec.count || 0)), times.length || +rec.count || 0);
    var base = +rec.started;
    if (!isFinite(base) || !times.length || base > times[0]) base = times.length ? times[0] : 0;
    S.replay = { rec: rec, times: times, count: count, base: base, truncated: !!rec.truncated };
    document.body.dataset.replay = '1';
    setState('recording');
    var tl = $('timeline');
    tl.hidden = false;
    var range = $('tl-range');
    range.max = String(Math.max(0, count - 1));
    range.value = '0';
    range.disabled = count < 2;
    $('tl-play').disabled = count < 2;
    $('tl-trunc').hidden = !S.replay.truncated;
    $('tl-trunc').title = 'the recording was cut off: the program was killed (or crashed) before ' +
      'stethoscope could finish the file; it ends with the last snapshot written';
    var file = String(rec.file || '');
    setText($('tl-file'), file);
    var h = rec.header || {};
    var argv = Array.isArray(h.argv) ? h.argv.map(String).join(' ') : '';
    $('tl-file').title = 'recording ' + file + (argv ? '\nof: ' + argv : '') +
      (rec.started ? '\nstarted ' + new Date(rec.started * 1000).toLocaleString() : '') +
      '\n' + count + ' snapshots' + (S.replay.truncated ? ' (truncated)' : '');
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

  function tlLast() { return S.replay ? Math.max(0, S.replay.count - 1) : 0; }

  /* Show position i: slider, label and markers at once; the snapshot as it comes. */
  function tlGo(i, debounce) {
    if (!S.replay || !S.replay.count) return;
    i = Math.max(0, Math.min(tlLast(), Math.round(+i || 0)));
    S.tl.want = i;
    var range = $('tl-range');
    if (+range.value !== i) range.value = String(i);
    var rt = S.replay.times;
    var last = rt.length ? rt[rt.length - 1] : S.replay.base;
    setText($('tl-pos'), posText((rt[i] != null ? rt[i] : S.replay.base) - S.replay.base) + ' / ' +
      posText(last - S.replay.base));
    $('tl-pos').title = 'snapshot ' + (i + 1) + ' of ' + S.replay.count +
      (rt[i] != null ? ', recorded at ' + clockText(rt[i]) : '');
    placeMarker();
    S.fileEls.forEach(function (li) { var s = li.querySelector('.spark'); if (s) placeSparkMark(s); });
    S.threadEls.forEach(function (rec) { if (rec.spark) placeSparkMark(rec.spark); });
    if (S.act && S.actHover < 0) readout(-1);
    clearTimeout(S.tl.debounce);
    if (debounce) S.tl.debounce = setTimeout(tlFetch, 70);
    else tlFetch();
  }

  /* One snapshot request at a time; when it comes back, the latest position asked
   * for is fetched next. Answers for another view, or older than the picture
   * shown, are dropped. */
  function tlFetch() {
    if (!S.replay || S.tl.busy) return;
    var i = S.tl.want, gen = S.gen, pid = S.pid, seq = ++S.tl.seq;
    S.tl.busy = true;
    function done() {
      var last = S.tl.seq === seq;     // no later request was started meanwhile
      if (last) S.tl.busy = false;
      return last;
    }
    fetch('/api/snapshot?at=' + i + '&pid=' + encodeURIComponent(pid),
      { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if ((r.status === 404 || r.status === 400) && pid !== 'all' && gen === S.gen) {
        done();
        dropProcess(pid);       // not a process of the program at this moment
        return null;
      }
      return r.ok ? r.json() : null;
    }).then(function (snap) {
      var last = done();
      if (snap && gen === S.gen && seq > S.tl.applied) {
        S.tl.applied = seq;
        S.tl.shown = i;
        applySnapshot(snap);
        $('timeline').dataset.index = String(i);
      }
      if (last && (S.tl.want !== i || gen !== S.gen)) tlFetch();
    }).catch(function () {
      if (done() && S.tl.want !== i) tlFetch();
    });
  }

  function tlPlay() {
    if (!S.replay || S.replay.count < 2) return;
    if (S.tl.want >= tlLast()) tlGo(0);
    S.tl.playing = true;
    tlAnchor();
    clearInterval(S.tl.timer);
    S.tl.timer = setInterval(tlTick, 50);
    tlButton();
  }

  function tlPause() {
    S.tl.playing = false;
    clearInterval(S.tl.timer);
    S.tl.timer = 0;
    tlButton();
  }

  function tlAnchor() {
    S.tl.anchorIdx = S.tl.want;
    S.tl.anchorWall = performance.now();
  }

  function tlButton() {
    var b = $('tl-play');
    setText(b, S.tl.playing ? '❚❚' : '▶');
    b.setAttribute('aria-label', S.tl.playing ? 'pause' : 'play');
    b.title = (S.tl.playing ? 'pause' : 'play the recording') + ' (space)';
    b.classList.toggle('playing', S.tl.playing);
    $('timeline').dataset.playing = S.tl.playing ? '1' : '0';
  }

  /* Playing: the position follows the recorded times, sped up; snapshots the
   * page cannot fetch in time are skipped. */
  function tlTick() {
    if (!S.tl.playing || !S.replay) return;
    var rt = S.replay.times;
    var speed = +$('tl-speed').value || 1;
    var t = rt[S.tl.anchorIdx] + (performance.now() - S.tl.anchorWall) / 1000 * speed;
    var i = Math.max(S.tl.anchorIdx, lastAtOrBefore(rt, t));
    if (rt.length < S.replay.count) i = Math.min(tlLast(), S.tl.anchorIdx + Math.floor((performance.now() - S.tl.anchorWall) / 250 * speed));
    if (i !== S.tl.want) tlGo(i);
    if (i >= tlLast()) tlPause();
  }

  // ---------------------------------------------------------------- events

  function onFrameActivate(target) {
    var fr = target.closest('.frame.mon');
    if (!fr) return false;
    var line = parseInt(fr.dataset.line, 10);
    selectFile(fr.dataset.file, { line: line, path: fr.dataset.path });
    return true;
  }

  function wire() {
    $('mode-pick').addEventListener('change', function (ev) { switchMode(ev.target.value); });
    $('mode-msg-close').addEventListener('click', hideModeMsg);
    $('files').addEventListener('click', function (ev) {
      var li = ev.target.closest('.file');
      if (li) selectFile(li.dataset.id, {});
    });
    $('files').addEventListener('keydown', function (ev) {
      if (ev.key !== 'Enter' && ev.key !== ' ') return;
      var li = ev.target.closest('.file');
      if (li) { ev.preventDefault(); selectFile(li.dataset.id, {}); }
    });
    $('threads').addEventListener('click', function (ev) {
      var more = ev.target.closest('.more');
      if (more) {
        var key = more.dataset.key;
        if (S.expanded.has(key)) S.expanded.delete(key); else S.expanded.add(key);
        if (S.snap) renderThreads(S.threadsPending || S.snap);
        S.threadsPending = null;
        return;
      }
      onFrameActivate(ev.target);
    });
    $('threads').addEventListener('mouseenter', function () { holdThreads(true); });
    $('threads').addEventListener('mouseleave', function () { holdThreads(false); });
    $('threads').addEventListener('keydown', function (ev) {
      if ((ev.key === 'Enter' || ev.key === ' ') && onFrameActivate(ev.target)) ev.preventDefault();
    });
    $('procs').addEventListener('click', function (ev) {
      var b = ev.target.closest('.proc');
      if (b) selectProcess(b.dataset.pid);
    });
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
    window.addEventListener('hashchange', function () {
      var pid = followHash();
      if (pid !== S.pid) selectProcess(pid);
    });
    wireActivity();
    $('source').addEventListener('scroll', onSourceScroll, { passive: true });
    $('source').addEventListener('mouseover', function (ev) {
      var gut = ev.target.closest && ev.target.closest('.gut');
      var view = S.selected && S.views.get(S.selected);
      S.hoverRow = gut ? gut.parentNode : null;
      if (gut && view) describeRow(view, gut.parentNode);
    });
    window.addEventListener('resize', scheduleMinimap);
    $('minimap').addEventListener('click', function (ev) {
      var view = S.selected && S.views.get(S.selected);
      if (!view || !view.n) return;
      var r = ev.currentTarget.getBoundingClientRect();
      var box = $('source'), geo = lineGeometry(view);
      var y = (ev.clientY - r.top) / r.height * Math.max(box.scrollHeight, box.clientHeight);
      var line = Math.min(view.n, Math.max(1, Math.floor((y - geo.pad) / geo.lh) + 1));
      scrollToLine(view, line, false);
    });
    $('btn-hot').addEventListener('click', function () {
      var view = S.selected && S.views.get(S.selected);
      if (!view || !view.figures) return;
      // Hottest by recent self heat; if nothing ran recently, by total.
      var best = 0, bestV = -1;
      view.figures.lines.forEach(function (v, line) {
        var score = v.r && !v.ri ? 2 + v.fr : (v.t && !v.ti ? 1 + v.ft : v.fr * 0.5);
        if (score > bestV) { bestV = score; best = line; }
      });
      if (best) scrollToLine(view, best, true);
    });
    $('btn-now').addEventListener('click', function () {
      if (!S.snap) return;
      var nowMap = nowByFile(S.snap);
      var here = S.selected && nowMap.get(S.selected);
      if (here && here.size) {
        var lines = Array.from(here.keys()).sort(function (a, b) { return a - b; });
        var line = lines[S.nowCycle++ % lines.length];
        var view = S.views.get(S.selected);
        if (view) scrollToLine(view, line, true);
        return;
      }
      var first = liveNow(S.snap)[0];
      if (first) selectFile(first.file, { line: first.line });
    });
  }

  // The page request has set the HttpOnly token cookie, which every later request
  // carries: keep the token itself out of the address bar, history and screen shares.
  function hideToken() {
    if (!window.history || !history.replaceState || !window.URLSearchParams) return;
    var q = new URLSearchParams(location.search);
    if (!q.has('token')) return;
    q.delete('token');
    var rest = q.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }

  function wireActivity() {
    var plot = $('act-plot');
    plot.addEventListener('mousemove', function (ev) {
      S.actHoverX = ev.clientX;
      var i = pointAtX(ev.clientX);
      S.actHover = i;
      if (i < 0) { hideTip(); readout(-1); return; }
      showTip(i);
      readout(i);
    });
    plot.addEventListener('mouseleave', function () {
      S.actHover = -1;
      S.actHoverX = null;
      hideTip();
      readout(-1);
    });
    plot.addEventListener('click', function (ev) {
      if (!S.replay || !S.actGeo || !S.replay.times.length) return;
      var geo = S.actGeo, r = plot.getBoundingClientRect();
      var t = geo.t0 + (ev.clientX - r.left - geo.L) / (geo.R - geo.L) * (geo.t1 - geo.t0);
      tlGo(indexNear(S.replay.times, t));
      if (S.tl.playing) tlAnchor();
    });
    if ('ResizeObserver' in window) {
      var last = 0;
      new ResizeObserver(function () {
        var w = plot.clientWidth;
        if (w !== last) { last = w; drawStrip(); }
      }).observe(plot);
    } else {
      window.addEventListener('resize', drawStrip);
    }
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') pollActivity();
    });
    var range = $('tl-range');
    range.addEventListener('input', function () {
      tlGo(+range.value, true);
      if (S.tl.playing) tlAnchor();
    });
    range.addEventListener('keydown', function (ev) {
      if (ev.key === ' ') { ev.preventDefault(); if (S.tl.playing) tlPause(); else tlPlay(); }
    });
    $('tl-play').addEventListener('click', function () {
      if (S.tl.playing) tlPause(); else tlPlay();
    });
    $('tl-speed').addEventListener('change', function () { if (S.tl.playing) tlAnchor(); });
  }

  /* Live: the snapshot, the event stream, and the activity once a second. */
  function startLive() {
    setInterval(pollActivity, ACT_EVERY);
    if (S.pid === 'all') { loadSnapshot(); connect(); loadActivity(); return; }
    // A process from an old URL may be gone: ask the combined picture, which lists
    // every process, before asking for this one (no 404 to recover from).
    var pid = S.pid, gen = S.gen;
    fetch('/api/snapshot?pid=all', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (snap) {
      if (gen !== S.gen) return;
      if (snap && procList(snap).length && !findProc(snap, pid)) {
        renderProcs(snap);
        dropProcess(pid);
        return;
      }
      loadSnapshot();
      connect();
      loadActivity();
    }).catch(function () {
      if (gen !== S.gen) return;
      loadSnapshot();
      connect();
      loadActivity();
    });
  }

  /* GET /api/recording: `then(rec)` with the recording's description, or null for a
   * live monitor (it answers 200 with null). */
  function checkRecording(then) {
    fetch('/api/recording', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      return r.status === 200 ? r.json() : null;
    }).catch(function () { return null; }).then(function (rec) {
      then(rec && typeof rec === 'object' && rec.count != null && Array.isArray(rec.times) ? rec : null);
    });
  }

  function start() {
    hideToken();
    wire();
    setState('connecting');
    setInterval(tick, 1000);
    S.pid = followHash();         // a reload keeps the process shown
    checkRecording(function (rec) { if (rec) startReplay(rec); else startLive(); });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
