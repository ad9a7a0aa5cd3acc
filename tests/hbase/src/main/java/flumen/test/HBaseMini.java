package flumen.test;

import java.io.BufferedReader;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.Cell;
import org.apache.hadoop.hbase.CellUtil;
import org.apache.hadoop.hbase.HBaseTestingUtility;
import org.apache.hadoop.hbase.MetaTableAccessor;
import org.apache.hadoop.hbase.MiniHBaseCluster;
import org.apache.hadoop.hbase.ServerMetrics;
import org.apache.hadoop.hbase.ServerName;
import org.apache.hadoop.hbase.StartMiniClusterOption;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.Admin;
import org.apache.hadoop.hbase.client.BufferedMutator;
import org.apache.hadoop.hbase.client.BufferedMutatorParams;
import org.apache.hadoop.hbase.client.ColumnFamilyDescriptorBuilder;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
import org.apache.hadoop.hbase.client.Put;
import org.apache.hadoop.hbase.client.RegionInfo;
import org.apache.hadoop.hbase.client.Result;
import org.apache.hadoop.hbase.client.ResultScanner;
import org.apache.hadoop.hbase.client.Scan;
import org.apache.hadoop.hbase.client.Table;
import org.apache.hadoop.hbase.client.TableDescriptorBuilder;
import org.apache.hadoop.hbase.filter.FirstKeyOnlyFilter;
import org.apache.hadoop.hbase.master.HMaster;
import org.apache.hadoop.hbase.regionserver.HRegionServer;
import org.apache.hadoop.hbase.util.JVMClusterUtil.RegionServerThread;
import org.apache.hadoop.hbase.util.Pair;

/**
 * A real HBase for the Rust tests: one single-JVM cluster (MiniZooKeeperCluster, one HMaster, N
 * region servers, on the local file system) driven over stdin/stdout.
 *
 * <p>Usage: {@code HBaseMini <region-servers> <dir>}. The cluster's data goes under {@code dir},
 * which is deleted when stdin closes. Every port is ephemeral, so clusters run side by side.
 *
 * <p>Protocol: once the cluster is up, one line {@code READY <zookeeper-client-port>} on stdout.
 * Then one command per stdin line (words separated by spaces; binary values in hex, {@code -}
 * for empty), each answered with zero or more data lines and then exactly one line {@code OK
 * ...} or {@code ERR <exception>: <message>}; a failing command never ends the process:
 *
 * <ul>
 *   <li>{@code create TABLE FAMILY[,FAMILY...] [SPLITKEY_HEX ...]} - creates the table,
 *       pre-split at the keys; returns when its regions are open.
 *   <li>{@code dump TABLE} - {@code CELL <row> <family> <qualifier> <value> <timestamp>} per cell
 *       (newest version of each), in scan order, then {@code OK <cells>}.
 *   <li>{@code count TABLE} - {@code OK <rows>}.
 *   <li>{@code drop TABLE} - disables and deletes the table (the bench frees each round's
 *       memstore with it).
 *   <li>{@code regions TABLE} - {@code REGION <encoded-name> <start> <end> <host:port>} per
 *       region (from hbase:meta; {@code -} for a server not assigned), then {@code OK <n>}.
 *   <li>{@code split TABLE ROW} - splits the region holding ROW at ROW; returns once both
 *       daughters are open: {@code OK}.
 *   <li>{@code move TABLE} - moves each region of TABLE to another live region server; returns
 *       once each is open there: {@code OK <regions moved>}.
 *   <li>{@code servers} - {@code SERVER <host:port>} per live region server, in the order
 *       {@code kill-rs} counts them, then {@code OK <n>}.
 *   <li>{@code kill-rs INDEX} - aborts the INDEXth live region server (a crash: memstores not
 *       flushed, its clients' connections severed); returns once the master has removed it and,
 *       if another server is left, its regions are open again: {@code OK <host:port>}.
 *   <li>{@code start-rs} - starts one more region server; returns once the master counts it
 *       online and no region is in transition: {@code OK <host:port>}.
 *   <li>{@code bufmut TABLE FAMILY QUALIFIER N SIZE FLUSHEVERY} - HBase's own BufferedMutator
 *       writes N puts (row {@code default} + a random UUID, as Flume's default serializer makes
 *       them; a SIZE-byte value), flushing after every FLUSHEVERY puts and at the end: {@code OK
 *       <nanoseconds from the first put to the last flush>}.
 *   <li>{@code ping} - {@code OK}.
 * </ul>
 *
 * <p>Stdin EOF (the test process ended, even by kill -9) deletes {@code dir} and halts the JVM
 * at once: a clean HBase shutdown takes many seconds and keeps nothing the tests need.
 */
