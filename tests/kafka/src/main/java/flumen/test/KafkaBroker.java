package flumen.test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

import org.apache.kafka.common.utils.Exit;

/**
 * One single-node KRaft broker (broker and controller in one process) for the Rust tests.
 *
 * <p>Usage: {@code KafkaBroker <server.properties> <cluster-id>}. Formats the log directory
 * when it has no {@code meta.properties} yet (so a restart on the same directory keeps its
 * topics and offsets), then runs {@code kafka.Kafka}. The process halts when its stdin closes,
 * so a test process that ends, even by kill -9, takes its broker with it; the harness kills it
 * with SIGKILL for the crash tests.
 */
public final class KafkaBroker {
  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: KafkaBroker <server.properties> <cluster-id>");
      System.exit(2);
    }
    String props = args[0];
    String clusterId = args[1];
    Properties p = new Properties();
    try (InputStream in = Files.newInputStream(Path.of(props))) {
      p.load(in);
    }
    Path logDir = Path.of(p.getProperty("log.dirs"));
    if (!Files.exists(logDir.resolve("meta.properties"))) {
      format(props, clusterId);
    }
    Thread watcher = new Thread(() -> {
      try {
        while (System.in.read() >= 0) {
          // Wait for EOF: the test process closed our stdin or died.
        }
      } catch (IOException ignored) {
        // A broken pipe is the same as EOF.
      }
      Runtime.getRuntime().halt(0);
    }, "stdin-watcher");
    watcher.setDaemon(true);
    watcher.start();
    kafka.Kafka.main(new String[] {props});
  }

  /** Runs Kafka's own storage tool, which ends by calling Exit: caught here instead. */
  private static void format(String props, String clusterId) {
    final class Exited extends RuntimeException {
      final int code;

      Exited(int code) {
        super(null, null, false, false);
        this.code = code;
      }
    }
    Exit.setExitProcedure((code, message) -> {
      throw new Exited(code);
    });
    try {
      kafka.tools.StorageTool.main(
          new String[] {"format", "-t", clusterId, "-c", props, "--ignore-formatted"});
    } catch (Exited e) {
      if (e.code != 0) {
        System.err.println("formatting the log directory failed with exit code " + e.code);
        Runtime.getRuntime().halt(1);
      }
    } finally {
      Exit.resetExitProcedure();
    }
  }
}
