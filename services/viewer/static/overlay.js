// framebus results overlay: the newest results of the shown camera, drawn over the live picture.
// Loaded after viewer.js; only the single-camera view has an overlay. Boxes arrive in
// source-frame pixels; /api/results says where the letterbox puts that frame (placement) and
// whether the result belongs to a frame close to the one on screen (matches).
"use strict";

(() => {
  const POLL_MS = 200;
  const img = document.getElementById("stream");
  const figures = document.getElementById("figures");
  if (!img || new URLSearchParams(location.search).get("view") === "grid") return;

  const canvas = document.createElement("canvas");
  canvas.id = "overlay";
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.setAttribute("aria-hidden", "true");
  // Same box as the <img>: the canvas scales with it.
  Object.assign(canvas.style, {
    position: "absolute", left: "0", top: "0", width: "100%", height: "100%", pointerEvents: "none",
  });
  img.insertAdjacentElement("afterend", canvas);

  const figure = document.createElement("div");
  const term = document.createElement("dt");
  term.textContent = "Algorithm latency";
  const latency = document.createElement("dd");
  latency.id = "algo-latency";
  latency.textContent = "–";
  figure.append(term, latency);
  figures?.appendChild(figure);

  const camera = () =>
    new URLSearchParams(location.search).get("camera") || document.getElementById("camera")?.value || "";

  function draw(body) {
    const ctx = canvas.getContext("2d");
    const place = body.placement;
    if (place && (canvas.width !== place.width || canvas.height !== place.height)) {
      canvas.width = place.width;
      canvas.height = place.height;
    }
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const boxes = body.matches ? body.result.boxes : [];
    ctx.lineWidth = 2;
    ctx.font = "13px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    for (const box of boxes) {
      const x = place.x + box.x * place.scale_x;
      const y = place.y + box.y * place.scale_y;
      const w = box.w * place.scale_x;
      const h = box.h * place.scale_y;
      ctx.strokeStyle = "#22d3ee";
      ctx.strokeRect(x, y, w, h);
      const text = box.score === undefined ? box.label : `${box.label} ${(box.score * 100).toFixed(0)}%`;
      if (text) {
        const width = ctx.measureText(text).width + 6;
        const top = y > 16 ? y - 16 : y;
        ctx.fillStyle = "rgba(8, 51, 68, 0.8)";
        ctx.fillRect(x, top, width, 16);
        ctx.fillStyle = "#fff";
        ctx.fillText(text, x + 3, top + 15);
      }
    }
    // For tests and curious users: what is drawn, for which frame.
    canvas.dataset.boxes = String(boxes.length);
    canvas.dataset.seq = body.result && body.matches ? String(body.result.seq) : "";
  }

  async function poll() {
    try {
      const name = camera();
      if (name) {
        const response = await fetch(`/api/results?camera=${encodeURIComponent(name)}`, { cache: "no-store" });
        if (response.ok) {
          const body = await response.json();
          draw(body);
          latency.textContent =
            body.result && body.matches ? `${(body.latency_seconds * 1000).toFixed(1)} ms` : "–";
        }
      }
    } catch {
      // The viewer is unreachable: viewer.js reports it; keep polling.
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
