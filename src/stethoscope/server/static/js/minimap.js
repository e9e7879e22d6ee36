/* The minimap beside the source: a heat map of the whole file, with the lines
 * executing now and the part in view.
 *
 * Owns nothing: it draws the view source.js gives it, with that view's line
 * geometry, and turns a click into the line under it.
 */

import { $ } from './dom.js';

/* `view`: the file shown (or null); `geometry(view)`: its {lh, pad} in px. */
export function drawMinimap(view, geometry) {
  var cv = $('minimap');
  var dpr = window.devicePixelRatio || 1;
  var cssH = cv.clientHeight, cssW = cv.clientWidth;
  if (!cssH || !cssW) return;
  var W = Math.round(cssW * dpr), H = Math.round(cssH * dpr);
  if (cv.width !== W) cv.width = W;
  if (cv.height !== H) cv.height = H;
  var ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, W, H);
  if (!view || !view.n || view.root.parentNode !== $('source')) return;
  // Marks sit where the lines are in the scrollable area, like an overview ruler:
  // for a file that fits on screen they line up with the rows themselves.
  var box = $('source');
  var geo = geometry(view);
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

/* The line of `view` under a click on the minimap. */
export function lineAtClick(ev, view, geo) {
  var r = ev.currentTarget.getBoundingClientRect();
  var box = $('source');
  var y = (ev.clientY - r.top) / r.height * Math.max(box.scrollHeight, box.clientHeight);
  return Math.min(view.n, Math.max(1, Math.floor((y - geo.pad) / geo.lh) + 1));
}
