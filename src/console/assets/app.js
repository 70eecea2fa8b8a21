// hawkeye console: the operators' page. Plain JS: lists from the JSON API, live updates from
// /api/live (Server-Sent Events), actions as POSTs with the session's CSRF token.
'use strict';
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
let me = null;
let selected = null;
let devices = [];

async function api(path, opts = {}) {
  const headers = Object.assign({ 'Content-Type': 'application/json' }, opts.headers || {});
  if (opts.method && opts.method !== 'GET') headers['X-CSRF-Token'] = me ? me.csrf : '';
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) { location.href = '/login'; throw new Error('log in'); }
  const body = (r.headers.get('content-type') || '').includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
  return body;
}
const post = (path, body) => api(path, { method: 'POST', body: JSON.stringify(body || {}) });
window.hawkeyeApi = { api, post, me: () => me };

function showTab() {
  const tab = (location.hash || '#alerts').slice(1);
  document.querySelectorAll('main section').forEach((s) => s.classList.toggle('shown', s.id === 'tab-' + tab));
  document.querySelectorAll('nav a[data-tab]').forEach((a) => a.classList.toggle('active', a.dataset.tab === tab));
  if (tab === 'devices') loadDevices();
  if (tab === 'floods') loadFloods();
  if (tab === 'response') loadResponse();
}

function localToIso(v) { return v ? new Date(v).toISOString() : ''; }

async function loadEvents() {
  const q = new URLSearchParams({ kind: $('#f-kind').value, state: $('#f-state').value, device: $('#f-device').value,
    since: localToIso($('#f-since').value), until: localToIso($('#f-until').value), limit: '300' });
  const events = await api('/api/events?' + q);
  const kinds = new Set([...$('#f-kind').options].map((o) => o.value));
  events.forEach((e) => { if (!kinds.has(e.kind)) { kinds.add(e.kind); $('#f-kind').add(new Option(e.kind, e.kind)); } });
  $('#alerts-table tbody').innerHTML = events.map((e) => `
    <tr class="ev${e.event_id === selected ? ' selected' : ''}" data-event-id="${esc(e.event_id)}">
      <td>${esc(e.updated_at.replace('T', ' ').slice(0, 19))}</td>
      <td>${esc(e.device_id)}<br><span class="muted">${esc(e.camera_id)}</span></td>
      <td>${esc(e.zone_id)}</td>
      <td title="${esc(e.violation)}">${esc(e.kind)}${e.level ? ' <span class="badge">' + esc(e.level) + '</span>' : ''}</td>
      <td><span class="badge state-${esc(e.state)}">${esc(e.state)}</span></td>
      <td>${integrityBadge(e.integrity)}</td>
      <td class="ack-cell">${e.acked_at ? '✔ ' + esc(e.acked_by) : ''}</td>
    </tr>`).join('');
  document.querySelectorAll('tr.ev').forEach((tr) => tr.addEventListener('click', () => openEvent(tr.dataset.eventId)));
}

function integrityBadge(i) {
  if (!i) return '<span class="badge" title="no signed evidence yet">–</span>';
  if (i.startsWith('FAILED')) return `<span class="badge integrity-failed" title="${esc(i)}">⚠ tampered</span>`;
  return '<span class="badge integrity-ok" title="signature and hash chain verified">verified</span>';
}

function deviceConfig(id) { return (devices.find((d) => d.device_id === id) || {}).config || {}; }