public final class HBaseMini {
  /** Upper bound of every wait inside a command; the Rust side waits a little longer. */
  private static final long WAIT_MILLIS = 120_000;

  private static final HexFormat HEX = HexFormat.of();

  private final HBaseTestingUtility util;
  private final Connection conn;
  private final PrintStream out;

  private HBaseMini(HBaseTestingUtility util, PrintStream out) throws IOException {
    this.util = util;
    this.conn = ConnectionFactory.createConnection(util.getConfiguration());
    this.out = out;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: HBaseMini <region-servers> <dir>");
      System.exit(2);
    }
    int regionServers = Integer.parseInt(args[0]);
    Path dir = Path.of(args[1]).toAbsolutePath();
    // Our protocol owns stdout; anything HBase or Hadoop prints goes to stderr (the log).
    PrintStream out =
        new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    System.setOut(System.err);
    System.setProperty("test.build.data.basedirectory", dir.toString());

    HBaseTestingUtility util = new HBaseTestingUtility();
    Configuration conf = util.getConfiguration();
    // No web UIs: fewer threads and ports, and nothing else binds.
    conf.setInt("hbase.master.info.port", -1);
    conf.setInt("hbase.regionserver.info.port", -1);
    // The WAL on the local file system (no MiniDFSCluster): FSHLog, whose hflush the local
    // file system cannot promise, so the capability check is off.
    conf.set("hbase.wal.provider", "filesystem");
    conf.setBoolean("hbase.unsafe.stream.capability.enforce", false);
    // Clients (flumen's included) see region servers under the loopback address.
    conf.set("hbase.unsafe.regionserver.hostname", "127.0.0.1");
    conf.set("hbase.master.hostname", "127.0.0.1");
    // Load reports every second (default 3 s): a started region server takes regions sooner.
    conf.setInt("hbase.regionserver.msginterval", 1000);
    // ZooKeeper and HBase without a MiniDFSCluster: seconds less to start, and no DataNode.
    util.startMiniZKCluster();
    util.startMiniHBaseCluster(
        StartMiniClusterOption.builder()
            .numMasters(1)
            .numRegionServers(regionServers)
            .createRootDir(true)
            .build());
    HBaseMini mini = new HBaseMini(util, out);
    out.println("READY " + util.getZkCluster().getClientPort());

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      String[] words = line.trim().split("\\s+");
      if (words.length == 0 || words[0].isEmpty()) {
        continue;
      }
      try {
        out.println("OK" + mini.run(words));
      } catch (Throwable t) {
        String msg = t.getClass().getName() + ": " + t.getMessage();
        out.println("ERR " + msg.replace('\n', ' ').replace('\r', ' '));
        t.printStackTrace();
      }
    }
    deleteTree(dir);
    Runtime.getRuntime().halt(0);
  }

  /** Runs one command; returns what follows {@code OK} on its last line (empty or " ..."). */
  private String run(String[] w) throws Exception {
    switch (w[0]) {
      case "ping":
        return "";
      case "create":
        need(w, 3);
        create(TableName.valueOf(w[1]), w[2].split(","), Arrays.copyOfRange(w, 3, w.length));
        return "";
      case "dump":
        need(w, 2);
        return " " + dump(TableName.valueOf(w[1]));
      case "count":
        need(w, 2);
        return " " + count(TableName.valueOf(w[1]));
      case "drop":
        need(w, 2);
        try (Admin admin = conn.getAdmin()) {
          admin.disableTable(TableName.valueOf(w[1]));
          admin.deleteTable(TableName.valueOf(w[1]));
        }
        return "";
      case "regions":
        need(w, 2);
        return " " + regions(TableName.valueOf(w[1]));
      case "split":
        need(w, 3);
        split(TableName.valueOf(w[1]), unhex(w[2]));
        return "";
      case "move":
        need(w, 2);
        return " " + move(TableName.valueOf(w[1]));
      case "kill-rs":
        need(w, 2);
        return " " + killRegionServer(Integer.parseInt(w[1]));
      case "servers":
        List<ServerName> live = liveServers();
        for (ServerName sn : live) {
          out.println("SERVER " + address(sn));
        }
        return " " + live.size();
      case "start-rs":
        return " " + startRegionServer();
      case "bufmut":
        need(w, 7);
        return " "
            + bufferedMutator(
                TableName.valueOf(w[1]),
                w[2].getBytes(StandardCharsets.UTF_8),
                w[3].getBytes(StandardCharsets.UTF_8),
                Integer.parseInt(w[4]),
                Integer.parseInt(w[5]),
                Integer.parseInt(w[6]));
      default:
        throw new IllegalArgumentException("unknown command " + w[0]);
    }
  }

  private static void need(String[] w, int n) {
    if (w.length < n) {
      throw new IllegalArgumentException(w[0] + " needs " + (n - 1) + " arguments");
    }
  }

  private void create(TableName table, String[] families, String[] splitHex) throws IOException {
    TableDescriptorBuilder desc = TableDescriptorBuilder.newBuilder(table);
    for (String f : families) {
      desc.setColumnFamily(ColumnFamilyDescriptorBuilder.of(f));
    }
    try (Admin admin = conn.getAdmin()) {
      if (splitHex.length == 0) {
        admin.createTable(desc.build());
      } else {
        byte[][] splits = new byte[splitHex.length][];
        for (int i = 0; i < splitHex.length; i++) {
          splits[i] = unhex(splitHex[i]);
        }
        admin.createTable(desc.build(), splits);
      }
    }
  }

  private long dump(TableName table) throws IOException {
    long cells = 0;
    try (Table t = conn.getTable(table);
        ResultScanner scanner = t.getScanner(new Scan())) {
      for (Result r : scanner) {
        for (Cell c : r.rawCells()) {
          out.println(
              "CELL "
                  + hex(CellUtil.cloneRow(c))
                  + " "
                  + hex(CellUtil.cloneFamily(c))
                  + " "
                  + hex(CellUtil.cloneQualifier(c))
                  + " "
                  + hex(CellUtil.cloneValue(c))
                  + " "
                  + c.getTimestamp());
          cells++;
        }
      }
    }
    return cells;
  }

  private long count(TableName table) throws IOException {
    long rows = 0;
    try (Table t = conn.getTable(table);
        ResultScanner scanner = t.getScanner(new Scan().setFilter(new FirstKeyOnlyFilter()))) {
      for (Result ignored : scanner) {
        rows++;
      }
    }
    return rows;
  }

  /** The table's regions and servers as hbase:meta has them now (split parents left out). */
  private List<Pair<RegionInfo, ServerName>> locations(TableName table) throws IOException {
    return MetaTableAccessor.getTableRegionsAndLocations(conn, table, true);
  }

  private int regions(TableName table) throws IOException {
    List<Pair<RegionInfo, ServerName>> regions = locations(table);
    for (Pair<RegionInfo, ServerName> p : regions) {
      RegionInfo r = p.getFirst();
      ServerName sn = p.getSecond();
      out.println(
          "REGION "
              + r.getEncodedName()
              + " "
              + hex(r.getStartKey())
              + " "
              + hex(r.getEndKey())
              + " "
              + (sn == null ? "-" : address(sn)));
    }
    return regions.size();
  }

  private void split(TableName table, byte[] row) throws Exception {
    RegionInfo parent = null;
    for (Pair<RegionInfo, ServerName> p : locations(table)) {
      if (p.getFirst().containsRow(row)) {
        parent = p.getFirst();
      }
    }
    if (parent == null) {
      throw new IllegalStateException("no region of " + table + " holds row " + hex(row));
    }
    try (Admin admin = conn.getAdmin()) {
      admin.splitRegionAsync(parent.getRegionName(), row).get(WAIT_MILLIS, TimeUnit.MILLISECONDS);
    }
    waitFor(
        "both daughters of " + parent.getEncodedName() + " open",
        () -> {
          int open = 0;
          for (Pair<RegionInfo, ServerName> p : locations(table)) {
            RegionInfo r = p.getFirst();
            boolean daughter =
                Arrays.equals(r.getStartKey(), row) || Arrays.equals(r.getEndKey(), row);
            if (daughter && isOpenOn(r, p.getSecond())) {
              open++;
            }
          }
          return open == 2;
        });
  }

  private int move(TableName table) throws Exception {
    List<Pair<RegionInfo, ServerName>> regions = locations(table);
    List<ServerName> live = liveServers();
    try (Admin admin = conn.getAdmin()) {
      for (Pair<RegionInfo, ServerName> p : regions) {
        RegionInfo r = p.getFirst();
        ServerName to =
            live.stream()
                .filter(sn -> !sn.equals(p.getSecond()))
                .findFirst()
                .orElseThrow(() -> new IllegalStateException("no other live region server"));
        admin.move(r.getEncodedNameAsBytes(), to);
        waitFor(
            r.getEncodedName() + " open on " + to,
            () -> {
              for (Pair<RegionInfo, ServerName> q : locations(table)) {
                if (q.getFirst().getEncodedName().equals(r.getEncodedName())) {
                  return to.equals(q.getSecond()) && isOpenOn(r, to);
                }
              }
              return false;
            });
      }
    }
    return regions.size();
  }

  private String killRegionServer(int index) throws Exception {
    MiniHBaseCluster cluster = util.getMiniHBaseCluster();
    List<ServerName> live = liveServers();
    if (index < 0 || index >= live.size()) {
      throw new IllegalArgumentException(
          "region server " + index + " of " + live.size() + " live ones");
    }
    ServerName sn = live.get(index);
    cluster.killRegionServer(sn);
    HMaster master = cluster.getMaster();
    waitFor(
        "the master to drop " + sn,
        () -> !master.getServerManager().getOnlineServers().containsKey(sn));
    cluster.waitForRegionServerToStop(sn, WAIT_MILLIS);
    if (!liveServers().isEmpty()) {
      waitFor(
          "the crash of " + sn + " processed and its regions reopened",
          () ->
              !master.getServerManager().areDeadServersInProgress()
                  && master.getAssignmentManager().getRegionsInTransition().isEmpty());
    }
    return address(sn);
  }

  private String startRegionServer() throws Exception {
    MiniHBaseCluster cluster = util.getMiniHBaseCluster();
    RegionServerThread t = cluster.startRegionServer();
    t.waitForServerOnline();
    ServerName sn = t.getRegionServer().getServerName();
    HMaster master = cluster.getMaster();
    // The master assigns regions only to servers that have sent it a load report (HBASE-25032):
    // until then a move to the new server lands back on the old one.
    waitFor(
        "the master to have a load report from " + sn + ", no region in transition",
        () -> {
          ServerMetrics load = master.getServerManager().getLoad(sn);
          return load != null
              && load.getLastReportTimestamp() > 0
              && master.getAssignmentManager().getRegionsInTransition().isEmpty();
        });
    return address(sn);
  }

  private long bufferedMutator(
      TableName table, byte[] family, byte[] qualifier, int n, int size, int flushEvery)
      throws IOException {
    byte[] value = new byte[size];
    new Random(n).nextBytes(value);
    BufferedMutatorParams params =
        new BufferedMutatorParams(table).writeBufferSize(256L * 1024 * 1024);
    try (BufferedMutator m = conn.getBufferedMutator(params)) {
      long start = System.nanoTime();
      for (int i = 1; i <= n; i++) {
        byte[] row = ("default" + UUID.randomUUID()).getBytes(StandardCharsets.UTF_8);
        m.mutate(new Put(row).addColumn(family, qualifier, value));
        if (i % flushEvery == 0) {
          m.flush();
        }
      }
      m.flush();
      return System.nanoTime() - start;
    }
  }

  private List<ServerName> liveServers() {
    List<ServerName> out = new ArrayList<>();
    for (RegionServerThread t : util.getMiniHBaseCluster().getLiveRegionServerThreads()) {
      HRegionServer rs = t.getRegionServer();
      if (!rs.isAborted() && !rs.isStopped()) {
        out.add(rs.getServerName());
      }
    }
    return out;
  }

  /** True when region {@code r} is open on live server {@code sn} of this cluster. */
  private boolean isOpenOn(RegionInfo r, ServerName sn) {
    if (sn == null) {
      return false;
    }
    for (RegionServerThread t : util.getMiniHBaseCluster().getLiveRegionServerThreads()) {
      HRegionServer rs = t.getRegionServer();
      if (rs.getServerName().equals(sn)) {
        return rs.getRegion(r.getEncodedName()) != null;
      }
    }
    return false;
  }

  private interface Check {
    boolean ok() throws Exception;
  }

  private static void waitFor(String what, Check check) throws Exception {
    long end = System.currentTimeMillis() + WAIT_MILLIS;
    while (!check.ok()) {
      if (System.currentTimeMillis() > end) {
        throw new IllegalStateException("timed out after " + WAIT_MILLIS + " ms waiting for " + what);
      }
      Thread.sleep(50);
    }
  }

  private static String address(ServerName sn) {
    return sn.getAddress().toString();
  }

  private static String hex(byte[] b) {
    return b.length == 0 ? "-" : HEX.formatHex(b);
  }

  private static byte[] unhex(String s) {
    return s.equals("-") ? new byte[0] : HEX.parseHex(s);
  }

  private static void deleteTree(Path dir) {
    try (Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException | RuntimeException ignored) {
      // Best effort: HBase's threads may still be writing; the directory is in a temp dir.
    }
  }
}
