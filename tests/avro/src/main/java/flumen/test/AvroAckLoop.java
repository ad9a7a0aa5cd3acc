package flumen.test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.flume.Event;
import org.apache.flume.EventDeliveryException;
import org.apache.flume.FlumeException;
import org.apache.flume.api.RpcClient;
import org.apache.flume.api.RpcClientFactory;
import org.apache.flume.event.EventBuilder;

/**
 * The avro client of the kill -9 campaign (benches/kill9.py): Flume's own RpcClient (Netty
 * Avro), kept running across the agent's deaths so a cycle costs no JVM start.
 *
 * <p>Reads commands on stdin, one per line. {@code RUN host port batch} builds a client and
 * sends batches until a batch fails, printing {@code ACK lo hi} (event ids lo..hi-1) after every
 * batch the agent acknowledged, then {@code STOP <reason>} once a batch failed or the
 * connection could not be made. {@code QUIT} exits. Event ids count up across runs and are never
 * reused, so an id that was sent but not acknowledged is never sent again: the auditor can tell
 * an acknowledged event from one that merely arrived. Event i has body {@code a<i>} and header
 * {@code seq = i}.
 */
public final class AvroAckLoop {
  private AvroAckLoop() {}

  public static void main(String[] args) throws Exception {
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    long next = 0;
    String line;
    while ((line = in.readLine()) != null) {
      String[] cmd = line.trim().split(" ");
      if (cmd[0].equals("QUIT")) {
        break;
      }
      if (!cmd[0].equals("RUN") || cmd.length != 4) {
        System.out.println("STOP bad command: " + line);
        System.out.flush();
        continue;
      }
      int batch = Integer.parseInt(cmd[3]);
      Properties p = new Properties();
      p.setProperty("client.type", "default");
      p.setProperty("hosts", "h1");
      p.setProperty("hosts.h1", cmd[1] + ":" + cmd[2]);
      p.setProperty("batch-size", Integer.toString(batch));
      // A killed agent resets the connection at once; the timeouts only bound a hung peer.
      p.setProperty("connect-timeout", "5000");
      p.setProperty("request-timeout", "10000");
      RpcClient client;
      try {
        client = RpcClientFactory.getInstance(p);
      } catch (FlumeException e) {
        System.out.println("STOP connect: " + e.getMessage());
        System.out.flush();
        continue;
      }
      try {
        while (true) {
          List<Event> events = new ArrayList<>(batch);
          for (long i = next; i < next + batch; i++) {
            Map<String, String> headers = new HashMap<>();
            headers.put("seq", Long.toString(i));
            events.add(EventBuilder.withBody(("a" + i).getBytes(StandardCharsets.UTF_8), headers));
          }
          long lo = next;
          // Ids of a failed batch are burnt: it may or may not have been committed.
          next += batch;
          client.appendBatch(events);
          System.out.println("ACK " + lo + " " + next);
          System.out.flush();
        }
      } catch (EventDeliveryException | RuntimeException e) {
        System.out.println("STOP " + e.getClass().getSimpleName());
        System.out.flush();
      } finally {
        client.close();
      }
    }
  }
}