async function openEvent(id) {
  selected = id;
  document.querySelectorAll('tr.ev').forEach((tr) => tr.classList.toggle('selected', tr.dataset.eventId === id));
  const d = await api('/api/events/' + encodeURIComponent(id));
  const e = d.event, a = d.latest || {};
  $('#detail').hidden = false;
  $('#detail').dataset.eventId = id;
  $('#detail-title').textContent = `${e.violation || e.kind} · ${e.state}`;
  $('#detail-meta').innerHTML = `${esc(e.device_id)} / ${esc(e.camera_id)} / zone ${esc(e.zone_id)} · started ${esc(e.started_at)}` +
    (e.acked_at ? ` · acknowledged by ${esc(e.acked_by)} at ${esc(e.acked_at)}${e.ack_note ? ' (“' + esc(e.ack_note) + '”)' : ''}` : '') +
    (e.resolved_at ? ` · resolved ${esc(e.resolved_at)}` : '') + ' · ' + integrityBadge(e.integrity) +
    (e.integrity && e.integrity.startsWith('FAILED') ? `<div class="msg error" id="integrity-error">${esc(e.integrity)}</div>` : '');
  const pics = d.evidence.filter((n) => !n.startsWith('clip'));
  const firstNew = (d.timeline.find((t) => t.state === 'new') || {});
  $('#detail-pictures').innerHTML = pics.map((n) => `
    <figure><img data-name="${esc(n)}" src="/api/events/${encodeURIComponent(id)}/evidence/${encodeURIComponent(n)}" alt="${esc(n)}">
    ${n === 'clean' ? '<canvas class="overlay" id="overlay"></canvas>' : ''}<figcaption>${esc(n)}</figcaption></figure>`).join('') || '<p class="muted">no pictures yet</p>';
  const clip = d.evidence.find((n) => n.startsWith('clip'));
  $('#detail-clip').innerHTML = clip ? `<video controls width="300" src="/api/events/${encodeURIComponent(id)}/evidence/${encodeURIComponent(clip)}"></video>` : '';
  const img = document.querySelector('img[data-name="clean"]');
  if (img) img.addEventListener('load', () => drawOverlay(img, e, d.first || a));
  $('#timeline tbody').innerHTML = d.timeline.map((t) => `<tr><td>${t.seq}</td><td><span class="badge state-${esc(t.state)}">${esc(t.state)}</span></td>
    <td>${esc(t.at)}</td><td>${esc([t.reason, t.level, t.count != null ? 'count ' + t.count : '', t.ack ? 'ack ' + t.ack.operator : ''].filter(Boolean).join(' · '))}</td></tr>`).join('');
  $('#commands tbody').innerHTML = d.commands.map((c) => `<tr data-request-id="${esc(c.request_id)}"><td>${esc(c.sent_at)}</td><td>${esc(c.username)}</td><td>${esc(c.cmd)}</td>
    <td class="cmd-result">${c.ok === null ? '<span class="muted">waiting for the device…</span>' : (c.ok ? '✔ ' : '✘ ') + esc(JSON.stringify(c.result.error || c.result.state || c.result.queued || 'ok'))}
    ${c.outcome ? ' · ' + esc(c.outcome.outcome || JSON.stringify(c.outcome)) : ''}</td></tr>`).join('');
  const cfg = deviceConfig(e.device_id);
  $('#warn-speaker').innerHTML = (cfg.speakers || []).map((s) => `<option>${esc(s.id)}</option>`).join('');
  $('#warn-message').innerHTML = (cfg.messages || []).map((m) => `<option value="${esc(m.id)}">${esc(m.id)}${m.text ? ': ' + esc(m.text) : ''}</option>`).join('');
  $('#warn-button').disabled = !(cfg.speakers || []).length;
  $('#warn-row').hidden = me.role === 'viewer' || !(cfg.speakers || []).length;
}

// the zone (from the device's config) and the alert's objects over the clean snapshot
function drawOverlay(img, e, a) {
  const c = $('#overlay');
  if (!c) return;
  c.width = img.clientWidth; c.height = img.clientHeight;
  const g = c.getContext('2d');
  const sx = img.clientWidth / img.naturalWidth, sy = img.clientHeight / img.naturalHeight;
  const cam = (deviceConfig(e.device_id).cameras || []).find((k) => k.camera_id === e.camera_id) || {};
  const zone = (cam.zones || []).find((z) => z.id === e.zone_id);
  if (zone) {
    g.strokeStyle = '#ffd400'; g.lineWidth = 2; g.beginPath();
    zone.polygon.forEach(([x, y], i) => (i ? g.lineTo : g.moveTo).call(g, x * c.width, y * c.height));
    g.closePath(); g.stroke();
  }
  g.strokeStyle = '#ff3b30'; g.lineWidth = 2; g.font = '11px sans-serif'; g.fillStyle = '#ff3b30';
  (a.objects || []).forEach((o) => {
    const [x1, y1, x2, y2] = o.bbox;
    g.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    g.fillText(`${o.class} ${o.score.toFixed(2)}`, x1 * sx, Math.max(10, y1 * sy - 2));
  });
}

function showResult(text, kind) {
  const m = $('#action-result');
  m.hidden = false; m.className = 'msg ' + (kind || ''); m.textContent = text;
}

async function act(path, body, what) {
  try {
    const r = await post(path, body);
    showResult(`${what} sent (request ${r.request_id}); waiting for the device…`);
    if (selected) openEvent(selected);
  } catch (err) { showResult(`${what}: ${err.message}`, 'error'); }
}

function connectLive() {
  const es = new EventSource('/api/live');
  es.onopen = () => { $('#live-status').textContent = 'live'; };
  es.onerror = () => { $('#live-status').textContent = 'reconnecting…'; };
  let timer = null;
  es.onmessage = (m) => {
    const v = JSON.parse(m.data);
    clearTimeout(timer);
    timer = setTimeout(() => {
      loadEvents();
      if (selected && (v.event_id === selected || v.type === 'command' || v.type === 'evidence' || v.type === 'resync')) openEvent(selected);
      if (v.type === 'command' && v.event_id === selected) {
        showResult(`${v.cmd}: ${v.ok ? 'done by the device' : 'refused by the device'}`, v.ok ? 'ok' : 'error');
      }
      if (v.type === 'device') { loadDevicesQuiet(); }
    }, 150);
  };
}

