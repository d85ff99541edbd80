// framebus viewer page: one camera with live figures, or a grid of every camera (?view=grid).
// Everything that comes from the server is inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const gridView = params.get("view") === "grid";
// Each MJPEG <img> holds one HTTP/1.1 connection open and browsers allow ~6 per host, so past
// this many tiles the grid refreshes snapshots instead (stats requests still need a connection).
const MAX_STREAMED_TILES = 4;
const SNAPSHOT_INTERVAL_MS = 250;
// Snapshot tiles ask for this width: the viewer renders it once per frame (sizes on demand).
const TILE_WIDTH = 320;
let camera = params.get("camera");
let viewerLost = false;
const timers = [];

// 401/403 from the viewer: the token (cookie) is missing, expired or does not cover the camera.
class NotAuthorised extends Error {}

const fmt = (value, unit, digits = 1) =>
  value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)} ${unit}`;
const enc = encodeURIComponent;
// framing=browser: the viewer sends each part's end in a way Chromium paints at once.
const streamUrl = (name) => `/stream.mjpg?camera=${enc(name)}&framing=browser`;

function setPill(state, text) {
  $("pill").className = `pill ${state}`;
  $("pill").textContent = text;
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (response.status === 401) throw new NotAuthorised("Your access token is missing or has expired.");
  if (response.status === 403) throw new NotAuthorised("Your access token does not allow this camera.");
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

// A clear "not authorised" notice instead of a broken picture; polling stops.
function showNotAuthorised(reason) {
  for (const timer of timers) clearInterval(timer);
  for (const img of document.querySelectorAll("main img")) img.removeAttribute("src");
  $("single").hidden = true;
  $("grid").hidden = true;
  $("denied").hidden = false;
  $("denied-reason").textContent = reason;
  setPill("offline", "not authorised");
  document.title = "Not authorised · framebus viewer";
}

// --- camera list and picker ---------------------------------------------------------------

async function loadCameras() {
  const body = await getJson("/api/cameras");
  if (!camera) camera = body.default;
  if (!camera) throw new NotAuthorised("Your access token does not allow any camera of this viewer.");
  const select = $("camera");
  const known = new Set([...select.options].map((o) => o.value));
  for (const entry of body.cameras) {
    if (known.has(entry.camera)) continue;
    const option = document.createElement("option");
    option.value = entry.camera;
    option.textContent = entry.camera;
    select.appendChild(option);
  }
  select.value = camera;
  return body.cameras;
}

function setupControls() {
  $("camera").addEventListener("change", (event) => {
    location.search = `?camera=${enc(event.target.value)}`;
  });
  const mode = $("mode");
  if (gridView) {
    mode.textContent = "Single camera";
    mode.href = camera ? `?camera=${enc(camera)}` : "/";
  }
}

// --- single camera ------------------------------------------------------------------------

function showStream() {
  const img = $("stream");
  img.src = `${streamUrl(camera)}&t=${Date.now()}`;
  img.alt = `Live video of camera ${camera}, 600 by 600 pixels`;
  document.title = `${camera} · framebus viewer`;
}

function showFigures(s) {
  $("fps").textContent = fmt(s.fps, "fps");
  $("p50").textContent = fmt(s.latency_ms.p50, "ms");
  $("p99").textContent = fmt(s.latency_ms.p99, "ms");
  $("age").textContent = fmt(s.age_seconds, "s", s.age_seconds !== null && s.age_seconds < 10 ? 2 : 0);
  const dropped = Object.entries(s.dropped);
  $("dropped").textContent = String(dropped.reduce((sum, [, n]) => sum + n, 0));
  $("dropped").title = dropped.map(([reason, n]) => `${reason}: ${n}`).join(", ") || "none";
  $("transport").textContent = s.upstream_connected ? s.transport : `${s.transport} (upstream down)`;
  $("seq").textContent = s.seq === null ? "–" : String(s.seq);
  $("clients").textContent = String(s.clients);
}

function showSignal(s) {
  $("badge").hidden = s.live;
  if (s.live) {
    setPill("live", `live · ${camera}`);
    $("signal").textContent = `Camera ${camera}: live, frame ${s.seq}`;
  } else {
    setPill("offline", `no signal · ${camera}`);
    const since = s.age_seconds === null ? "no frame received yet" : `last frame ${Math.round(s.age_seconds)} s ago`;
    $("signal").textContent = `Camera ${camera}: no signal (${since})`;
  }
}

async function refreshSingle() {
  try {
    const s = await getJson(`/api/stats?camera=${enc(camera)}`);
    if (viewerLost) showStream(); // the viewer came back: the old MJPEG response has ended
    viewerLost = false;
    showFigures(s);
    showSignal(s);
  } catch (err) {
    if (err instanceof NotAuthorised) return showNotAuthorised(err.message);
    viewerLost = true;
    setPill("offline", "viewer unreachable");
    $("signal").textContent = `Viewer unreachable (${err.message}); retrying`;
  }
}

function startSingle() {
  $("stream").addEventListener("error", () => {
    viewerLost = true; // reconnect on the next successful stats poll
  });
  showStream();
  refreshSingle();
  timers.push(setInterval(refreshSingle, 1000));
  timers.push(setInterval(() => loadCameras().catch(() => {}), 5000));
}

// --- grid of all cameras ------------------------------------------------------------------

const tiles = new Map();

function addTile(name, index) {
  const node = $("tile-template").content.firstElementChild.cloneNode(true);
  node.querySelector(".tile-link").href = `?camera=${enc(name)}`;
  node.querySelector(".tile-name").textContent = name;
  const img = node.querySelector("img");
  img.alt = `Live video of camera ${name}`;
  if (index < MAX_STREAMED_TILES) {
    node.dataset.stream = streamUrl(name);
    img.src = node.dataset.stream;
  } else {
    // One snapshot at a time per tile: the next request waits until this one has painted.
    const next = () => setTimeout(() => (img.src = `/snapshot.jpg?camera=${enc(name)}&width=${TILE_WIDTH}&t=${Date.now()}`), SNAPSHOT_INTERVAL_MS);
    img.addEventListener("load", next);
    img.addEventListener("error", next);
    next();
  }
  $("tiles").appendChild(node);
  tiles.set(name, node);
  return node;
}

function updateTile(node, entry) {
  node.classList.toggle("offline", !entry.live);
  node.querySelector(".badge").hidden = entry.live;
  const state = entry.live ? `live · ${fmt(entry.fps, "fps")}` : "no signal";
  node.querySelector(".tile-state").textContent = state;
}

async function refreshGrid() {
  try {
    const cameras = await loadCameras();
    if (viewerLost) restartTileStreams();
    viewerLost = false;
    for (const entry of cameras) {
      updateTile(tiles.get(entry.camera) ?? addTile(entry.camera, tiles.size), entry);
    }
    const live = cameras.filter((c) => c.live).length;
    setPill(live ? "live" : "offline", `${live} of ${cameras.length} cameras live`);
  } catch (err) {
    if (err instanceof NotAuthorised) return showNotAuthorised(err.message);
    viewerLost = true;
    setPill("offline", "viewer unreachable");
  }
}

function restartTileStreams() {
  for (const node of tiles.values()) {
    if (node.dataset.stream) node.querySelector("img").src = `${node.dataset.stream}&t=${Date.now()}`;
  }
}

function startGrid() {
  $("single").hidden = true;
  $("grid").hidden = false;
  document.title = "All cameras · framebus viewer";
  refreshGrid();
  timers.push(setInterval(refreshGrid, 2000));
}

loadCameras()
  .then(
    () => true,
    (err) => {
      if (err instanceof NotAuthorised) {
        showNotAuthorised(err.message);
        return false;
      }
      setPill("offline", "viewer unreachable");
      return true;
    },
  )
  .then((start) => {
    if (!start) return;
    if (!camera) camera = "cam0";
    setupControls();
    gridView ? startGrid() : startSingle();
  });
