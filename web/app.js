// dht: the ring page. Draws a ring served by `dht serve` from its API alone
// (/api/v1/), follows the change stream, and offers what the signed-in
// role may do. Plain JavaScript, no libraries, nothing fetched from
// elsewhere.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const SIZE = 800;
const RADIUS = 300;
// Rings up to this many nodes draw one element per node (clickable in
// tests and tools); larger ones draw every node into one path.
const DOTS_AS_ELEMENTS = 2000;
const LABELS_UP_TO = 48;
// Rings up to this many nodes are sent node by node; a bigger one comes as
// counts per arc (drawn as a density band), and the page asks the server
// for the nodes it needs: the one under the pointer, a node's fingers, a
// lookup's path, check's marks. `?max_nodes=N` in the page's address
// changes it.
const MAX_LISTED = Number(new URLSearchParams(location.search).get('max_nodes')) || 20000;
const PAGE = 20;

const $ = (sel) => document.querySelector(sel);

const state = {
  token: sessionStorage.getItem('dht-token'),
  me: null,
  circle: null,
  byName: new Map(),
  places: new Map(), // name -> circle node: nodes learned one by one on a counted ring
  selected: null,
  route: null, // the last lookup: {report, shown: hops drawn so far}
  marked: new Set(), // nodes the last check found problems with
  departed: new Map(), // name -> {at, op}: nodes seen leaving or failing
  cursors: [null], // page cursors of the key table
  filter: '',
  refreshTimer: null,
  nearTimer: null,
};

// ---- the API ------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h.Authorization = 'Bearer ' + state.token;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch('/api/v1' + path, init);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!res.ok) throw new ApiError(res.status, (json && json.error) || res.status + ' ' + res.statusText);
  return json;
}

const enc = encodeURIComponent;

// ---- signing in -----------------------------------------------------------

async function start() {
  let me;
  try {
    me = await api('GET', '/me');
  } catch (e) {
    if (e.status === 401) return showSignIn(state.token ? 'that token is not known here' : '');
    return showSignIn('cannot reach the server: ' + e.message);
  }
  if (!me.may_read) return showSignIn('');
  state.me = me;
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#who').textContent = me.role ? me.name + ' (' + me.role + ')' : 'anonymous reader';
  $('#signout').hidden = !state.token;
  // What the role may not do is not offered at all.
  if (!me.may_write) document.querySelectorAll('.writer-only').forEach((e) => e.remove());
  if (!me.may_admin) document.querySelectorAll('.admin-only').forEach((e) => e.remove());
  await refresh();
  follow();
}

function showSignIn(message) {
  $('#app').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = message;
  $('#token').focus();
}

$('#signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.token = $('#token').value.trim();
  sessionStorage.setItem('dht-token', state.token);
  start();
});

$('#signout').addEventListener('click', () => {
  sessionStorage.removeItem('dht-token');
  location.reload();
});

// ---- the circle -----------------------------------------------------------

function point(at, r) {
  const a = at * 2 * Math.PI;
  return [SIZE / 2 + r * Math.sin(a), SIZE / 2 - r * Math.cos(a)];
}

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// Where an id lies as a fraction of a turn: ids are decimal on rings up
// to 64 bits and hexadecimal above (as the ring shows them).
function fraction(idText) {
  const bits = state.circle.bits;
  const v = bits <= 64 ? BigInt(idText) : BigInt('0x' + idText);
  const drop = Math.max(0, bits - 53);
  return Number(v >> BigInt(drop)) / 2 ** (bits - drop);
}

// True when the ring came as counts, not node by node.
function counted() {
  return state.circle && state.circle.node_count > state.circle.nodes.length;
}

// A live node's place on the circle ({name, id, at, keys}), if known.
function placeOf(name) {
  return state.byName.get(name) || state.places.get(name);
}

// Asks where the named nodes sit, on a counted ring; the live ones are
// remembered (a full ring knows every node already).
async function learnPlaces(names) {
  if (!counted()) return;
  const unknown = [...new Set(names)].filter((n) => n && !state.places.has(n));
  for (let i = 0; i < unknown.length; i += 1000) {
    const found = await api('GET', '/circle/nodes?names=' + enc(unknown.slice(i, i + 1000).join('\n')));
    for (const node of found) state.places.set(node.name, node);
  }
}

