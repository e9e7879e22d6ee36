/* DOM helpers: find elements, make them, fill them with text.
 *
 * Owns nothing. Every string coming from the monitored program (paths, thread
 * names, source text, notes) is inserted with textContent / createTextNode, never
 * as HTML: el() and setText() are how the other modules do it.
 */

var SVGNS = 'http://www.w3.org/2000/svg';

export function $(id) { return document.getElementById(id); }

export function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function svgEl(tag, attrs, cls) {
  var e = document.createElementNS(SVGNS, tag);
  if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
  if (cls) e.setAttribute('class', cls);
  return e;
}

export function setText(node, text) {
  text = String(text);
  if (node.textContent !== text) node.textContent = text;
}

/* JSON text, or null if it is not JSON. */
export function parse(data) {
  try { return JSON.parse(data); } catch (e) { return null; }
}
