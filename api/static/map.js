// The live map: MapLibre GL JS served by this process, every datum conversion done by the API.
// Data: GET /api/v1/map/config, /api/v1/map/cars, /api/v1/map/vehicles/{key}[/track],
// /api/v1/fences?crs=, /api/v1/alerts, WS /api/v1/alerts/stream?changes=true&key=KEY.
"use strict";
const $ = (id) => document.getElementById(id);
const COLORS = { moving: "#2fa84f", parked: "#2b5fd9", offline: "#7a8aa0", alarm: "#d33" };
const KIND_COLOR = { hotspot: "#e4572e", allowed_area: "#2fa84f", zone: "#8a4fd9" };
const DAY_MS = 86400000;
const S = {
  key: localStorage.getItem("lienwatch.key") || "", config: null, map: null, crs: "wgs84",
  alerts: new Map(), selected: null, track: null, playing: null, fences: null,
  draw: null, edit: null, ws: null, wsRetry: 1000, markers: new Map(), ready: false,
};
window.lienwatch = S;  // for the browser tests: the page's state

// -- the API ------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + S.key, ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, { ...options, headers });
  $("api-dot").className = "dot " + (answer.status < 500 ? "ok" : "bad");
  if (answer.status === 401) { askKey("That key was refused."); throw new Error("unauthorized"); }
  const type = answer.headers.get("content-type") || "";
  const body = type.includes("json") ? await answer.json() : await answer.text();
  if (!answer.ok) throw new Error((body && body.detail) || answer.statusText);
  return body;
}

function askKey(message) {
  $("login-error").textContent = message || "";
  $("login").style.display = "grid";
  $("key").focus();
}

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
}

// -- the map and its layers ---------------------------------------------------------------
function circlePolygon(lon, lat, radius) {
  const ring = [], dLat = radius / 111320, dLon = dLat / Math.cos(lat * Math.PI / 180);
  for (let i = 0; i <= 64; i++) {
    const a = (i / 64) * 2 * Math.PI;
    ring.push([lon + dLon * Math.cos(a), lat + dLat * Math.sin(a)]);
  }
  return { type: "Polygon", coordinates: [ring] };
}

function fenceShapes(collection) {
  // A circle fence is a Point with radius_m: drawn as its polygon; an administrative fence
  // (no geometry) names its unit and is not drawn.
  const features = [];
  for (const f of collection.features || []) {
    if (!f.geometry) continue;
    const p = f.properties || {};
    const g = f.geometry.type === "Point" && p.radius_m
      ? circlePolygon(f.geometry.coordinates[0], f.geometry.coordinates[1], p.radius_m)
      : f.geometry;
    features.push({ type: "Feature", geometry: g, properties: { id: p.id, kind: p.kind, name: p.name || "" } });
  }
  return { type: "FeatureCollection", features };
}

const EMPTY = { type: "FeatureCollection", features: [] };