// A path of one tick per non-empty bin of `bins` (equal arcs from id 0),
// from radius `from`, `least` long plus up to `most` for the fullest bin
// (negative lengths point inward).
function ticks(bins, from, least, most) {
  const full = Math.max(1, ...bins);
  let d = '';
  bins.forEach((count, i) => {
    if (!count) return;
    const at = (i + 0.5) / bins.length;
    const [x1, y1] = point(at, from);
    const [x2, y2] = point(at, from + least + (most * count) / full);
    d += `M${x1.toFixed(1)} ${y1.toFixed(1)}L${x2.toFixed(1)} ${y2.toFixed(1)}`;
  });
  return d;
}

function draw() {
  const svg = $('#ring');
  svg.replaceChildren();
  const c = state.circle;
  const n = c.node_count;
  svg.setAttribute('data-nodes', n);
  svg.setAttribute('data-counted', counted() ? 'true' : 'false');
  el('rect', { width: SIZE, height: SIZE, fill: '#fff' }, svg);
  el('circle', { class: 'ring-line', cx: SIZE / 2, cy: SIZE / 2, r: RADIUS }, svg);
  // Keys as ticks outward per arc, longer where more keys lie.
  if (c.key_bins.some((count) => count > 0)) {
    el('path', { class: 'key-ticks', d: ticks(c.key_bins, RADIUS + 4, 4, 40) }, svg);
  }
  const dot = Math.min(6, Math.max(1.5, 900 / Math.max(1, n)));
  const nodes = el('g', { id: 'nodes' }, svg);
  if (counted()) {
    // Each arc's nodes as a tick inward, longer where more lie.
    el('path', { class: 'node-density', d: ticks(c.node_bins, RADIUS - 3, -2, -30) }, nodes);
  } else if (n <= DOTS_AS_ELEMENTS) {
    for (const node of c.nodes) {
      const [x, y] = point(node.at, RADIUS);
      el('circle', {
        class: 'node' + (node.name === state.selected ? ' selected' : ''),
        'data-name': node.name, cx: x.toFixed(2), cy: y.toFixed(2), r: dot,
      }, nodes);
    }
  } else {
    // One path of zero-length round-capped strokes: a dot per node.
    let d = '';
    for (const node of c.nodes) {
      const [x, y] = point(node.at, RADIUS);
      d += `M${x.toFixed(1)} ${y.toFixed(1)}h0`;
    }
    el('path', { class: 'node-dots', d, 'stroke-width': dot * 2 }, nodes);
  }
  if (c.nodes.length <= LABELS_UP_TO) {
    const labels = el('g', { id: 'labels' }, svg);
    for (const node of c.nodes) {
      const [x, y] = point(node.at, RADIUS - 18);
      const t = el('text', { class: 'label', x: x.toFixed(1), y: y.toFixed(1), 'text-anchor': 'middle', 'dominant-baseline': 'middle' }, labels);
      t.textContent = node.name;
    }
  }
  el('g', { id: 'marks' }, svg);
  el('g', { id: 'fingers' }, svg);
  el('g', { id: 'lookup' }, svg);
  drawMarks();
  drawSelected();
  drawRoute();
}

// Problems found by check, and nodes seen leaving or failing.
function drawMarks() {
  const g = $('#marks');
  if (!g) return;
  g.replaceChildren();
  for (const name of state.marked) {
    const node = placeOf(name);
    if (!node) continue;
    const [x, y] = point(node.at, RADIUS);
    el('circle', { class: 'problem', 'data-name': name, cx: x, cy: y, r: 11 }, g);
  }
  for (const [name, gone] of state.departed) {
    if (placeOf(name)) continue;
    const [x, y] = point(gone.at, RADIUS);
    const m = el('g', { class: 'departed ' + gone.op, 'data-name': name }, g);
    el('line', { x1: x - 7, y1: y - 7, x2: x + 7, y2: y + 7 }, m);
    el('line', { x1: x - 7, y1: y + 7, x2: x + 7, y2: y - 7 }, m);
    const [lx, ly] = point(gone.at, RADIUS + 22);
    const t = el('text', { x: lx, y: ly, 'text-anchor': 'middle' }, m);
    t.textContent = name + (gone.op === 'fail' ? ' failed' : ' left');
  }
}

