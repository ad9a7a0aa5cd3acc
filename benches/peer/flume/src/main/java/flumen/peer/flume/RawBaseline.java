package flumen.peer.flume;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * flumen's raw-disk baseline, from Java: the run's bytes written to one plain file from one
 * thread, forcing the data to disk (force(false), an fdatasync) after every K×B bytes. What the
 * disk does at the channel's commit cadence with no channel in the way; {@code ratio_to_raw}
 * divides the channel's MB/s by this, measured in the same run.
 */
final class RawBaseline {
  final long bytes;
  final long elapsedNanos;
  final long fsyncs;

  private RawBaseline(long bytes, long elapsedNanos, long fsyncs) {
    this.bytes = bytes;
    this.elapsedNanos = elapsedNanos;
    this.fsyncs = fsyncs;
  }

  double mbPerSec() {
    return bytes / 1e6 / (elapsedNanos / 1e9);
  }

  static RawBaseline measure(Path dir, long bytes, int chunk) throws IOException {
    Path path = dir.resolve("raw-baseline.dat");
    chunk = Math.max(chunk, 1);
    ByteBuffer buf = ByteBuffer.allocateDirect(chunk);
    for (int i = 0; i < chunk; i++) {
      buf.put((byte) (i % 251));
    }
    long fsyncs = 0;
    long start;
    long elapsed;
    try (FileChannel f =
        FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      start = System.nanoTime();
      long left = bytes;
      while (left > 0) {
        int n = (int) Math.min(left, chunk);
        buf.clear().limit(n);
        while (buf.hasRemaining()) {
          f.write(buf);
        }
        f.force(false);
        fsyncs++;
        left -= n;
      }
      elapsed = System.nanoTime() - start;
    } finally {
      Files.deleteIfExists(path);
    }
    return new RawBaseline(bytes, elapsed, fsyncs);
  }
}
