// The palid status page: polls /v1/overview and /snapshot.jpg, and asks
// questions through /v1/chat/completions with streaming.
'use strict';

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem('palid-token') || '';
let modelName = 'palid';
let frameURL = null;

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h['Authorization'] = 'Bearer ' + token;
  return h;
}

async function api(path, opts) {
  opts = opts || {};
  const r = await fetch(path, Object.assign({}, opts, { headers: authHeaders(opts.headers) }));
  if (r.status === 401) $('token-box').hidden = false;
  return r;
}

function ms(v) {
  return v >= 1000 ? (v / 1000).toFixed(1) + ' s' : Math.round(v) + ' ms';
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
}

async function refreshOverview() {
  try {
    const r = await api('/v1/overview');
    if (!r.ok) return;
    const ov = await r.json();
    modelName = ov.model || modelName;
    $('model').textContent = ov.model || '?';
    $('backend').textContent = ov.backend || '?';
    $('kernels').textContent = (ov.kernels || []).join(', ') || '?';
    const cam = ov.camera || {};
    $('camera').textContent = (cam.state || '?') + (cam.source ? ' (' + cam.source + ')' : '');
    $('state').textContent = ov.state || '?';
    $('queue').textContent = ov.queue + (ov.queue_max ? ' / ' + ov.queue_max : '');
    const body = $('recent');
    body.replaceChildren();
    for (const it of ov.recent || []) {
      const tr = document.createElement('tr');
      cell(tr, new Date(it.at).toLocaleTimeString());
      cell(tr, it.source);
      cell(tr, it.question);
      if (it.error) cell(tr, it.error, 'err'); else cell(tr, it.answer);
      cell(tr, ms(it.latency_ms));
      body.appendChild(tr);
    }
  } catch (e) { /* the daemon may be restarting: try again next tick */ }
}

async function refreshFrame() {
  try {
    const r = await api('/snapshot.jpg');
    if (!r.ok) { $('frame-time').textContent = 'no frame yet'; return; }
    const at = r.headers.get('X-Captured-At');
    const url = URL.createObjectURL(await r.blob());
    $('frame').src = url;
    if (frameURL) URL.revokeObjectURL(frameURL);
    frameURL = url;
    $('frame-time').textContent = at ? 'captured ' + new Date(at).toLocaleTimeString() : '';
  } catch (e) { /* try again next tick */ }
}

// readEvents calls onData with the data of each server-sent event.
async function readEvents(body, onData) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of ev.split('\n')) {
        if (line.startsWith('data: ')) onData(line.slice(6));
      }
    }
  }
}

async function ask(ev) {
  ev.preventDefault();
  const q = $('question').value.trim();
  if (!q) return;
  const out = $('answer');
  const meta = $('answer-meta');
  out.textContent = '';
  out.className = '';
  out.dataset.state = 'asking';
  meta.textContent = 'asking…';
  $('send').disabled = true;
  const t0 = performance.now();
  try {
    const req = {
      model: modelName,
      messages: [{ role: 'user', content: q }],
      stream: true,
      palid: { mode: $('video').checked ? 'video' : 'frame' },
    };
    const r = await api('/v1/chat/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(req),
    });
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = (await r.json()).error.message; } catch (e) { /* keep the status */ }
      throw new Error(msg);
    }
    let info = null;
    await readEvents(r.body, (data) => {
      if (data === '[DONE]') return;
      const c = JSON.parse(data);
      if (c.error) throw new Error(c.error.message);
      for (const ch of c.choices || []) {
        if (ch.delta && ch.delta.content) out.textContent += ch.delta.content;
      }
      if (c.palid) info = c.palid;
    });
    const lat = info ? info.latency_ms : performance.now() - t0;
    meta.textContent = 'answered in ' + ms(lat) + (info && info.frames ? ' from ' + info.frames + (info.frames > 1 ? ' frames' : ' frame') : '');
    out.dataset.state = 'done';
  } catch (e) {
    out.textContent = e.message;
    out.className = 'error';
    meta.textContent = '';
    out.dataset.state = 'error';
  } finally {
    $('send').disabled = false;
    refreshOverview();
  }
}

$('ask').addEventListener('submit', ask);
$('token-box').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  localStorage.setItem('palid-token', token);
  $('token-box').hidden = true;
  refreshOverview();
  refreshFrame();
});
refreshOverview();
refreshFrame();
setInterval(refreshOverview, 3000);
setInterval(refreshFrame, 2000);
