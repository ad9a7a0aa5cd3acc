package flumen.peer.flume;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;
import org.apache.flume.Channel;
import org.apache.flume.ChannelFullException;
import org.apache.flume.Event;
import org.apache.flume.Transaction;
import org.apache.flume.event.EventBuilder;

/**
 * The workload of {@code flumen bench channel}, against a Flume {@link Channel}: P producer
 * threads put N events in put transactions of K, each body a fresh B-byte copy of a template
 * with its sequence number (little-endian) in the first 8 bytes; C consumer threads take up to
 * K per take transaction and commit. Every sequence number must arrive exactly once with an
 * intact body. Timed from the first put to the last take commit.
 */
final class ChannelWorkload {
  /** A consumer that finds nothing this long after every producer finished gives up. */
  private static final long STALL_NANOS = 10_000_000_000L;
  /**
   * FileChannel's take returns null at once when empty (there is nothing to wait on), so an
   * idle consumer polls: 200 µs keeps the delay small next to a commit's fsync.
   */
  private static final long IDLE_POLL_NANOS = 200_000L;

  /** What a run measured. */
  static final class Outcome {
    long elapsedNanos;
    long consumed;
    long missing;
    long duplicates;
    long malformed;
    long fullRetries;
    long putCommits;
    long takeCommits;
    /** Put commit latencies in microseconds, sorted ascending. */
    long[] commitLatenciesUs;

    boolean verified(long events) {
      return missing == 0 && duplicates == 0 && malformed == 0 && consumed == events;
    }

    /** Nearest-rank percentile (p in 0..100), 0 when there are none: flumen's definition. */
    long percentileUs(double p) {
      long[] v = commitLatenciesUs;
      if (v.length == 0) {
        return 0;
      }
      int rank = (int) Math.ceil(p / 100.0 * v.length);
      return v[Math.min(Math.max(rank, 1), v.length) - 1];
    }
  }

  private final Channel channel;
  private final long events;
  private final int batch;
  private final int takeBatch;
  private final int producers;
  private final int consumers;
  private final byte[] template;

  /** Bit s set once sequence number s has been received. */
  private final AtomicLongArray seen;
  private final AtomicLong consumed = new AtomicLong();
  /**
   * Events a consumer has committed to take (taken, or about to be). A take is only tried
   * while this is below N: MemoryChannel's take blocks up to keep-alive when empty, and a
   * consumer waiting for an event that no producer will ever put would add that wait to the
   * measured time.
   */
  private final AtomicLong claimed = new AtomicLong();
  private final AtomicLong producersRunning = new AtomicLong();
  private final AtomicLong fullRetries = new AtomicLong();
  private final AtomicLong duplicates = new AtomicLong();
  private final AtomicLong malformed = new AtomicLong();
  private final AtomicLong putCommits = new AtomicLong();
  private final AtomicLong takeCommits = new AtomicLong();
  private final AtomicBoolean abort = new AtomicBoolean();
  private volatile Throwable firstError;

  ChannelWorkload(Channel channel, BenchOptions o) {
    this.channel = channel;
    this.events = o.events;
    this.batch = o.batch;
    this.takeBatch = o.effectiveTakeBatch();
    this.producers = o.producers;
    this.consumers = o.consumers;
    this.template = new byte[o.eventSize];
    // Not all zeros, so nothing gains from compressing or skipping zero pages (as flumen's).
    for (int i = 0; i < template.length; i++) {
      template[i] = (byte) (i % 251);
    }
    this.seen = new AtomicLongArray((int) ((events + 63) / 64));
  }

  /** Runs the workload; a channel error stops the run and is rethrown. */
  Outcome run() throws Throwable {
    // One slot per producer, written by it and read after join (which orders the two).
    long[][] latencies = new long[producers][];
    List<Thread> threads = new ArrayList<>();
    producersRunning.set(producers);
    long base = events / producers;
    long rem = events % producers;
    long start = System.nanoTime();
    for (int p = 0; p < producers; p++) {
      long from = p * base + Math.min(p, rem);
      long to = from + base + (p < rem ? 1 : 0);
      int slot = p;
      threads.add(
          start(
              "producer-" + p,
              () -> {
                try {
                  latencies[slot] = produce(from, to);
                } finally {
                  producersRunning.decrementAndGet();
                }
              }));
    }
    List<Thread> consumerThreads = new ArrayList<>();
    for (int c = 0; c < consumers; c++) {
      consumerThreads.add(start("consumer-" + c, this::consume));
    }
    Thread progress = startProgress();
    for (Thread t : threads) {
      t.join();
    }
    for (Thread t : consumerThreads) {
      t.join();
    }
    long elapsed = System.nanoTime() - start;
    progress.interrupt();
    progress.join();
    if (firstError != null) {
      throw firstError;
    }

    Outcome o = new Outcome();
    o.elapsedNanos = elapsed;
    o.consumed = consumed.get();
    o.missing = missing();
    o.duplicates = duplicates.get();
    o.malformed = malformed.get();
    o.fullRetries = fullRetries.get();
    o.putCommits = putCommits.get();
    o.takeCommits = takeCommits.get();
    o.commitLatenciesUs =
        Arrays.stream(latencies).flatMapToLong(Arrays::stream).sorted().toArray();
    return o;
  }