// The selected node's fingers as chords and its successor list as arcs.
function drawSelected() {
  const g = $('#fingers');
  if (!g || !state.selected || !state.selectedRow) return;
  g.replaceChildren();
  const me = placeOf(state.selected);
  if (!me) return;
  const [x1, y1] = point(me.at, RADIUS);
  el('circle', { class: 'halo', cx: x1, cy: y1, r: 10 }, g);
  const seen = new Set();
  for (const f of state.selectedRow.fingers) {
    if (seen.has(f.node) || f.node === me.name) continue;
    seen.add(f.node);
    const to = placeOf(f.node);
    if (!to) continue;
    const [x2, y2] = point(to.at, RADIUS);
    el('line', { class: 'finger', 'data-to': f.node, x1, y1, x2, y2 }, g);
    if (counted()) el('circle', { class: 'known', 'data-name': f.node, cx: x2, cy: y2, r: 4 }, g);
  }
}

// The last lookup: the key's place, the start node and the hops drawn so far.
function drawRoute() {
  const g = $('#lookup');
  if (!g || !state.route) return;
  g.replaceChildren();
  const r = state.route.report;
  g.setAttribute('data-key', r.key);
  const [kx, ky] = point(fraction(r.key_id), RADIUS);
  el('circle', { class: 'key-mark', cx: kx, cy: ky, r: 7 }, g);
  // The report names each node with its id: its place on any circle.
  const at = new Map([...r.path, r.successor].map((n) => [n.name, { at: fraction(n.id) }]));
  if (counted()) {
    // The band shows no single node: a dot for each node the lookup asked.
    for (const [name, node] of at) {
      const [x, y] = point(node.at, RADIUS);
      el('circle', { class: 'known', 'data-name': name, cx: x, cy: y, r: 4 }, g);
    }
  }
  const start = at.get(r.path[0] && r.path[0].name);
  if (start) {
    const [sx, sy] = point(start.at, RADIUS);
    el('circle', { class: 'start-mark', cx: sx, cy: sy, r: 9 }, g);
  }
  routeSteps(r).slice(0, state.route.shown).forEach(([from, to, last]) => {
    const a = at.get(from);
    const b = at.get(to);
    if (!a || !b) return;
    const [x1, y1] = point(a.at, RADIUS);
    const [x2, y2] = point(b.at, RADIUS);
    el('line', { class: 'hop' + (last ? ' final' : ''), 'data-from': from, 'data-to': to, x1, y1, x2, y2, 'marker-end': 'url(#arrowhead)' }, g);
  });
  if (!$('#arrowhead')) {
    const defs = el('defs', {}, $('#ring'));
    const m = el('marker', { id: 'arrowhead', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#d9480f' }, m);
  }
}

// A lookup's arrows: node to node along the path, then (dashed) from the
// key's predecessor to its successor.
function routeSteps(r) {
  const names = r.path.map((p) => p.name);
  const steps = [];
  for (let i = 1; i < names.length; i++) steps.push([names[i - 1], names[i], false]);
  const last = names[names.length - 1];
  if (last !== undefined && last !== r.successor.name) steps.push([last, r.successor.name, true]);
  return steps;
}

// A point of the picture, from its centre, in picture units.
function pictureAt(ev) {
  const box = $('#ring').getBoundingClientRect();
  const scale = SIZE / box.width;
  return [(ev.clientX - box.left) * scale - SIZE / 2, (ev.clientY - box.top) * scale - SIZE / 2];
}

// The angle of a point as a fraction of a turn, clockwise from the top.
function angleAt(x, y) {
  const at = Math.atan2(x, -y) / (2 * Math.PI);
  return at < 0 ? at + 1 : at;
}

// On a counted ring: the arc under a point near the ring, as its bin.
function arcAt(ev) {
  const [x, y] = pictureAt(ev);
  if (!counted() || Math.abs(Math.hypot(x, y) - RADIUS) > 24) return null;
  const at = angleAt(x, y);
  const bins = state.circle.node_bins;
  return { at, bin: Math.min(bins.length - 1, Math.floor(at * bins.length)) };
}

// The node nearest a point of the picture, if the point is near the ring.
function nodeAt(ev) {
  const [x, y] = pictureAt(ev);
  const nodes = state.circle ? state.circle.nodes : [];
  if (!nodes.length || Math.abs(Math.hypot(x, y) - RADIUS) > 24) return null;
  const at = angleAt(x, y);
  // Binary search in ring order, then the nearer neighbour (wrapping).
  let lo = 0;
  let hi = nodes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (nodes[mid].at < at) lo = mid + 1; else hi = mid;
  }
  const after = nodes[lo % nodes.length];
  const before = nodes[(lo - 1 + nodes.length) % nodes.length];
  const gap = (a) => Math.min(Math.abs(a.at - at), 1 - Math.abs(a.at - at));
  const best = gap(after) <= gap(before) ? after : before;
  return gap(best) * 2 * Math.PI * RADIUS <= 14 ? best : null;
}

$('#ring').addEventListener('mousemove', (ev) => {
  const tip = $('#tip');
  tip.removeAttribute('data-near');
  const node = nodeAt(ev);
  const arc = node ? null : arcAt(ev);
  if (node) {
    tip.textContent = `${node.name} · id ${node.id} · ${node.keys} keys`;
  } else if (arc) {
    const c = state.circle;
    const deg = 360 / c.node_bins.length;
    const counts = `${c.node_bins[arc.bin]} nodes at ${(arc.bin * deg).toFixed(1)}°–${((arc.bin + 1) * deg).toFixed(1)}°`;
    tip.textContent = counts;
    nameNearSoon(arc.at, counts);
  } else {
    tip.hidden = true;
    return;
  }
  const box = $('#stage').getBoundingClientRect();
  tip.style.left = ev.clientX - box.left + 12 + 'px';
  tip.style.top = ev.clientY - box.top + 12 + 'px';
  tip.hidden = false;
});
$('#ring').addEventListener('mouseleave', () => { clearTimeout(state.nearTimer); $('#tip').hidden = true; });

// On a counted ring, the node nearest the pointer is asked for once the
// pointer rests (a request per resting place, not per pixel moved), and
// named in the tip under the arc's count.
function nameNearSoon(at, counts) {
  clearTimeout(state.nearTimer);
  state.nearTimer = setTimeout(async () => {
    const near = await api('GET', '/circle/near?at=' + at).catch(() => null);
    const tip = $('#tip');
    if (!near || tip.hidden || tip.textContent !== counts) return;
    tip.textContent = `${counts} · nearest ${near.name} · id ${near.id} · ${near.keys} keys`;
    tip.setAttribute('data-near', near.name);
  }, 150);
}
$('#ring').addEventListener('click', (ev) => {
  const node = nodeAt(ev);
  if (node) return select(node.name);
  const arc = arcAt(ev);
  if (arc) {
    api('GET', '/circle/near?at=' + arc.at).then((near) => {
      state.places.set(near.name, near);
      return select(near.name);
    }).catch((e) => say('#summary', e.message, true));
  }
});

// ---- a node ----------------------------------------------------------------

async function select(name) {
  state.selected = name;
  try {
    const [row, keys] = await Promise.all([
      api('GET', '/ring/' + enc(name)),
      api('GET', '/ring/' + enc(name) + '/keys?limit=50'),
    ]);
    // What drawSelected draws: the node and its fingers.
    await learnPlaces([row.node, ...row.fingers.map((f) => f.node)]);
    state.selectedRow = row;
    showNode(row, keys);
  } catch (e) {
    state.selectedRow = null;
    $('#node-panel').hidden = false;
    $('#node-title').textContent = name;
    $('#node-facts').replaceChildren();
    $('#node-keys').replaceChildren();
    say('#node-facts', e.message, true);
  }
  if (state.circle) draw();
}

function showNode(row, keys) {
  $('#node-panel').hidden = false;
  $('#node-panel').setAttribute('data-name', row.node);
  $('#node-title').textContent = row.node;
  const facts = $('#node-facts');
  facts.replaceChildren();
  const fact = (term, text) => {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = text;
    facts.append(dt, dd);
  };
  fact('id', row.id);
  fact('predecessor', row.predecessor || 'none known');
  fact('successors', row.successors.join(', '));
  fact('fingers', [...new Set(row.fingers.map((f) => f.node))].join(', '));
  fact('keys', `${row.keys} (and ${row.replicas} replicas)`);
  const list = $('#node-keys');
  list.replaceChildren();
  for (const k of keys.items) {
    const li = document.createElement('li');
    li.textContent = k.key + ' = ' + JSON.stringify(k.value);
    list.appendChild(li);
  }
  if (keys.total > keys.items.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = `… ${keys.total - keys.items.length} more`;
    list.appendChild(li);
  }
}

// ---- lookups ---------------------------------------------------------------

$('#lookup-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const key = $('#lookup-key').value;
  const from = state.selected && placeOf(state.selected) ? '?from=' + enc(state.selected) : '';
  const out = $('#lookup-result');
  try {
    const r = await api('GET', '/keys/' + enc(key) + from);
    state.route = { report: r, shown: 0 };
    out.replaceChildren();
    const p = document.createElement('p');
    p.id = 'lookup-summary';
    p.textContent = `${JSON.stringify(r.key)} = ${JSON.stringify(r.value)} · ${r.hops} hops · ${r.messages} messages · served by ${r.node}`;
    const path = document.createElement('p');
    path.id = 'lookup-path';
    path.className = 'muted';
    path.textContent = r.path.map((n) => n.name).join(' → ') + ' ⇒ ' + r.successor.name;
    out.append(p, path);
    animateRoute();
  } catch (e) {
    state.route = null;
    if ($('#lookup')) $('#lookup').replaceChildren();
    say('#lookup-result', e.message, true);
  }
});

