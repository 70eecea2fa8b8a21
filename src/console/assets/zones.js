// hawkeye console: the zone editor. Draws the camera's zones (from the device's retained
// config) on a live snapshot (cmd/snapshot), lets an installer draw and drag polygons, and
// sends the camera's whole zone list with cmd/zones; shows the device's answer.
'use strict';
(() => {
  const $ = (s) => document.querySelector(s);
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const { api, post } = window.hawkeyeApi;
  const canvas = $('#zone-canvas'), g = canvas.getContext('2d');
  let devices = [], zones = [], editing = null, points = [], drag = -1, picture = null;

  const stripNulls = (v) => Array.isArray(v) ? v.map(stripNulls)
    : (v && typeof v === 'object') ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, stripNulls(x)])) : v;
  const device = () => devices.find((d) => d.device_id === $('#z-device').value) || {};
  const camera = () => ((device().config || {}).cameras || []).find((c) => c.camera_id === $('#z-camera').value);

  function draw() {
    g.clearRect(0, 0, canvas.width, canvas.height);
    if (picture) g.drawImage(picture, 0, 0, canvas.width, canvas.height);
    else { g.fillStyle = '#333'; g.fillRect(0, 0, canvas.width, canvas.height); g.fillStyle = '#ccc'; g.fillText('take a live snapshot to draw on the picture', 20, 30); }
    const poly = (pts, colour, label) => {
      if (!pts.length) return;
      g.strokeStyle = colour; g.fillStyle = colour; g.lineWidth = 2; g.beginPath();
      pts.forEach(([x, y], i) => (i ? g.lineTo : g.moveTo).call(g, x * canvas.width, y * canvas.height));
      g.closePath(); g.stroke();
      if (label) g.fillText(label, pts[0][0] * canvas.width + 4, pts[0][1] * canvas.height + 12);
    };
    zones.forEach((z, i) => { if (i !== editing) poly(z.polygon, '#ffd400', z.id); });
    poly(points, '#00e0ff', $('#zf-id').value);
    g.fillStyle = '#00e0ff';
    points.forEach(([x, y]) => g.fillRect(x * canvas.width - 4, y * canvas.height - 4, 8, 8));
    $('#zf-points').textContent = points.length + ' points: ' + points.map(([x, y]) => `(${x.toFixed(3)}, ${y.toFixed(3)})`).join(' ');
  }

  function listZones() {
    $('#zone-list tbody').innerHTML = zones.map((z, i) => `<tr data-zone="${esc(z.id)}"><td>${esc(z.id)}</td><td>${esc(z.kind)}</td><td>${esc((z.classes || []).join(', '))}</td>
      <td>${z.dwell_s}</td><td><button class="secondary edit" data-i="${i}">Edit</button></td></tr>`).join('');
    document.querySelectorAll('button.edit').forEach((b) => b.addEventListener('click', () => edit(+b.dataset.i)));
    draw();
  }

  function edit(i) {
    editing = i;
    const z = i === null ? { id: 'zone-' + (zones.length + 1), kind: 'loitering', classes: ['person'], dwell_s: 30, min_count: 1, polygon: [] } : zones[i];
    points = z.polygon.map((p) => [...p]);
    $('#zone-form').hidden = false;
    $('#zone-form-title').textContent = i === null ? 'New zone' : 'Zone ' + z.id;
    $('#zf-id').value = z.id; $('#zf-kind').value = z.kind; $('#zf-classes').value = (z.classes || []).join(', ');
    $('#zf-dwell').value = z.dwell_s; $('#zf-min-count').value = z.min_count ?? 1;
    draw();
  }

  function keep() {
    const z = Object.assign({}, editing === null ? {} : zones[editing], {
      id: $('#zf-id').value.trim(), kind: $('#zf-kind').value,
      classes: $('#zf-classes').value.split(',').map((s) => s.trim()).filter(Boolean),
      dwell_s: parseFloat($('#zf-dwell').value), min_count: parseInt($('#zf-min-count').value, 10) || 1,
      polygon: points.map(([x, y]) => [Math.round(x * 1e4) / 1e4, Math.round(y * 1e4) / 1e4]),
    });
    if (editing === null) zones.push(z); else zones[editing] = z;
    editing = null; points = []; $('#zone-form').hidden = true;
    listZones();
  }

  const at = (ev) => { const r = canvas.getBoundingClientRect(); return [(ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height]; };
  const near = ([x, y]) => points.findIndex(([px, py]) => Math.hypot((px - x) * canvas.width, (py - y) * canvas.height) < 8);
  canvas.addEventListener('mousedown', (ev) => {
    if ($('#zone-form').hidden) edit(null);
    const p = at(ev), i = near(p);
    if (i >= 0) { drag = i; return; }
    points.push(p.map((v) => Math.min(1, Math.max(0, v)))); draw();
  });
  canvas.addEventListener('mousemove', (ev) => { if (drag >= 0) { points[drag] = at(ev).map((v) => Math.min(1, Math.max(0, v))); draw(); } });
  window.addEventListener('mouseup', () => { drag = -1; });
  canvas.addEventListener('dblclick', (ev) => { const i = near(at(ev)); if (i >= 0) { points.splice(i, 1); draw(); } });

  function result(text, kind) { const m = $('#zone-result'); m.hidden = false; m.className = 'msg ' + (kind || ''); m.textContent = text; }

  async function waitFor(rid) {
    for (let i = 0; i < 120; i++) {
      const c = await api('/api/commands/' + encodeURIComponent(rid));
      if (c.ok !== null) return c;
      await new Promise((r) => setTimeout(r, 500));
    }
    return null;
  }

  async function save() {
    const cam = $('#z-camera').value;
    result('sending to the device…');
    try {
      const r = await post(`/api/devices/${encodeURIComponent(device().device_id)}/zones`, { camera_id: cam, zones: stripNulls(zones) });
      const c = await waitFor(r.request_id);
      if (!c) result('the device did not answer within a minute (it gets the command when it reconnects)', 'error');
      else if (c.ok) result(`applied by the device: ${c.result.zones} zone(s), kept in ${c.result.file}`, 'ok');
      else {
        // the device's answer: "N error(s); nothing was changed: e1; e2 …"
        const m = /^(\d+ error\(s\)); nothing was changed: (.*)$/s.exec(c.result.error);
        result(m ? `refused by the device, nothing changed: ${m[1]}\n- ` + m[2].split('; ').join('\n- ') : 'refused by the device, nothing changed:\n' + c.result.error, 'error');
      }
    } catch (err) { result(err.message, 'error'); }
  }

  async function snapshot() {
    const d = device().device_id, c = $('#z-camera').value;
    $('#z-snapshot-status').textContent = 'asking the camera…';
    try {
      const r = await post(`/api/devices/${encodeURIComponent(d)}/cameras/${encodeURIComponent(c)}/snapshot`);
      const res = await waitFor(r.request_id);
      if (!res || !res.ok) { $('#z-snapshot-status').textContent = 'no snapshot: ' + (res ? res.result.error : 'no answer'); return; }
      for (let i = 0; i < 40; i++) {
        const resp = await fetch(`/api/devices/${encodeURIComponent(d)}/cameras/${encodeURIComponent(c)}/snapshot`, { cache: 'no-store' });
        if (resp.ok) {
          const img = new Image();
          img.onload = () => { picture = img; canvas.width = img.naturalWidth; canvas.height = img.naturalHeight; draw();
            $('#z-snapshot-status').textContent = 'snapshot of ' + (resp.headers.get('x-snapshot-at') || 'now'); canvas.dataset.loaded = '1'; };
          img.src = URL.createObjectURL(await resp.blob());
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      $('#z-snapshot-status').textContent = 'the snapshot did not arrive';
    } catch (err) { $('#z-snapshot-status').textContent = err.message; }
  }

  function pickCamera() {
    const cam = camera();
    zones = cam ? JSON.parse(JSON.stringify(cam.zones || [])) : [];
    editing = null; points = []; picture = null; $('#zone-form').hidden = true; canvas.dataset.loaded = '';
    listZones();
  }

  async function init() {
    devices = await api('/api/devices');
    $('#z-device').innerHTML = devices.map((d) => `<option>${esc(d.device_id)}</option>`).join('');
    const cams = () => { $('#z-camera').innerHTML = ((device().config || {}).cameras || []).map((c) => `<option>${esc(c.camera_id)}</option>`).join(''); pickCamera(); };
    $('#z-device').addEventListener('change', cams);
    $('#z-camera').addEventListener('change', pickCamera);
    $('#z-snapshot').addEventListener('click', snapshot);
    $('#z-new').addEventListener('click', () => edit(null));
    $('#zf-apply').addEventListener('click', keep);
    $('#zf-delete').addEventListener('click', () => { if (editing !== null) zones.splice(editing, 1); editing = null; points = []; $('#zone-form').hidden = true; listZones(); });
    $('#z-save').addEventListener('click', save);
    cams();
  }
  // app.js fills in `me` first (its start() runs on load); wait for it
  const ready = setInterval(() => { if (window.hawkeyeApi.me()) { clearInterval(ready); init(); } }, 50);
})();
