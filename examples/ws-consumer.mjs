// Subscribe to a camera on the framebus gateway's WebSocket and keep its newest JPEG in a file.
//
//   node --experimental-websocket examples/ws-consumer.mjs GATEWAY_URL CAMERA OUT.jpg [FRAMES]
//
// No dependencies: Node 22+ has a global WebSocket; Node 20.10+ needs --experimental-websocket.
// Each binary message is: u32 big-endian header length, that many bytes of JSON
// {camera, seq, captured_ns, sent_ns, width, height}, then the JPEG (docs/protocol.md).
// Prints one JSON line per frame; exits 0 after FRAMES frames (default: run until stopped).
import { renameSync, writeFileSync } from "node:fs";

const [gateway = "http://localhost:8080", camera = "cam0", out = "newest.jpg", frames = "0"] =
  process.argv.slice(2);
const wanted = Number(frames);

if (typeof WebSocket === "undefined") {
  console.error("no global WebSocket: use Node 22+, or Node 20.10+ with --experimental-websocket");
  process.exit(2);
}

function parseMessage(buffer) {
  const data = Buffer.from(buffer);
  const headerLength = data.readUInt32BE(0);
  if (headerLength > data.length - 4) throw new Error("header length out of range");
  // Nanosecond timestamps exceed 2^53: JSON.parse would round them, so keep them as strings.
  const text = data.subarray(4, 4 + headerLength).toString("utf8");
  const header = JSON.parse(text.replace(/"(captured_ns|sent_ns)":(\d+)/g, '"$1":"$2"'));
  return { header, jpeg: data.subarray(4 + headerLength) };
}

const url = `${gateway.replace(/^http/, "ws")}/cameras/${encodeURIComponent(camera)}/ws`;
const socket = new WebSocket(url);
socket.binaryType = "arraybuffer";
let received = 0;

socket.addEventListener("message", (event) => {
  if (typeof event.data === "string") return; // the gateway sends binary frames only
  const { header, jpeg } = parseMessage(event.data);
  // Write then rename, so a reader of OUT never sees half a JPEG.
  writeFileSync(`${out}.tmp`, jpeg);
  renameSync(`${out}.tmp`, out);
  console.log(JSON.stringify({ ...header, bytes: jpeg.length }));
  received += 1;
  if (wanted > 0 && received >= wanted) socket.close(1000);
});
socket.addEventListener("close", (event) => {
  const ok = wanted > 0 && received >= wanted;
  if (!ok) console.error(`WebSocket closed (${event.code}) after ${received} frames`);
  process.exit(ok ? 0 : 1);
});
socket.addEventListener("error", () => {
  console.error(`WebSocket error on ${url}`);
  process.exit(1);
});
