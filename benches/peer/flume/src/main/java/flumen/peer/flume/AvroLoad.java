package flumen.peer.flume;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.flume.Event;
import org.apache.flume.EventDeliveryException;
import org.apache.flume.api.RpcClient;
import org.apache.flume.api.RpcClientFactory;
import org.apache.flume.event.EventBuilder;

/**
 * A load generator for an avro source (flumen's or Flume's), built on Flume 1.11.0's own client:
 * {@code RpcClientFactory.getDefaultInstance(host, port, batch)}, the SDK's default Netty Avro
 * client, one per connection. Used by benches/avro_vs_flume.py for both targets unchanged.
 *
 * <p>Usage: {@code AvroLoad --port P [--host H] [--events N] [--event-size B] [--batch K]
 * [--clients C] [--warmup W]} (defaults 127.0.0.1, 200000, 1024, 100, 1, 0). C threads each open
 * one client (connecting before the clock starts) and send their share of W warm-up events,
 * untimed; when all have, they send their share of the N events as {@code appendBatch} calls of
 * K events, timed. Each body is a fresh B-byte array whose first 8 bytes hold the event's number,
 * little-endian (as the stress sources do; warm-up events are numbered from N); no headers. A
 * batch the server did not accept ({@code EventDeliveryException}: FAILED, a timeout, a closed
 * connection) is sent again, on a new client if the old one is no longer active, and counted in
 * {@code retries}.
 *
 * <p>stdout gets exactly one line, a JSON object: {@code events}, {@code warmup}, {@code
 * warmup_seconds}, {@code clients}, {@code batch}, {@code event_size}, {@code start_ms} (wall
 * clock at the first timed send, ms since the epoch, so a caller can time delivery from it),
 * {@code seconds} and {@code events_per_sec} (first timed send to the last batch acknowledged),
 * {@code retries}. Exit status 0, 2 on a bad command line, 3 when a client could not be made or a
 * thread failed.
 */
public final class AvroLoad {
  private AvroLoad() {}

  public static void main(String[] args) throws Exception {
    String host = "127.0.0.1";
    int port = -1;
    long events = 200_000;
    int eventSize = 1024;
    int batch = 100;
    int clients = 1;
    long warmup = 0;
    try {
      for (int i = 0; i < args.length; i++) {
        String v = i + 1 < args.length ? args[i + 1] : null;
        switch (args[i]) {
          case "--host": host = v; i++; break;
          case "--port": port = Integer.parseInt(v); i++; break;
          case "--events": events = Long.parseLong(v); i++; break;
          case "--event-size": eventSize = Integer.parseInt(v); i++; break;
          case "--batch": batch = Integer.parseInt(v); i++; break;
          case "--clients": clients = Integer.parseInt(v); i++; break;
          case "--warmup": warmup = Long.parseLong(v); i++; break;
          default: throw new IllegalArgumentException("unknown option " + args[i]);
        }
      }
      if (port <= 0 || events < 0 || warmup < 0 || eventSize < 8 || batch < 1 || clients < 1
          || host == null) {
        throw new IllegalArgumentException("need --port, and sizes >= 1 (event size >= 8)");
      }
    } catch (RuntimeException e) {
      System.err.println("AvroLoad: " + e.getMessage());
      System.err.println("usage: AvroLoad --port P [--host H] [--events N] [--event-size B]"
          + " [--batch K] [--clients C] [--warmup W]");
      System.exit(2);
      return;
    }
    // Flume's classes may print to System.out; only the JSON line may reach stdout.
    PrintStream out = System.out;
    System.setOut(System.err);

    final String h = host;
    final int p = port;
    final int b = batch;
    final int size = eventSize;
    CyclicBarrier warmed = new CyclicBarrier(clients + 1);
    CyclicBarrier ready = new CyclicBarrier(clients + 1);
    AtomicLong retries = new AtomicLong();
    List<Thread> threads = new ArrayList<>();
    // Thread t sends events [first, first + count): whole batches, the remainder to the last.
    long perThread = (events / clients / batch) * batch;
    long warmPerThread = (warmup / clients / batch) * batch;
    for (int t = 0; t < clients; t++) {
      final long first = t * perThread;
      final long count = t == clients - 1 ? events - first : perThread;
      // Warm-up events are numbered after the measured ones.
      final long warmFirst = events + t * warmPerThread;
      final long warmCount = t == clients - 1 ? warmup - t * warmPerThread : warmPerThread;
      Thread th =
          new Thread(
              () -> {
                RpcClient[] client = {null};
                try {
                  client[0] = RpcClientFactory.getDefaultInstance(h, p, b);
                  warmed.await();
                  send(client, h, p, b, size, warmFirst, warmCount, retries);
                  ready.await();
                  send(client, h, p, b, size, first, count, retries);
                  client[0].close();
                } catch (Throwable e) {
                  // No partial figures: the whole run fails at once.
                  System.err.println("AvroLoad: " + Thread.currentThread().getName()
                      + " failed: " + e);
                  e.printStackTrace();
                  System.exit(3);
                }
              },
              "avro-load-" + t);
      threads.add(th);
      th.start();
    }
    long startMs;
    long t0;
    double warmSeconds;
    try {
      warmed.await();
      long w0 = System.nanoTime();
      ready.await();
      warmSeconds = (System.nanoTime() - w0) / 1e9;
      startMs = System.currentTimeMillis();
      t0 = System.nanoTime();
    } catch (Exception e) {
      System.err.println("AvroLoad: " + e);
      System.exit(3);
      return;
    }
    for (Thread th : threads) {
      th.join();
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    out.println(
        new JsonLine()
            .put("events", events)
            .put("warmup", warmup)
            .put("warmup_seconds", warmSeconds)
            .put("clients", (long) clients)
            .put("batch", (long) batch)
            .put("event_size", (long) eventSize)
            .put("start_ms", startMs)
            .put("seconds", seconds)
            .put("events_per_sec", seconds > 0 ? events / seconds : 0.0)
            .put("retries", retries.get())
            .put("peer", ChannelBench.PEER)
            .toString());
    out.flush();
    System.exit(0);
  }

  /** Sends events [first, first + count) in batches of b on client[0], resending refused ones. */
  private static void send(
      RpcClient[] client, String h, int p, int b, int size, long first, long count,
      AtomicLong retries) {
    List<Event> list = new ArrayList<>(b);
    for (long i = first; i < first + count; i++) {
      list.add(EventBuilder.withBody(body(i, size)));
      if (list.size() == b || i == first + count - 1) {
        while (true) {
          try {
            client[0].appendBatch(list);
            break;
          } catch (EventDeliveryException e) {
            retries.incrementAndGet();
            if (!client[0].isActive()) {
              client[0].close();
              client[0] = RpcClientFactory.getDefaultInstance(h, p, b);
            }
          }
        }
        list = new ArrayList<>(b);
      }
    }
  }

  private static byte[] body(long seq, int size) {
    byte[] a = new byte[size];
    for (int i = 0; i < size; i++) {
      a[i] = (byte) ('a' + i % 26);
    }
    for (int i = 0; i < 8; i++) {
      a[i] = (byte) (seq >>> (8 * i));
    }
    return a;
  }
}