// Draws the hops one after another, as the lookup made them.
function animateRoute() {
  const route = state.route;
  const total = routeSteps(route.report).length;
  const step = () => {
    if (state.route !== route) return;
    drawRoute();
    if (route.shown < total) {
      route.shown += 1;
      setTimeout(step, 250);
    } else {
      $('#lookup').setAttribute('data-done', 'true');
    }
  };
  step();
}

// ---- the key table ---------------------------------------------------------

async function loadKeys() {
  const cursor = state.cursors[state.cursors.length - 1];
  const q = new URLSearchParams({ limit: PAGE });
  if (cursor !== null) q.set('cursor', cursor);
  if (state.filter) q.set('contains', state.filter);
  let page;
  try {
    page = await api('GET', '/keys?' + q);
  } catch (e) {
    return say('#page-no', e.message, true);
  }
  const body = $('#keys tbody');
  body.replaceChildren();
  for (const item of page.items) {
    const tr = document.createElement('tr');
    tr.setAttribute('data-key', item.key);
    for (const text of [item.key, JSON.stringify(item.value), item.node]) {
      const td = document.createElement('td');
      td.textContent = text;
      td.title = text;
      tr.appendChild(td);
    }
    if (state.me.may_write) {
      const td = document.createElement('td');
      const b = document.createElement('button');
      b.className = 'plain';
      b.textContent = 'Delete';
      b.addEventListener('click', () => write(() => api('DELETE', '/keys/' + enc(item.key)), `deleted ${JSON.stringify(item.key)}`));
      td.appendChild(b);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  state.next = page.next;
  $('#prev').disabled = state.cursors.length === 1;
  $('#next').disabled = !page.next;
  $('#page-no').textContent = `page ${state.cursors.length}` + (state.filter ? ` of keys containing ${JSON.stringify(state.filter)}` : '');
  $('#page-no').className = '';
}

$('#next').addEventListener('click', () => {
  if (state.next) { state.cursors.push(state.next); loadKeys(); }
});
$('#prev').addEventListener('click', () => {
  if (state.cursors.length > 1) { state.cursors.pop(); loadKeys(); }
});
$('#filter-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.filter = $('#filter').value;
  state.cursors = [null];
  loadKeys();
});

// ---- writes ----------------------------------------------------------------

function say(where, text, bad) {
  const e = $(where);
  if (!e) return;
  e.textContent = text;
  e.className = bad ? 'error' : 'okay';
}

async function write(action, done, where) {
  try {
    await action();
    say(where || '#write-result', done, false);
  } catch (e) {
    say(where || '#write-result', e.message, true);
  }
  scheduleRefresh();
}

function onSubmit(sel, handler) {
  const form = $(sel);
  if (form) form.addEventListener('submit', (ev) => { ev.preventDefault(); handler(); });
}

onSubmit('#put-form', () => {
  const key = $('#put-key').value;
  const raw = $('#put-value').value;
  // JSON when it parses, text otherwise: as `dht put` does.
  let body;
  try { JSON.parse(raw); body = raw; } catch (_) { body = JSON.stringify(raw); }
  write(() => api('PUT', '/keys/' + enc(key), body), `stored ${JSON.stringify(key)}`);
});

onSubmit('#delete-form', () => {
  const key = $('#delete-key').value;
  write(() => api('DELETE', '/keys/' + enc(key)), `deleted ${JSON.stringify(key)}`);
});

onSubmit('#upload-form', () => {
  const file = $('#upload-file').files[0];
  if (!file) return;
  let format = $('#upload-format').value;
  if (!format) {
    const ext = file.name.split('.').pop().toLowerCase();
    format = {
      csv: 'csv', json: 'json', ndjson: 'ndjson', jsonl: 'ndjson', parquet: 'parquet',
      arrow: 'ipc', feather: 'ipc', ipc: 'ipc',
      xlsx: 'xlsx', xlsm: 'xlsm', xlsb: 'xlsb', xls: 'xls', ods: 'ods',
    }[ext];
    if (!format) return say('#write-result', `cannot tell the format of ${file.name}: choose one`, true);
  }
  const q = new URLSearchParams({ format });
  const keyCol = $('#upload-key-col').value.trim();
  if (keyCol) q.set('key_col', keyCol);
  const bar = $('#upload-progress');
  bar.hidden = false;
  bar.value = 0;
  // The last write's result must not stand for this one while it runs.
  say('#write-result', `loading ${file.name}…`, false);
  $('#write-result').className = 'busy';
  // XMLHttpRequest reports upload progress; fetch does not.
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/api/v1/load?' + q);
  if (state.token) xhr.setRequestHeader('Authorization', 'Bearer ' + state.token);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
  xhr.onload = () => {
    bar.value = 1;
    let json = null;
    try { json = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status === 200 && json) {
      say('#write-result', `loaded ${file.name}: ${json.records_read} records, ${json.inserted} new, ${json.overwritten} replaced, ${json.skipped.length} skipped`, false);
    } else {
      say('#write-result', (json && json.error) || `load failed (${xhr.status})`, true);
    }
    scheduleRefresh();
  };
  xhr.onerror = () => say('#write-result', 'the upload did not reach the server', true);
  xhr.send(file);
});

// ---- membership (admins) ---------------------------------------------------

onSubmit('#join-form', () => {
  const name = $('#join-name').value.trim();
  write(async () => {
    const r = await api('POST', '/nodes', name ? { name } : {});
    say('#admin-result', r.message, false);
  }, 'joined', '#admin-result');
});

function click(sel, handler) {
  const b = $(sel);
  if (b) b.addEventListener('click', handler);
}

click('#maintain-btn', () => write(async () => {
  const r = await api('POST', '/maintain', { until_stable: true });
  say('#admin-result', r.message, false);
}, 'maintained', '#admin-result'));

click('#leave-btn', () => {
  const name = state.selected;
  if (name) write(async () => say('#admin-result', (await api('POST', `/nodes/${enc(name)}/leave`)).message, false), 'left', '#admin-result');
});

click('#fail-btn', () => {
  const name = state.selected;
  if (name) write(async () => say('#admin-result', (await api('POST', `/nodes/${enc(name)}/fail`)).message, false), 'failed', '#admin-result');
});

click('#check-btn', async () => {
  const out = $('#check-result');
  try {
    const r = await api('GET', '/check');
    await learnPlaces(r.marked);
    state.marked = new Set(r.marked);
    out.replaceChildren();
    const p = document.createElement('p');
    p.className = r.ok ? 'okay' : 'error';
    p.textContent = r.ok ? `all invariants hold on ${r.nodes} nodes` : `${r.problems.length} problems (nodes marked on the circle)`;
    out.appendChild(p);
    const list = document.createElement('ul');
    for (const text of r.problems.slice(0, 20)) {
      const li = document.createElement('li');
      li.textContent = text;
      list.appendChild(li);
    }
    out.appendChild(list);
  } catch (e) {
    say('#check-result', e.message, true);
  }
  drawMarks();
});

// ---- keeping up with everyone's changes ------------------------------------

async function refresh() {
  const circle = await api('GET', '/circle?max_nodes=' + MAX_LISTED).catch((e) => { say('#summary', e.message, true); return null; });
  if (circle) {
    state.circle = circle;
    state.byName = new Map(circle.nodes.map((n) => [n.name, n]));
    // Nodes learned one by one are asked for again: some may have gone.
    const known = [...state.places.keys()];
    state.places = new Map();
    await learnPlaces(known).catch(() => {});
    $('#summary').className = '';
    $('#summary').textContent = `${circle.node_count} nodes · ${circle.keys} keys · m=${circle.bits} · r=${circle.replicas}`;
  }
  if (state.selected && placeOf(state.selected)) {
    await select(state.selected); // redraws the circle with the node's fingers
  } else if (circle) {
    draw();
  }
  if (state.selected && !placeOf(state.selected)) {
    $('#node-facts').replaceChildren();
    $('#node-keys').replaceChildren();
    const gone = state.departed.get(state.selected);
    say('#node-facts', `${state.selected} is no longer in the ring` + (gone ? ` (${gone.op === 'fail' ? 'failed' : 'left'})` : ''), true);
    state.selectedRow = null;
  }
  await loadKeys();
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, 100);
}

