/* The monitor's token, for every request the page makes.
 *
 * Taken from the page's URL (?token=…) when this module loads, kept in
 * sessionStorage (per tab and per origin: two monitors open in one browser never
 * share or overwrite each other's, and a reload of the tab still has it), and
 * removed from the address bar, history and screen shares. fetch() carries it in
 * the X-Stethoscope-Token header (apiFetch); an EventSource, which cannot set
 * headers, in ?token= (apiEvents). There is no cookie: a browser would send a
 * cookie for 127.0.0.1 to every port of it, and with any page's form posts.
 */

var KEY = 'stethoscope-token';
var HEADER = 'X-Stethoscope-Token';

function fromUrl() {
  if (!window.URLSearchParams) return '';
  var q = new URLSearchParams(location.search);
  var value = q.get('token') || '';
  if (q.has('token') && window.history && history.replaceState) {
    q.delete('token');
    var rest = q.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }
  return value;
}

function take() {
  var given = fromUrl();
  try {
    if (given) sessionStorage.setItem(KEY, given);
    return given || sessionStorage.getItem(KEY) || '';
  } catch (e) {
    return given;  // storage refused (a sandboxed tab): this load only
  }
}

var token = take();

/* fetch(url, init) with the token in its header; no cookies, no cache. */
export function apiFetch(url, init) {
  var opts = {};
  var key;
  for (key in (init || {})) opts[key] = init[key];
  var headers = new Headers(opts.headers || {});
  if (token) headers.set(HEADER, token);
  opts.headers = headers;
  opts.credentials = 'omit';
  if (!opts.cache) opts.cache = 'no-store';
  return fetch(url, opts);
}

/* new EventSource(url) with the token in its query. */
export function apiEvents(url) {
  return new EventSource(url + (url.indexOf('?') < 0 ? '?' : '&') + 'token=' +
    encodeURIComponent(token));
}
