// framebus consumer with nothing but the JDK: a gateway's WebSocket, one frame per request.
//
//   java Consumer.java http://localhost:8080 cam0                 # print one line per frame, forever
//   java Consumer.java http://localhost:8080 cam0 --frames 5 --out frames/   # save 5 JPEGs, then exit
//
// The token comes from FRAMEBUS_TOKEN (or GATEWAY_TOKEN). See docs/protocol.md, "Java".
// Pull mode (?pull=1): we send "next" when ready and get the newest frame, so a slow consumer
// never builds a backlog. Reconnects on a 1, 2, 5, 10 s ladder.

import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class Consumer {
    static final long[] BACKOFF_MS = {1000, 2000, 5000, 10000};
    static final int MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

    record Header(String camera, long seq, long capturedNs, long sentNs, int width, int height) {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: java Consumer.java GATEWAY_URL CAMERA [--frames N] [--out DIR]");
            System.exit(2);
        }
        String wsUrl = args[0].replaceAll("/+$", "").replaceFirst("^http", "ws") + "/cameras/" + args[1] + "/ws?pull=1";
        long maxFrames = Long.MAX_VALUE;
        Path out = null;
        for (int i = 2; i < args.length; i++) {
            switch (args[i]) {
                case "--frames" -> maxFrames = Long.parseLong(args[++i]);
                case "--out" -> out = Files.createDirectories(Path.of(args[++i]));
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        String token = System.getenv().getOrDefault("FRAMEBUS_TOKEN", System.getenv("GATEWAY_TOKEN"));
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        AtomicLong received = new AtomicLong();
        int failures = 0;
        while (received.get() < maxFrames) {
            FrameListener listener = new FrameListener(received, maxFrames, out);
            try {
                WebSocket.Builder builder = http.newWebSocketBuilder().connectTimeout(Duration.ofSeconds(2));
                if (token != null && !token.isEmpty()) builder.header("Authorization", "Bearer " + token);
                WebSocket ws = builder.buildAsync(URI.create(wsUrl), listener).join();
                long before = received.get();
                String why = listener.done.join();  // until closed, failed, or enough frames
                if (received.get() >= maxFrames) {
                    ws.sendClose(WebSocket.NORMAL_CLOSURE, "done").join();
                    break;
                }
                if (received.get() > before) failures = 0;
                System.err.println("connection ended: " + why);
            } catch (Exception e) {
                System.err.println("cannot connect: " + e.getCause());
            }
            long delay = BACKOFF_MS[Math.min(failures++, BACKOFF_MS.length - 1)];
            System.err.printf("reconnecting in %d ms%n", delay);
            Thread.sleep(delay);
        }
    }

    static class FrameListener implements WebSocket.Listener {
        final CompletableFuture<String> done = new CompletableFuture<>();
        final AtomicLong received;
        final long maxFrames;
        final Path out;
        // A large message arrives in several onBinary calls; `last` marks its final part.
        final ByteArrayOutputStream message = new ByteArrayOutputStream();

        FrameListener(AtomicLong received, long maxFrames, Path out) {
            this.received = received;
            this.maxFrames = maxFrames;
            this.out = out;
        }

        @Override
        public void onOpen(WebSocket ws) {
            ws.request(1);
            ws.sendText("next", true);  // ask for the first frame
        }

        @Override
        public CompletionStage<?> onBinary(WebSocket ws, ByteBuffer data, boolean last) {
            if (message.size() + data.remaining() > MAX_MESSAGE_BYTES) {
                done.complete("message too large");
                ws.abort();
                return null;
            }
            byte[] part = new byte[data.remaining()];
            data.get(part);
            message.writeBytes(part);
            if (last) {
                byte[] whole = message.toByteArray();
                message.reset();
                try {
                    handle(whole);
                } catch (RuntimeException e) {
                    System.err.println("skipped a malformed message: " + e.getMessage());
                }
                if (received.get() >= maxFrames) {
                    done.complete("enough frames");
                    return null;
                }
                ws.sendText("next", true);  // ready for the next (newest) frame
            }
            ws.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
            ws.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket ws, int status, String reason) {
            done.complete("closed by the gateway (" + status + " " + reason + ")");
            return null;
        }

        @Override
        public void onError(WebSocket ws, Throwable error) {
            done.complete("error: " + error);
        }

        void handle(byte[] whole) {
            // 4-byte big-endian header length, the JSON header, then the JPEG.
            int headerLength = ByteBuffer.wrap(whole, 0, 4).getInt();
            if (headerLength < 2 || headerLength > 4096 || 4 + headerLength > whole.length) {
                throw new IllegalArgumentException("header length out of range");
            }
            Header header = parseHeader(new String(whole, 4, headerLength, StandardCharsets.UTF_8));
            int jpegLength = whole.length - 4 - headerLength;
            Instant now = Instant.now();
            long nowNs = now.getEpochSecond() * 1_000_000_000L + now.getNano();
            long n = received.incrementAndGet();
            System.out.printf("frame camera=%s seq=%d captured_ns=%d width=%d height=%d bytes=%d latency_ms=%.1f%n",
                    header.camera(), header.seq(), header.capturedNs(), header.width(), header.height(),
                    jpegLength, (nowNs - header.capturedNs()) / 1e6);
            System.out.flush();
            if (out != null) {
                try {
                    Files.write(out.resolve(String.format("%s-%06d.jpg", header.camera(), n)),
                            java.util.Arrays.copyOfRange(whole, 4 + headerLength, whole.length));
                } catch (java.io.IOException e) {
                    throw new RuntimeException(e);
                }
            }
        }
    }

    // The header is a flat JSON object of one string (camera: [A-Za-z0-9_-], never escaped)
    // and integers, so two patterns read it without a JSON library.
    static final Pattern STRING_FIELD = Pattern.compile("\"(\\w+)\"\\s*:\\s*\"([A-Za-z0-9_-]*)\"");
    static final Pattern INT_FIELD = Pattern.compile("\"(\\w+)\"\\s*:\\s*(-?\\d+)");

    static Header parseHeader(String json) {
        Matcher camera = STRING_FIELD.matcher(json);
        String cam = null;
        while (camera.find()) if (camera.group(1).equals("camera")) cam = camera.group(2);
        java.util.Map<String, Long> ints = new java.util.HashMap<>();
        Matcher number = INT_FIELD.matcher(json);
        while (number.find()) ints.put(number.group(1), Long.parseLong(number.group(2)));
        for (String name : new String[] {"seq", "captured_ns", "width", "height"}) {
            if (!ints.containsKey(name)) throw new IllegalArgumentException("header lacks " + name);
        }
        if (cam == null) throw new IllegalArgumentException("header lacks camera");
        return new Header(cam, ints.get("seq"), ints.get("captured_ns"),
                ints.getOrDefault("sent_ns", ints.get("captured_ns")),
                ints.get("width").intValue(), ints.get("height").intValue());
    }
}
