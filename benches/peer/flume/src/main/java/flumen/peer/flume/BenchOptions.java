package flumen.peer.flume;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Set;

/**
 * Command-line options of {@link ChannelBench}: the same names, meanings and defaults as
 * {@code flumen bench channel}, so one argument list drives both benchmarks.
 */
final class BenchOptions {
  /** Parent of the run directory; the system temp dir when not given. */
  Path dir = Paths.get(System.getProperty("java.io.tmpdir"));
  long events = 200_000;
  int eventSize = 1024;
  int batch = 100;
  /** Events per take transaction; 0 means "same as batch". */
  int takeBatch = 0;
  int producers = 4;
  int consumers = 1;
  /** "file" or "memory". */
  String channel = "file";
  /**
   * "every-commit" (Flume's default, fsyncPerTransaction=true) or "interval:MS", which maps to
   * fsyncPerTransaction=false with Flume's fsyncInterval in whole seconds.
   */
  String fsync = "every-commit";
  boolean json = false;

  static final String USAGE =
      "usage: ChannelBench [--dir D] [--events N] [--event-size B] [--batch K] [--take-batch K]\n"
          + "                    [--producers P] [--consumers C] [--channel file|memory]\n"
          + "                    [--fsync every-commit|interval:MS] [--json]";

  private static final Set<String> WITH_VALUE =
      Set.of(
          "--dir", "--events", "--event-size", "--batch", "--take-batch", "--producers",
          "--consumers", "--channel", "--fsync");

  /** Thrown for a bad command line; the message is meant for the user. */
  static final class UsageException extends Exception {
    UsageException(String message) {
      super(message);
    }
  }

  static BenchOptions parse(String[] args) throws UsageException {
    BenchOptions o = new BenchOptions();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      // Accept both "--key value" and "--key=value", as clap does for flumen.
      String value = null;
      int eq = a.indexOf('=');
      if (a.startsWith("--") && eq > 0) {
        value = a.substring(eq + 1);
        a = a.substring(0, eq);
      }
      switch (a) {
        case "--json":
          o.json = true;
          continue;
        case "-h":
        case "--help":
          throw new UsageException(USAGE);
        default:
          if (!WITH_VALUE.contains(a)) {
            throw new UsageException("unknown option " + a + "\n" + USAGE);
          }
          break;
      }
      if (value == null) {
        if (i + 1 >= args.length) {
          throw new UsageException(a + " needs a value\n" + USAGE);
        }
        value = args[++i];
      }
      switch (a) {
        case "--dir":
          o.dir = Paths.get(value);
          break;
        case "--events":
          o.events = parseLong(a, value);
          break;
        case "--event-size":
          o.eventSize = (int) parseLong(a, value);
          break;
        case "--batch":
          o.batch = (int) parseLong(a, value);
          break;
        case "--take-batch":
          o.takeBatch = (int) parseLong(a, value);
          break;
        case "--producers":
          o.producers = (int) parseLong(a, value);
          break;
        case "--consumers":
          o.consumers = (int) parseLong(a, value);
          break;
        case "--channel":
          if (!value.equals("file") && !value.equals("memory")) {
            throw new UsageException("--channel must be file or memory, not " + value);
          }
          o.channel = value;
          break;
        case "--fsync":
          o.fsync = value;
          o.fsyncIntervalSeconds(); // validate now
          break;
        default:
          throw new IllegalStateException("option listed but not handled: " + a);
      }
    }
    o.validate();
    return o;
  }

  int effectiveTakeBatch() {
    return takeBatch > 0 ? takeBatch : batch;
  }

  /** 0 for every-commit, else the fsync interval in seconds (Flume's unit). */
  int fsyncIntervalSeconds() throws UsageException {
    if (fsync.equals("every-commit")) {
      return 0;
    }
    if (fsync.startsWith("interval:")) {
      long ms = parseLong("--fsync", fsync.substring("interval:".length()));
      if (ms >= 1000 && ms % 1000 == 0) {
        return (int) (ms / 1000);
      }
    }
    throw new UsageException(
        "--fsync must be every-commit or interval:MS with MS a positive multiple of 1000 "
            + "(Flume's fsyncInterval is in seconds), not " + fsync);
  }

  private void validate() throws UsageException {
    if (events < 1) {
      throw new UsageException("--events must be at least 1");
    }
    if (eventSize < 8) {
      throw new UsageException("--event-size must be at least 8 bytes (the sequence number)");
    }
    if (batch < 1 || takeBatch < 0 || producers < 1 || consumers < 1) {
      throw new UsageException("--batch, --producers and --consumers must be at least 1");
    }
    if (events > Integer.MAX_VALUE) {
      // FileChannel's capacity is an int, and the bench must fit every event in it.
      throw new UsageException("--events must be at most " + Integer.MAX_VALUE);
    }
  }

  private static long parseLong(String key, String value) throws UsageException {
    try {
      return Long.parseLong(value.trim());
    } catch (NumberFormatException e) {
      throw new UsageException(key + " expects a number, not " + value);
    }
  }
}
