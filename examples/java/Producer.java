// framebus producer with nothing but the JDK: POST JPEG frames to a gateway.
//
//   java Producer.java http://localhost:8080 cam0                  # generated test frames, 10 fps
//   java Producer.java http://localhost:8080 cam0 --fps 5 a.jpg b.jpg photos/   # JPEG files, looped
//   java Producer.java http://localhost:8080 cam0 --frames 100     # stop after 100 frames
//
// The token comes from FRAMEBUS_TOKEN (or GATEWAY_TOKEN). See docs/protocol.md, "Java".
// Newest-wins like the capture service: one frame in flight, never a queue; a frame that
// cannot be sent is dropped and counted, and sending resumes after a backoff.

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

public class Producer {
    static final long[] BACKOFF_MS = {1000, 2000, 5000, 10000};

    // Unix epoch nanoseconds. System.currentTimeMillis() has only millisecond resolution;
    // Instant carries the clock's full resolution (microseconds on Linux with JDK 17).
    static long epochNanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("java.awt.headless", "true");
        if (args.length < 2) {
            System.err.println("usage: java Producer.java GATEWAY_URL CAMERA [--fps N] [--frames N] [JPEG files or dirs...]");
            System.exit(2);
        }
        String gateway = args[0].replaceAll("/+$", "");
        String camera = args[1];
        double fps = 10;
        long maxFrames = Long.MAX_VALUE;
        List<Path> files = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            switch (args[i]) {
                case "--fps" -> fps = Double.parseDouble(args[++i]);
                case "--frames" -> maxFrames = Long.parseLong(args[++i]);
                default -> files.addAll(jpegFiles(Path.of(args[i])));
            }
        }
        String token = System.getenv().getOrDefault("FRAMEBUS_TOKEN", System.getenv("GATEWAY_TOKEN"));

        // HTTP/1.1: the gateway (aiohttp) does not speak HTTP/2, and the upgrade attempt costs a round trip.
        HttpClient http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(2))
                .build();
        URI uri = URI.create(gateway + "/cameras/" + camera + "/frames");
        long periodNanos = (long) (1e9 / fps);
        long sent = 0, dropped = 0, failures = 0, retryAt = 0;
        long next = System.nanoTime();
        for (long seq = 1; seq <= maxFrames; seq++) {
            long wait = next - System.nanoTime();
            if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            next = Math.max(next + periodNanos, System.nanoTime());  // late: skip ahead, never catch up
            long capturedNs = epochNanos();
            byte[] jpeg = files.isEmpty() ? testFrame(seq) : Files.readAllBytes(files.get((int) ((seq - 1) % files.size())));
            if (System.nanoTime() < retryAt) {  // transport down: drop without trying
                dropped++;
                continue;
            }
            int[] size = jpegSize(jpeg);
            HttpRequest.Builder request = HttpRequest.newBuilder(uri)
                    .timeout(Duration.ofSeconds(2))
                    .header("Content-Type", "image/jpeg")
                    .header("X-Frame-Seq", Long.toString(seq))
                    .header("X-Frame-Captured-Ns", Long.toString(capturedNs))
                    .header("X-Frame-Sent-Ns", Long.toString(epochNanos()))
                    .header("X-Frame-Width", Integer.toString(size[0]))
                    .header("X-Frame-Height", Integer.toString(size[1]))
                    .POST(HttpRequest.BodyPublishers.ofByteArray(jpeg));
            if (token != null && !token.isEmpty()) request.header("Authorization", "Bearer " + token);
            try {
                HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
                if (response.statusCode() == 204) {
                    sent++;
                    failures = 0;
                } else {
                    dropped++;  // 4xx: the gateway refused this frame; its body says why
                    System.err.printf("frame %d refused: HTTP %d %s%n", seq, response.statusCode(), response.body().strip());
                    if (response.statusCode() == 401 || response.statusCode() == 403) System.exit(3);
                }
            } catch (IOException e) {
                dropped++;
                long delay = BACKOFF_MS[(int) Math.min(failures++, BACKOFF_MS.length - 1)];
                retryAt = System.nanoTime() + delay * 1_000_000;
                System.err.printf("gateway unreachable (%s); retrying in %d ms%n", e, delay);
            }
        }
        System.out.printf("sent=%d dropped=%d%n", sent, dropped);
    }

    static List<Path> jpegFiles(Path path) throws IOException {
        if (!Files.isDirectory(path)) return List.of(path);
        try (Stream<Path> entries = Files.list(path)) {
            return entries.filter(p -> p.toString().toLowerCase().matches(".*\\.jpe?g$")).sorted().toList();
        }
    }

    // A moving square on grey, so a viewer shows motion; JPEG-encoded by the JDK's ImageIO.
    static byte[] testFrame(long seq) throws IOException {
        int width = 320, height = 240;
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setColor(Color.DARK_GRAY);
        g.fillRect(0, 0, width, height);
        g.setColor(Color.ORANGE);
        g.fillRect((int) ((seq * 8) % (width - 40)), height / 2 - 20, 40, 40);
        g.dispose();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(image, "jpg", out);
        return out.toByteArray();
    }

    // Width and height from the JPEG's start-of-frame marker (SOF0..SOF15 except DHT/JPG/DAC).
    static int[] jpegSize(byte[] jpeg) {
        int pos = 2;
        while (pos + 9 < jpeg.length) {
            int marker = jpeg[pos + 1] & 0xFF;
            int length = ((jpeg[pos + 2] & 0xFF) << 8) | (jpeg[pos + 3] & 0xFF);
            if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
                int height = ((jpeg[pos + 5] & 0xFF) << 8) | (jpeg[pos + 6] & 0xFF);
                int width = ((jpeg[pos + 7] & 0xFF) << 8) | (jpeg[pos + 8] & 0xFF);
                return new int[] {width, height};
            }
            pos += 2 + length;
        }
        throw new IllegalArgumentException("not a JPEG: no start-of-frame marker");
    }
}