async function loadDevicesQuiet() {
  devices = await api('/api/devices');
  const sel = $('#f-device'), have = new Set([...sel.options].map((o) => o.value));
  devices.forEach((d) => { if (!have.has(d.device_id)) sel.add(new Option(d.device_id, d.device_id)); });
  return devices;
}

async function loadDevices() {
  await loadDevicesQuiet();
  $('#devices-table tbody').innerHTML = devices.map((d) => {
    const hb = d.heartbeat || {};
    const cams = (hb.cameras || []).map((c) => `${esc(c.camera_id)}: ${esc(c.state)} ${c.fps != null ? c.fps.toFixed(1) + ' fps' : ''}${c.last_error ? ' (' + esc(c.last_error) + ')' : ''}`).join('<br>');
    const det = hb.detector ? `${hb.detector.mean_ms?.toFixed(1)} ms, busy ${(100 * (hb.detector.busy_share || 0)).toFixed(0)} %${hb.overloaded ? ' <b>overloaded</b>' : ''}` : '';
    const ob = hb.outbox ? `depth ${hb.outbox_depth}, disk ${hb.outbox.disk_ok ? 'ok' : '<b>refusing</b>'}, ACL ${hb.broker && hb.broker.acl_ok === false ? '<b>refused</b>' : 'ok'}` : '';
    return `<tr data-device="${esc(d.device_id)}"><td>${esc(d.device_id)}</td><td>${esc(d.status || '?')}</td><td>${esc(d.heartbeat_at || 'none')}</td>
      <td>${cams}</td><td>${det}</td><td>${ob}</td>
      <td>${esc(d.key_source || 'no key')}${d.key_alarm ? '<div class="msg error">' + esc(d.key_alarm) + '</div>' +
        (me.role === 'admin' ? `<button class="secondary accept-key" data-device="${esc(d.device_id)}">Accept the new key</button>` : '') : ''}</td></tr>`;
  }).join('');
  document.querySelectorAll('button.accept-key').forEach((b) => b.addEventListener('click', async () => {
    if (!confirm(`Trust ${b.dataset.device}'s new key? Only when you know why it changed (a replaced box).`)) return;
    await post(`/api/devices/${encodeURIComponent(b.dataset.device)}/accept-key`);
    loadDevices();
  }));
}

async function loadFloods() {
  const board = await api('/api/floods');
  $('#flood-board').innerHTML = board.map((b) => `<div class="tile ${esc(b.level)}" data-zone="${esc(b.camera_id + '/' + b.zone_id)}">
    <b>${esc(b.zone_id)}</b> ${esc(b.level)}<small>${esc(b.device_id)} / ${esc(b.camera_id)}${b.coverage != null ? ' · ' + (100 * b.coverage).toFixed(0) + ' %' : ''}${b.online ? '' : ' · offline'}</small></div>`).join('')
    || '<p class="muted">no flooding zones configured on any device</p>';
}

async function loadResponse() {
  const r = await api('/api/response');
  const s = (v) => (v == null ? '–' : v < 120 ? v.toFixed(0) + ' s' : (v / 60).toFixed(1) + ' min');
  $('#response-table tbody').innerHTML = r.aggregates.map((a) => `<tr><td>${esc(a.by)}</td><td>${esc(a.key)}</td><td>${a.events}</td><td>${a.acked}</td>
    <td>${(100 * a.within_target).toFixed(0)} %</td><td>${s(a.median_ack_s)}</td><td>${a.resolved}</td><td>${s(a.median_resolve_s)}</td></tr>`).join('');
}

async function start() {
  me = await api('/api/me');
  $('#who').textContent = `${me.username} (${me.role})`;
  // the zone editor and the users page load this file for api(), post() and me only
  if (!$('#tab-alerts')) return;
  document.querySelectorAll('.admin-only').forEach((x) => { x.hidden = me.role !== 'admin'; });
  document.querySelectorAll('.operator-only').forEach((x) => { x.hidden = me.role === 'viewer'; });
  $('#logout').addEventListener('click', async () => { await post('/api/logout'); location.href = '/login'; });
  ['#f-kind', '#f-state', '#f-device', '#f-since', '#f-until'].forEach((s) => $(s).addEventListener('change', loadEvents));
  $('#ack-button').addEventListener('click', () => act(`/api/events/${encodeURIComponent(selected)}/ack`, { note: $('#ack-note').value }, 'Acknowledge'));
  $('#recheck-button').addEventListener('click', () => act(`/api/events/${encodeURIComponent(selected)}/recheck`, {}, 'Re-check'));
  $('#warn-button').addEventListener('click', () => act(`/api/events/${encodeURIComponent(selected)}/warn`, { speaker: $('#warn-speaker').value, message: $('#warn-message').value }, 'Warning'));
  window.addEventListener('hashchange', showTab);
  await loadDevicesQuiet();
  showTab();
  await loadEvents();
  connectLive();
}
start();
