// framebus viewer page: picks a camera, shows its MJPEG stream, polls live figures.
// Everything from the server is inserted with textContent, never as HTML.
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let camera = params.get("camera");

function fmt(value, unit, digits = 1) {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)} ${unit}`;
}

function showStream() {
  $("stream").src = `/stream.mjpg?camera=${encodeURIComponent(camera)}`;
  $("stream").alt = `Live video of camera ${camera}`;
}

async function loadCameras() {
  const response = await fetch("/api/cameras", { cache: "no-store" });
  const body = await response.json();
  if (!camera) camera = body.default;
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
}

async function refreshFigures() {
  try {
    const response = await fetch(`/api/stats?camera=${encodeURIComponent(camera)}`, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const s = await response.json();
    $("fps").textContent = fmt(s.fps, "fps");
    $("p50").textContent = fmt(s.latency_ms.p50, "ms");
    $("p99").textContent = fmt(s.latency_ms.p99, "ms");
    $("age").textContent = fmt(s.age_seconds, "s", 2);
    const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
    $("dropped").textContent = String(dropped);
    $("transport").textContent = `${s.transport}${s.upstream_connected ? "" : " (down)"}`;
    const signal = $("signal");
    signal.textContent = s.live ? `live · frame ${s.seq}` : "no signal";
    signal.className = s.live ? "" : "offline";
  } catch (err) {
    $("signal").textContent = `viewer unreachable (${err.message})`;
    $("signal").className = "offline";
  }
}

$("camera").addEventListener("change", (event) => {
  camera = event.target.value;
  history.replaceState(null, "", `?camera=${encodeURIComponent(camera)}`);
  showStream();
  refreshFigures();
});

loadCameras().then(() => {
  showStream();
  refreshFigures();
  setInterval(refreshFigures, 1000);
  setInterval(loadCameras, 5000);
});