function note(change) {
  const li = document.createElement('li');
  li.setAttribute('data-op', change.op);
  li.setAttribute('data-target', change.target);
  const what = change.target ? `${change.op} ${change.target}` : change.op;
  li.textContent = `${change.at.slice(11, 19)} ${change.author}: ${what}` + (change.detail ? ` (${change.detail})` : '');
  const list = $('#activity');
  list.prepend(li);
  while (list.children.length > 100) list.lastChild.remove();
}

function onChange(change) {
  note(change);
  if (change.op === 'fail' || change.op === 'leave') {
    const gone = placeOf(change.target);
    if (gone) state.departed.set(change.target, { at: gone.at, op: change.op });
  }
  if (change.op === 'join') {
    for (const name of change.target.split(' ')) state.departed.delete(name);
  }
  if (!change.op.startsWith('user-')) {
    state.marked = new Set();
    scheduleRefresh();
  }
}

function setLive(on) {
  const live = $('#live');
  live.className = 'live ' + (on ? 'on' : 'off');
  live.textContent = on ? 'live' : 'reconnecting…';
}

// The event stream over fetch (EventSource cannot send a token), read
// block by block; when it ends, reconnect with a growing pause and catch
// up on what was missed by reading everything again.
async function follow() {
  let pause = 500;
  let first = true;
  for (;;) {
    try {
      const res = await fetch('/api/v1/events', { headers: headers({ Accept: 'text/event-stream' }) });
      if (res.status === 401 || res.status === 403) {
        setLive(false);
        return showSignIn('your token no longer works here');
      }
      if (!res.ok) throw new Error(res.status);
      setLive(true);
      pause = 500;
      if (!first) scheduleRefresh();
      first = false;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          if (data) {
            try { onChange(JSON.parse(data)); } catch (_) { /* not a change */ }
          }
        }
      }
    } catch (_) {
      // The server went away; try again below.
    }
    setLive(false);
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 4000);
  }
}

start();