function buildMap() {
  const config = S.config;
  const style = {
    version: 8, sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#e9eef3" } }],
  };
  if (config.tiles) {
    style.sources.tiles = { type: "raster", tiles: [config.tiles.url], tileSize: 256,
      attribution: config.tiles.attribution || "" };
    style.layers.push({ id: "tiles", type: "raster", source: "tiles" });
  }
  maplibregl.setWorkerUrl("/static/vendor/maplibre/maplibre-gl-csp-worker.js");
  const map = new maplibregl.Map({
    container: "map", style, center: [120.2, 30.25], zoom: 9,
    attributionControl: config.tiles ? {} : false,
    transformRequest: (url) => url.startsWith(location.origin)
      ? { url, headers: { Authorization: "Bearer " + S.key } } : { url },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-left");
  map.addControl(new maplibregl.ScaleControl(), "bottom-left");
  S.map = map;
  map.on("load", () => {
    if (config.boundaries) {
      map.addSource("boundaries", { type: "geojson",
        data: location.origin + config.boundaries.url.replace("{level}", "province") });
      map.addLayer({ id: "boundaries", type: "line", source: "boundaries",
        paint: { "line-color": "#8c96a5", "line-width": 1 } });
    }
    map.addSource("fences", { type: "geojson", data: EMPTY });
    map.addLayer({ id: "fences-fill", type: "fill", source: "fences", paint: {
      "fill-color": ["match", ["get", "kind"], "hotspot", KIND_COLOR.hotspot, "allowed_area", KIND_COLOR.allowed_area, KIND_COLOR.zone],
      "fill-opacity": 0.15 } });
    map.addLayer({ id: "fences-line", type: "line", source: "fences", paint: {
      "line-color": ["match", ["get", "kind"], "hotspot", KIND_COLOR.hotspot, "allowed_area", KIND_COLOR.allowed_area, KIND_COLOR.zone],
      "line-width": 1.5 } });
    map.addSource("track", { type: "geojson", data: EMPTY });
    map.addLayer({ id: "track-line", type: "line", source: "track",
      paint: { "line-color": "#1d2430", "line-width": 2, "line-opacity": 0.6 } });
    map.addSource("track-head", { type: "geojson", data: EMPTY });
    map.addLayer({ id: "track-head", type: "circle", source: "track-head", paint: {
      "circle-radius": 7, "circle-color": "#f0a202", "circle-stroke-color": "#1d2430", "circle-stroke-width": 2 } });
    map.addSource("cars", { type: "geojson", data: EMPTY, cluster: true, clusterRadius: 40, clusterMaxZoom: 14,
      clusterProperties: Object.fromEntries(Object.keys(COLORS).map((s) =>
        [s, ["+", ["case", ["==", ["get", "state"], s], 1, 0]]])) });
    map.addLayer({ id: "clusters", type: "circle", source: "cars", filter: ["has", "point_count"], paint: {
      "circle-color": ["case", [">", ["get", "alarm"], 0], COLORS.alarm, [">", ["get", "moving"], 0], COLORS.moving,
        [">", ["get", "parked"], 0], COLORS.parked, COLORS.offline],
      "circle-radius": ["step", ["get", "point_count"], 14, 10, 18, 50, 24],
      "circle-stroke-color": "#fff", "circle-stroke-width": 2, "circle-opacity": 0.9 } });
    map.addLayer({ id: "cars", type: "circle", source: "cars", filter: ["!", ["has", "point_count"]], paint: {
      "circle-color": ["match", ["get", "state"], "moving", COLORS.moving, "parked", COLORS.parked,
        "alarm", COLORS.alarm, COLORS.offline],
      "circle-radius": 7,
      "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } });
    map.addSource("draw", { type: "geojson", data: EMPTY });
    map.addLayer({ id: "draw-fill", type: "fill", source: "draw", filter: ["==", ["geometry-type"], "Polygon"],
      paint: { "fill-color": "#f0a202", "fill-opacity": 0.2 } });
    map.addLayer({ id: "draw-line", type: "line", source: "draw",
      paint: { "line-color": "#f0a202", "line-width": 2, "line-dasharray": [2, 1] } });
    map.addLayer({ id: "draw-points", type: "circle", source: "draw", filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-radius": 5, "circle-color": "#fff", "circle-stroke-color": "#f0a202", "circle-stroke-width": 2 } });
    wireMap(map);
    S.ready = true;
    refresh(true);
  });
}

function wireMap(map) {
  map.on("click", "clusters", async (e) => {
    if (S.draw || S.edit) return;
    const f = e.features[0];
    const zoom = await map.getSource("cars").getClusterExpansionZoom(f.properties.cluster_id);
    map.easeTo({ center: f.geometry.coordinates, zoom });
  });
  map.on("click", "cars", (e) => { if (!S.draw && !S.edit) select(e.features[0].properties.key); });
  map.on("click", "fences-fill", (e) => {
    if (S.draw || S.edit || map.queryRenderedFeatures(e.point, { layers: ["cars", "clusters"] }).length) return;
    showFence(e.features[0].properties.id);
  });
  for (const layer of ["cars", "clusters"]) {
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
  map.on("click", (e) => drawClick(e.lngLat));
  map.on("dblclick", (e) => { if (S.draw && S.draw.shape === "polygon") { e.preventDefault(); finishDraw(); } });
  map.on("mousedown", "draw-points", (e) => startDrag(e));
  map.on("idle", updateClusterCounts);
}

function updateClusterCounts() {
  // Cluster sizes as HTML labels: the page ships no glyphs, so no text layer can draw them.
  for (const marker of S.markers.values()) marker.remove();
  S.markers.clear();
  for (const f of S.map.queryRenderedFeatures({ layers: ["clusters"] })) {
    const p = f.properties;
    if (S.markers.has(p.cluster_id)) continue;
    const el = document.createElement("div");
    el.className = "cluster-count";
    el.textContent = p.point_count;
    S.markers.set(p.cluster_id, new maplibregl.Marker({ element: el }).setLngLat(f.geometry.coordinates).addTo(S.map));
  }
}

// -- cars, fences, alerts ------------------------------------------------------------------
async function loadCars() {
  const cars = await api("/api/v1/map/cars?crs=" + S.crs);
  S.cars = cars;
  if (S.ready) S.map.getSource("cars").setData(cars);
  $("legend").innerHTML = Object.entries(COLORS).map(([s, c]) =>
    `<i style="background:${c}"></i>${s} <b data-state="${s}">${cars.counts[s]}</b>`).join("");
  return cars;
}

async function loadFences() {
  const fences = await api("/api/v1/fences?crs=" + S.crs);
  S.fences = fences;
  if (S.ready) S.map.getSource("fences").setData(fenceShapes(fences));
}

async function loadAlerts() {
  const since = new Date(Date.now() - DAY_MS).toISOString();
  const list = await api("/api/v1/alerts?limit=500&since=" + encodeURIComponent(since));
  for (const a of list) S.alerts.set(a.id, a);
  renderAlerts();
}

function alertItem(a, fresh) {
  const li = document.createElement("li");
  li.className = "sev-" + a.severity + (fresh ? " new" : "");
  li.dataset.id = a.id;
  li.dataset.state = a.state;
  const who = a.assignee ? ` · assigned to ${esc(a.assignee)}` : "";
  li.innerHTML = `<div class="title"><b>${esc(a.type)}</b> ${esc(a.vehicle_id)}
      <span class="muted">${esc(a.time.slice(5, 19).replace("T", " "))}</span></div>
    <div class="muted">${esc(a.state)}${who}${a.fence_id ? " · fence " + esc(a.fence_id) : ""}</div>`;
  const actions = document.createElement("div");
  actions.className = "actions";
  if (a.state === "open") actions.append(button("Acknowledge", () => move(a.id, "acknowledge"), "ack"));
  if (a.state !== "resolved") {
    const input = document.createElement("input");
    input.placeholder = "assignee";
    input.value = a.assignee || "";
    actions.append(input, button("Assign", () => assign(a.id, input.value), "assign"),
      button("Resolve", () => move(a.id, "resolve"), "resolve"));
  }
  li.append(actions);
  li.querySelector(".title").onclick = () => select(a.vehicle_id);
  return li;
}

function button(text, onclick, role) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.dataset.action = role;
  b.onclick = onclick;
  return b;
}

function renderAlerts(freshId) {
  const sorted = [...S.alerts.values()].sort((a, b) => b.id - a.id).slice(0, 300);
  $("alerts").replaceChildren(...sorted.map((a) => alertItem(a, a.id === freshId)));
  const open = sorted.filter((a) => a.state === "open").length;
  $("alert-count").textContent = `${open} open · ${sorted.length} in 24 h`;
}

async function move(id, action) {
  try {
    const moved = await api(`/api/v1/alerts/${id}/${action}`, { method: "POST", body: "{}" });
    S.alerts.set(id, moved);
    renderAlerts();
    if (S.selected) select(S.selected, false);
  } catch (err) { alert(`${action}: ${err.message}`); }
}

async function assign(id, who) {
  try {
    const body = JSON.stringify({ assignee: who.trim() || null });
    S.alerts.set(id, await api(`/api/v1/alerts/${id}/assign`, { method: "POST", body }));
    renderAlerts();
  } catch (err) { alert(`assign: ${err.message}`); }
}

function connectStream() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/alerts/stream?changes=true&key=${encodeURIComponent(S.key)}`);
  S.ws = ws;
  ws.onopen = () => { $("ws-dot").className = "dot ok"; S.wsRetry = 1000; };
  ws.onmessage = (m) => {
    const a = JSON.parse(m.data);
    const fresh = !S.alerts.has(a.id);
    S.alerts.set(a.id, a);
    renderAlerts(fresh ? a.id : undefined);
    if (fresh) loadCars().catch(() => {});
    if (S.selected === a.vehicle_id) select(S.selected, false);
  };
  ws.onclose = () => {
    $("ws-dot").className = "dot bad";
    setTimeout(connectStream, S.wsRetry);
    S.wsRetry = Math.min(S.wsRetry * 2, 30000);
  };
}

// -- the car panel and playback -------------------------------------------------------------
async function select(key, fly = true) {
  S.selected = key;
  let car;
  try { car = await api(`/api/v1/map/vehicles/${encodeURIComponent(key)}?crs=${S.crs}`); }
  catch (err) { $("panel").hidden = false; $("panel").textContent = err.message; return; }
  if (S.selected !== key) return;
  if (fly && car.position) S.map.easeTo({ center: [car.position.lon, car.position.lat], zoom: Math.max(S.map.getZoom(), 13) });
  const loans = car.loans.map((l) => `<tr><td>${esc(l.loan_no)}</td><td>${esc(l.borrower)}</td>
      <td>${esc(l.state)}${l.bucket ? " · " + esc(l.bucket) + " · " + l.dpd + " dpd" : ""}</td></tr>`).join("")
    || `<tr><td class="muted">no loan</td></tr>`;
  const devices = car.devices.map((d) => `<tr><td>${esc(d.terminal)}</td>
      <td>${d.online === true ? "online" : d.online === false ? "offline" : ""}</td>
      <td class="muted">${esc((d.latest && d.latest.time || d.last_seen || "never").slice(0, 19).replace("T", " "))}</td></tr>`).join("");
  const alerts = car.open_alerts.map((a) => `<tr><td>${esc(a.type)}</td><td>${esc(a.state)}</td>
      <td class="muted">${esc(a.time.slice(5, 16).replace("T", " "))}</td></tr>`).join("")
    || `<tr><td class="muted">none</td></tr>`;
  const pos = car.position ? `${car.position.speed_kmh} km/h · ${esc(car.position.time.slice(0, 19).replace("T", " "))}` : "no fix yet";
  $("panel").hidden = false;
  $("panel").innerHTML = `<h3>${esc(car.vehicle_id || car.key)}
      <span class="state" style="background:${COLORS[car.state]}">${car.state}</span></h3>
    <div class="muted">${pos}</div>
    <b>Loans</b><table>${loans}</table>
    <b>Trackers</b><table>${devices}</table>
    <b>Open alerts</b><table>${alerts}</table>
    <b>Places</b><table id="panel-places"><tr><td class="muted">…</td></tr></table>
    <div class="actions"><select id="track-range"><option value="3600000">last hour</option>
      <option value="21600000">last 6 h</option><option value="86400000" selected>last 24 h</option>
      <option value="604800000">last 7 days</option></select>
      <button id="track-load" type="button">Play track</button>
      <button id="panel-close" type="button" class="plain">Close</button></div>`;
  $("track-load").onclick = () => loadTrack(key, Number($("track-range").value));
  if (car.vehicle_id) loadPlaces(car.vehicle_id);
  else $("panel-places").innerHTML = `<tr><td class="muted">a tracker without a car</td></tr>`;
  $("panel-close").onclick = () => { S.selected = null; $("panel").hidden = true; };
}

async function loadPlaces(vehicle) {
  // Where a collector finds the car: home, work and frequent places with the best hour.
  let rows;
  try {
    const found = await api(`/api/v1/vehicles/${encodeURIComponent(vehicle)}/places`);
    rows = found.places.slice(0, 5).map((p) => `<tr><td>${esc(p.kind)}</td>
      <td>${esc(p.place ? p.place.district : p.lat.toFixed(4) + ", " + p.lon.toFixed(4))}</td>
      <td class="muted">best ${String(p.best_hour.hour).padStart(2, "0")}:00</td></tr>`).join("");
  } catch (err) { rows = `<tr><td class="muted">${esc(err.message)}</td></tr>`; }
  if ($("panel-places") && S.selected === vehicle) {
    $("panel-places").innerHTML = rows || `<tr><td class="muted">none learned yet</td></tr>`;
  }
}

async function loadTrack(key, spanMs) {
  const to = Date.now(), from = to - spanMs;
  const track = await api(`/api/v1/map/vehicles/${encodeURIComponent(key)}/track?crs=${S.crs}` +
    `&from=${Math.floor(from / 1000)}&to=${Math.ceil(to / 1000)}`);
  S.track = track;
  const coords = track.points.map((p) => [p[0], p[1]]);
  S.map.getSource("track").setData({ type: "Feature", properties: {},
    geometry: { type: "LineString", coordinates: coords.length > 1 ? coords : [] } });
  $("playback").hidden = false;
  $("slider").max = Math.max(0, track.points.length - 1);
  $("slider").value = 0;
  showPoint(0);
  if (coords.length) {
    const b = coords.reduce((acc, c) => acc.extend(c), new maplibregl.LngLatBounds(coords[0], coords[0]));
    S.map.fitBounds(b, { padding: 60, maxZoom: 15, duration: 0 });
  }
}

function showPoint(i) {
  const p = S.track && S.track.points[i];
  if (!p) { $("play-time").textContent = "no fix in this range"; S.map.getSource("track-head").setData(EMPTY); return; }
  S.head = [p[0], p[1]];
  S.map.getSource("track-head").setData({ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: S.head } });
  const when = new Date(p[2] + 8 * 3600000).toISOString().slice(0, 19).replace("T", " ");
  $("play-time").textContent = `${when} (GMT+8) · ${p[3]} km/h · ${i + 1}/${S.track.points.length}`;
}

function togglePlay() {
  if (S.playing) { clearInterval(S.playing); S.playing = null; $("play").textContent = "Play"; return; }
  $("play").textContent = "Pause";
  S.playing = setInterval(() => {
    const slider = $("slider"), next = Number(slider.value) + 1;
    if (next > Number(slider.max)) { togglePlay(); return; }
    slider.value = next;
    showPoint(next);
  }, 100);
}

// -- drawing and editing fences -------------------------------------------------------------
function setDrawing(on, hint) {
  $("draw-finish").hidden = !on;
  $("draw-cancel").hidden = !on;
  $("hint").hidden = !hint;
  $("hint").textContent = hint || "";
  S.map.doubleClickZoom[on ? "disable" : "enable"]();
}

function startDraw(shape) {
  S.edit = null;
  S.draw = { shape, points: [], radius: null };
  setDrawing(true, shape === "polygon" ? "Click the corners; Finish (or double-click) closes it" : "Click the centre, then a point on the edge");
  renderDraw();
}

function drawClick(lngLat) {
  const d = S.draw;
  if (!d) return;
  const p = [lngLat.lng, lngLat.lat];
  if (d.shape === "polygon") d.points.push(p);
  else if (!d.points.length) d.points.push(p);
  else { d.radius = metres(d.points[0], p); finishDraw(); return; }
  renderDraw();
}

function metres(a, b) {
  const r = 6371008.8, rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad, dLon = (b[0] - a[0]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

function sketch() {
  const d = S.draw || S.edit;
  if (!d) return EMPTY;
  const features = d.points.map((p, i) => ({ type: "Feature", properties: { i }, geometry: { type: "Point", coordinates: p } }));
  if (d.shape === "circle" && d.points.length && d.radius) {
    features.push({ type: "Feature", properties: {}, geometry: circlePolygon(d.points[0][0], d.points[0][1], d.radius) });
  } else if (d.shape === "polygon" && d.points.length > 1) {
    const ring = [...d.points, d.points[0]];
    features.push({ type: "Feature", properties: {}, geometry: d.points.length > 2
      ? { type: "Polygon", coordinates: [ring] } : { type: "LineString", coordinates: d.points } });
  }
  return { type: "FeatureCollection", features };
}

function renderDraw() { S.map.getSource("draw").setData(sketch()); }

function finishDraw() {
  const d = S.draw;
  if (!d) return;
  d.points = d.points.filter((p, i) => i === 0 || metres(p, d.points[i - 1]) > 0.5);
  if ((d.shape === "polygon" && d.points.length < 3) || (d.shape === "circle" && !d.radius)) {
    $("hint").textContent = d.shape === "polygon" ? "A polygon needs three corners at least" : "Click a point on the edge";
    return;
  }
  S.draw = null;
  S.edit = { ...d, id: "fence-" + Date.now().toString(36), name: "", kind: "zone", notify: ["enter", "exit"], isNew: true };
  setDrawing(false);
  fenceForm();
}

function showFence(id) {
  const f = (S.fences.features || []).find((x) => x.properties.id === id);
  if (!f) return;
  const p = f.properties, g = f.geometry;
  const circle = g.type === "Point";
  S.edit = { id: p.id, name: p.name || "", kind: p.kind, notify: p.notify || ["enter", "exit"], isNew: false,
    shape: circle ? "circle" : "polygon", radius: circle ? p.radius_m : null,
    points: circle ? [g.coordinates] : g.coordinates[0].slice(0, -1), extra: p };
  fenceForm();
}

function fenceForm() {
  const e = S.edit;
  renderDraw();
  const kinds = ["zone", "hotspot", "allowed_area"].map((k) => `<option ${k === e.kind ? "selected" : ""}>${k}</option>`).join("");
  $("panel").hidden = false;
  $("panel").innerHTML = `<h3>${e.isNew ? "New fence" : "Fence " + esc(e.id)}</h3>
    <div class="muted">Drag a corner${e.shape === "circle" ? " (the centre)" : ""} to move it.</div>
    <label>id <input id="fence-id" value="${esc(e.id)}" ${e.isNew ? "" : "disabled"}></label>
    <label>name <input id="fence-name" value="${esc(e.name)}"></label>
    <label>kind <select id="fence-kind">${kinds}</select></label>
    ${e.shape === "circle" ? `<label>radius (m) <input id="fence-radius" type="number" min="1" value="${Math.round(e.radius)}"></label>` : ""}
    <div class="actions"><button id="fence-save" type="button">Save</button>
      ${e.isNew ? "" : '<button id="fence-delete" type="button" class="plain">Delete</button>'}
      <button id="fence-cancel" type="button" class="plain">Cancel</button></div>
    <div class="muted" id="fence-error"></div>`;
  if ($("fence-radius")) $("fence-radius").oninput = () => { e.radius = Number($("fence-radius").value) || e.radius; renderDraw(); };
  $("fence-save").onclick = saveFence;
  $("fence-cancel").onclick = endEdit;
  if ($("fence-delete")) $("fence-delete").onclick = deleteFence;
}

function endEdit() {
  S.edit = null;
  renderDraw();
  $("panel").hidden = true;
}

async function saveFence() {
  const e = S.edit;
  const properties = { ...(e.extra || {}), id: $("fence-id").value.trim(), kind: $("fence-kind").value };
  const name = $("fence-name").value.trim();
  if (name) properties.name = name; else delete properties.name;
  if (properties.kind === "zone") properties.notify = e.notify; else delete properties.notify;
  let geometry;
  if (e.shape === "circle") {
    geometry = { type: "Point", coordinates: e.points[0] };
    properties.radius_m = Math.round(e.radius);
  } else {
    geometry = { type: "Polygon", coordinates: [[...e.points, e.points[0]]] };
    delete properties.radius_m;
  }
  try {
    await api(`/api/v1/fences?crs=${S.crs}`, { method: "POST",
      body: JSON.stringify({ type: "Feature", properties, geometry }) });
    endEdit();
    await loadFences();
  } catch (err) { $("fence-error").textContent = err.message; }
}

async function deleteFence() {
  try {
    await api(`/api/v1/fences/${encodeURIComponent(S.edit.id)}`, { method: "DELETE" });
    endEdit();
    await loadFences();
  } catch (err) { $("fence-error").textContent = err.message; }
}

function startDrag(e) {
  if (!S.edit) return;
  e.preventDefault();
  const i = e.features[0].properties.i, map = S.map;
  map.getCanvas().style.cursor = "grabbing";
  const onMove = (m) => { S.edit.points[i] = [m.lngLat.lng, m.lngLat.lat]; renderDraw(); };
  map.on("mousemove", onMove);
  map.once("mouseup", () => { map.off("mousemove", onMove); map.getCanvas().style.cursor = ""; });
}

// -- start ----------------------------------------------------------------------------------
async function refresh(first) {
  try {
    await Promise.all([loadCars(), loadFences(), first ? loadAlerts() : Promise.resolve()]);
    if (first && S.cars.features.length) {
      const coords = S.cars.features.map((f) => f.geometry.coordinates);
      const b = coords.reduce((acc, c) => acc.extend(c), new maplibregl.LngLatBounds(coords[0], coords[0]));
      S.map.fitBounds(b, { padding: 80, maxZoom: 13, duration: 0 });
    }
  } catch (err) { if (err.message !== "unauthorized") console.warn(err); }
  if (first) S.loaded = true;  // the first view is set: cars, fences and alerts are in
}

async function start() {
  if (!S.key) { askKey(); return; }
  try { S.config = await api("/api/v1/map/config"); } catch (err) { return; }
  $("login").style.display = "none";
  S.crs = S.config.crs;
  buildMap();
  connectStream();
  setInterval(() => refresh(false), 5000);
}

$("login-form").onsubmit = (e) => {
  e.preventDefault();
  S.key = $("key").value.trim();
  localStorage.setItem("lienwatch.key", S.key);
  location.reload();
};
$("logout").onclick = () => { localStorage.removeItem("lienwatch.key"); location.reload(); };
$("draw-polygon").onclick = () => startDraw("polygon");
$("draw-circle").onclick = () => startDraw("circle");
$("draw-finish").onclick = finishDraw;
$("draw-cancel").onclick = () => { S.draw = null; setDrawing(false); renderDraw(); };
$("play").onclick = togglePlay;
$("slider").oninput = () => showPoint(Number($("slider").value));
$("play-close").onclick = () => {
  if (S.playing) togglePlay();
  $("playback").hidden = true;
  S.map.getSource("track").setData(EMPTY);
  S.map.getSource("track-head").setData(EMPTY);
};
start();
