package flumen.peer.flume;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.apache.flume.Channel;

/**
 * Apache Flume 1.11.0's own FileChannel and MemoryChannel under the workload of
 * {@code flumen bench channel}, with the same options and the same JSON fields where they
 * apply, plus {@code "peer"} and the JVM's {@code peak_rss_kb}. Progress and Flume's log go to
 * stderr; the last line of stdout is the JSON object (with --json, the only line). Exits 1 if
 * any event was lost, duplicated or damaged, 2 on a bad command line, 3 on a channel error.
 *
 * <p>The run directory {@code flume-bench-<pid>-<nanos>} is made under --dir (default: the
 * temp dir) and removed at the end, so the bench never sees or disturbs an existing channel.
 */
public final class ChannelBench {
  static final String PEER = "flume-1.11.0";

  private ChannelBench() {}

  public static void main(String[] args) {
    BenchOptions o;
    try {
      o = BenchOptions.parse(args);
    } catch (BenchOptions.UsageException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    // Flume prints to System.out in places (FileChannel's Log on stop); only our lines may
    // reach stdout, so everything else is sent to stderr.
    PrintStream out = System.out;
    System.setOut(System.err);
    int code;
    try {
      code = run(o, out);
    } catch (Throwable e) {
      System.err.println("error: " + e);
      e.printStackTrace();
      code = 3;
    }
    // Flume's lifecycle and counter threads are not all daemons; do not wait for them.
    System.exit(code);
  }

  private static int run(BenchOptions o, PrintStream out) throws Throwable {
    Files.createDirectories(o.dir);
    Path runDir =
        Files.createDirectory(
            o.dir.resolve(
                "flume-bench-" + ProcessHandle.current().pid() + "-" + System.nanoTime()));
    try {
      return runIn(o, runDir, out);
    } finally {
      deleteTree(runDir);
    }
  }

  private static int runIn(BenchOptions o, Path runDir, PrintStream out) throws Throwable {
    FlumeChannels.Opened opened = FlumeChannels.open(o, runDir);
    Channel ch = opened.channel;
    ChannelWorkload.Outcome r;
    try {
      r = new ChannelWorkload(ch, o).run();
    } finally {
      // Outside the timed part, as flumen's close: FileChannel writes its checkpoint here.
      ch.stop();
    }

    long bytes = o.events * o.eventSize;
    int chunk = (int) Math.min(Integer.MAX_VALUE, (long) o.batch * o.eventSize);
    RawBaseline raw = RawBaseline.measure(runDir, bytes, chunk);

    double secs = r.elapsedNanos / 1e9;
    double mbPerSec = bytes / 1e6 / secs;
    long commits = r.putCommits + r.takeCommits;
    boolean verified = r.verified(o.events);
    JsonLine j =
        new JsonLine()
            .put("peer", PEER)
            .put("channel", o.channel)
            .put("io", opened.io)
            .put("fsync", opened.fsync)
            .put("events", o.events)
            .put("event_size", o.eventSize)
            .put("batch", o.batch)
            .put("producers", o.producers)
            .put("consumers", o.consumers)
            .put("capacity", opened.capacity)
            .put("bytes", bytes)
            .put("seconds", secs)
            .put("events_per_sec", o.events / secs)
            .put("mb_per_sec", mbPerSec)
            .put("take_batch", o.effectiveTakeBatch())
            .put("commits", commits)
            .put("commits_per_sec", commits / secs)
            .put("put_commits", r.putCommits)
            .put("put_commits_per_sec", r.putCommits / secs)
            // No "fsyncs": Flume does not count them; see README.md.
            .put("p50_commit_us", r.percentileUs(50))
            .put("p99_commit_us", r.percentileUs(99))
            .put("p999_commit_us", r.percentileUs(99.9))
            .put("max_commit_us", r.percentileUs(100))
            .put("channel_full_retries", r.fullRetries)
            .put("raw_mb_per_sec", raw.mbPerSec())
            .put("raw_fsyncs", raw.fsyncs)
            .put("ratio_to_raw", raw.mbPerSec() > 0 ? mbPerSec / raw.mbPerSec() : 0.0)
            .put("missing", r.missing)
            .put("duplicates", r.duplicates)
            .put("malformed", r.malformed)
            .put("verified", verified)
            .put("java_version", System.getProperty("java.version"))
            .put("peak_rss_kb", peakRssKb());

    if (!o.json) {
      out.printf(
          "%s %s channel (fsync %s): %d events x %d B, batch %d, %d producers, %d consumers%n",
          PEER, o.channel, opened.fsync, o.events, o.eventSize, o.batch, o.producers,
          o.consumers);
      out.printf(
          "  throughput %.0f events/s, %.1f MB/s (%.3f s); put commit p50 %d us, p99 %d us%n",
          o.events / secs, mbPerSec, secs, r.percentileUs(50), r.percentileUs(99));
      out.printf(
          "  verified %b (missing %d, duplicates %d, malformed %d)%n",
          verified, r.missing, r.duplicates, r.malformed);
    }
    out.println(j);
    out.flush();
    if (!verified) {
      System.err.printf(
          "error: verification failed: %d missing, %d duplicated, %d malformed events%n",
          r.missing, r.duplicates, r.malformed);
      return 1;
    }
    return 0;
  }

  /** The JVM's peak resident set (VmHWM), in KiB; -1 where /proc is not available. */
  static long peakRssKb() {
    try (Stream<String> lines = Files.lines(Path.of("/proc/self/status"))) {
      return lines
          .filter(l -> l.startsWith("VmHWM:"))
          .map(l -> Long.parseLong(l.replaceAll("[^0-9]", "")))
          .findFirst()
          .orElse(-1L);
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }

  private static void deleteTree(Path dir) {
    try (Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      System.err.println("warning: could not remove " + dir + ": " + e);
    }
  }
}
