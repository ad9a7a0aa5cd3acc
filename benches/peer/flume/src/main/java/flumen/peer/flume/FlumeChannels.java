package flumen.peer.flume;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.apache.flume.Channel;
import org.apache.flume.Context;
import org.apache.flume.channel.MemoryChannel;
import org.apache.flume.channel.file.FileChannel;
import org.apache.flume.conf.Configurables;

/**
 * Builds and starts Apache Flume's own channels, configured the way an agent's properties file
 * would configure them ({@code Configurables.configure} with a {@link Context}), with settings
 * chosen to match what {@code flumen bench channel} gives flumen's channels.
 */
final class FlumeChannels {
  /** Flume's default minimumRequiredSpace (500 MiB) and its floor (1 MiB). */
  private static final long DEFAULT_MIN_SPACE = 500L * 1024 * 1024;
  private static final long FLOOR_MIN_SPACE = 1024L * 1024;

  /** Seconds a put waits for room (and a MemoryChannel take waits for an event). */
  static final int KEEP_ALIVE_SECONDS = 1;

  private FlumeChannels() {}

  /** A started channel and the settings the JSON reports. */
  static final class Opened {
    final Channel channel;
    final long capacity;
    /** "java" for the file channel, "none" for memory, as flumen's "io" field. */
    final String io;
    final String fsync;

    Opened(Channel channel, long capacity, String io, String fsync) {
      this.channel = channel;
      this.capacity = capacity;
      this.io = io;
      this.fsync = fsync;
    }
  }

  static Opened open(BenchOptions o, Path runDir) throws Exception {
    int txCapacity = Math.max(Math.max(o.batch, o.effectiveTakeBatch()), 100);
    Map<String, String> p = new HashMap<>();
    Channel ch;
    long capacity;
    String io;
    String fsync;
    if (o.channel.equals("memory")) {
      // As flumen's bench: bounded at 100k events, so a slow consumer costs bounded memory and
      // producers feel backpressure (ChannelFull, retried) as they would in an agent.
      capacity = Math.max(100_000L, 4L * o.batch);
      p.put("capacity", Long.toString(capacity));
      p.put("transactionCapacity", Integer.toString(txCapacity));
      // Room for a full queue of bodies twice over, so the event count is the only limit
      // (MemoryChannel otherwise caps body bytes at 80% of -Xmx).
      p.put("byteCapacity", Long.toString(2L * capacity * o.eventSize));
      p.put("keep-alive", Integer.toString(KEEP_ALIVE_SECONDS));
      ch = new MemoryChannel();
      io = "none";
      fsync = "none";
    } else {
      Path checkpoint = Files.createDirectories(runDir.resolve("checkpoint"));
      Path data = Files.createDirectories(runDir.resolve("data"));
      // Room for the whole run, so producers never wait on the consumer for space.
      capacity = Math.max(1_000_000L, Math.max(o.events, txCapacity));
      p.put("checkpointDir", checkpoint.toString());
      p.put("dataDirs", data.toString());
      p.put("capacity", Long.toString(capacity));
      p.put("transactionCapacity", Integer.toString(Math.max(txCapacity, 10_000)));
      p.put("keep-alive", Integer.toString(KEEP_ALIVE_SECONDS));
      p.put("minimumRequiredSpace", Long.toString(minimumRequiredSpace(runDir)));
      int interval = o.fsyncIntervalSeconds();
      if (interval > 0) {
        p.put("fsyncPerTransaction", "false");
        p.put("fsyncInterval", Integer.toString(interval));
      }
      ch = new FileChannel();
      io = "java";
      fsync = o.fsync;
    }
    // The name must be set before configure: the channel's counters are named after it.
    ch.setName("bench");
    Configurables.configure(ch, new Context(p));
    ch.start();
    // FileChannel.start() logs a failed replay and leaves the channel closed instead of
    // throwing; a closed channel would fail every transaction, so stop here instead.
    if (ch instanceof FileChannel && !((FileChannel) ch).isOpen()) {
      ch.stop();
      throw new IllegalStateException("Flume's FileChannel failed to start (see the log above)");
    }
    return new Opened(ch, capacity, io, fsync);
  }

  /**
   * Flume refuses to write when the disk has less than minimumRequiredSpace free (500 MiB by
   * default). On a small test disk, lower it as flumen's bench does, to a quarter of what is
   * free, so both channels run under the same rule.
   */
  private static long minimumRequiredSpace(Path dir) {
    try {
      long free = Files.getFileStore(dir).getUsableSpace();
      if (free < DEFAULT_MIN_SPACE) {
        long lowered = Math.max(free / 4, FLOOR_MIN_SPACE);
        System.err.printf(
            "note: %s has %d bytes free, below the default minimumRequiredSpace of %d bytes; "
                + "lowering it to %d bytes for this run%n",
            dir, free, DEFAULT_MIN_SPACE, lowered);
        return lowered;
      }
    } catch (IOException e) {
      System.err.println("note: cannot read free space of " + dir + ": " + e);
    }
    return DEFAULT_MIN_SPACE;
  }
}