  private interface Job {
    void run() throws Exception;
  }

  /** Starts a worker; its first exception aborts the whole run. */
  private Thread start(String name, Job job) {
    Thread t =
        new Thread(
            () -> {
              try {
                job.run();
              } catch (Throwable e) {
                synchronized (this) {
                  if (firstError == null) {
                    firstError = e;
                  }
                }
                abort.set(true);
              }
            },
            "bench-" + name);
    t.start();
    return t;
  }

  private Event makeEvent(long seq) {
    // A fresh body per event, so each costs what a real source's would.
    byte[] body = template.clone();
    for (int i = 0; i < 8; i++) {
      body[i] = (byte) (seq >>> (8 * i));
    }
    return EventBuilder.withBody(body);
  }

  /**
   * Puts [from, to) in batches. A batch refused because the channel is full (FileChannel says
   * so at put, MemoryChannel at commit, each after waiting keep-alive) is rolled back and put
   * again: backpressure is what a source must handle, not a failure.
   */
  private long[] produce(long from, long to) {
    long[] lat = new long[(int) ((to - from + batch - 1) / batch)];
    int n = 0;
    long next = from;
    while (next < to && !abort.get()) {
      long end = Math.min(next + batch, to);
      Transaction tx = channel.getTransaction();
      tx.begin();
      try {
        for (long s = next; s < end; s++) {
          channel.put(makeEvent(s));
        }
        long t = System.nanoTime();
        tx.commit();
        lat[n++] = (System.nanoTime() - t) / 1000;
        putCommits.incrementAndGet();
        next = end;
      } catch (ChannelFullException e) {
        tx.rollback();
        fullRetries.incrementAndGet();
      } catch (RuntimeException | Error e) {
        tx.rollback();
        throw e;
      } finally {
        tx.close();
      }
    }
    return Arrays.copyOf(lat, n);
  }

  private void consume() {
    Event[] got = new Event[takeBatch];
    long idleSince = 0;
    while (consumed.get() < events && !abort.get()) {
      Transaction tx = channel.getTransaction();
      tx.begin();
      int n = 0;
      try {
        while (n < takeBatch) {
          if (claimed.getAndIncrement() >= events) {
            claimed.decrementAndGet();
            break;
          }
          Event e = channel.take();
          if (e == null) {
            claimed.decrementAndGet();
            break;
          }
          got[n++] = e;
        }
        // An empty take transaction commits nothing to disk; a rollback would log a record.
        tx.commit();
      } catch (RuntimeException | Error e) {
        tx.rollback();
        throw e;
      } finally {
        tx.close();
      }
      if (n == 0) {
        if (producersRunning.get() == 0) {
          if (idleSince == 0) {
            idleSince = System.nanoTime();
          } else if (System.nanoTime() - idleSince >= STALL_NANOS) {
            return; // the events we wait for are lost; verification will say so
          }
        }
        LockSupport.parkNanos(IDLE_POLL_NANOS);
        continue;
      }
      idleSince = 0;
      takeCommits.incrementAndGet();
      for (int i = 0; i < n; i++) {
        check(got[i].getBody());
        got[i] = null;
      }
      consumed.addAndGet(n);
    }
  }

  /** Records one received body: wrong size or content is malformed, a repeat a duplicate. */
  private void check(byte[] body) {
    if (body.length != template.length
        || !Arrays.equals(body, 8, body.length, template, 8, template.length)) {
      malformed.incrementAndGet();
      return;
    }
    long seq = 0;
    for (int i = 7; i >= 0; i--) {
      seq = (seq << 8) | (body[i] & 0xff);
    }
    if (seq < 0 || seq >= events) {
      malformed.incrementAndGet();
      return;
    }
    int word = (int) (seq / 64);
    long bit = 1L << (seq % 64);
    long prev = seen.getAndAccumulate(word, bit, (a, b) -> a | b);
    if ((prev & bit) != 0) {
      duplicates.incrementAndGet();
    }
  }

  private long missing() {
    long set = 0;
    for (int i = 0; i < seen.length(); i++) {
      long v = seen.get(i);
      if (i == events / 64) {
        v &= (1L << (events % 64)) - 1;
      }
      set += Long.bitCount(v);
    }
    return events - set;
  }

  /** A line on stderr every second, as flumen's bench prints. */
  private Thread startProgress() {
    Thread t =
        new Thread(
            () -> {
              long lastT = System.nanoTime();
              long lastN = 0;
              while (true) {
                try {
                  Thread.sleep(1000);
                } catch (InterruptedException e) {
                  return;
                }
                long now = System.nanoTime();
                long n = consumed.get();
                System.err.printf(
                    "bench: %d / %d events taken (%.0f events/s)%n",
                    n, events, (n - lastN) / ((now - lastT) / 1e9));
                lastT = now;
                lastN = n;
              }
            },
            "bench-progress");
    t.setDaemon(true);
    t.start();
    return t;
  }
}
