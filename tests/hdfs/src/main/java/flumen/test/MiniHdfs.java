package flumen.test;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;

/**
 * A real HDFS for the Rust tests: one MiniDFSCluster (one NameNode, one DataNode) driven over
 * stdin/stdout.
 *
 * <p>Usage: {@code MiniHdfs <dir> [namenode-port]} or {@code MiniHdfs <dir> --ha}. {@code dir}
 * is this cluster's own directory (the cluster's storage goes to {@code dir/data}); it is
 * deleted when the cluster shuts down. Port 0 (the default) makes every port ephemeral, so
 * clusters run side by side.
 *
 * <p>With {@code --ha} the cluster is an HA nameservice {@code ns1}: two NameNodes, {@code nn1}
 * and {@code nn2}, on ephemeral ports sharing an edits directory, and one DataNode; {@code nn1}
 * is made active. Its files are read (the {@code ls} and {@code get} commands) through Hadoop's
 * HA-aware client ({@code ConfiguredFailoverProxyProvider}), which follows a failover.
 *
 * <p>Protocol: once the cluster is up and out of safe mode, one line {@code READY
 * hdfs://127.0.0.1:PORT} on stdout; with {@code --ha} the line is {@code READY hdfs://ns1},
 * followed by a second line {@code HA ns1 nn1=127.0.0.1:P1 nn2=127.0.0.1:P2} (the NameNodes'
 * RPC addresses, what a client's hdfs-site.xml needs). Then one command per stdin line, each
 * answered by exactly one stdout line that starts with {@code OK} or {@code ERR <exception
 * class>: <message>}. Arguments are separated by tabs (or by spaces when the line has no tab):
 *
 * <ul>
 *   <li>{@code ping} - {@code OK}.
 *   <li>{@code stop-namenode} - shuts the NameNode down (its port is then refused).
 *   <li>{@code start-namenode} - restarts it on the same port with the same metadata, waits
 *       until it is out of safe mode and the DataNode is registered: {@code OK hdfs://...}.
 *       With {@code --ha} both act on {@code nn1} (use {@code kill-active} instead).
 *   <li>{@code stop-datanode} / {@code start-datanode} - stops the DataNode / restarts it on
 *       the same ports with the same blocks and waits until the NameNode sees it.
 *   <li>{@code ls <dir>} - the files under {@code dir}, recursively, with Hadoop's own client:
 *       {@code OK} then, for each file, a tab, its path, a tab, its length, a tab and {@code
 *       closed} or {@code open} (still being written). A missing {@code dir} lists nothing.
 *   <li>{@code get <hdfs-path> <local-path>} - copies a file (up to its synced length if it is
 *       still open) to a local file with Hadoop's own reader: {@code OK <bytes>}.
 *   <li>{@code failover} (HA only) - makes the active NameNode standby and the other one
 *       active, as an administrator's {@code hdfs haadmin -failover} would: {@code OK
 *       active=nn2} (or {@code nn1}). Clients see {@code StandbyException} from the old one.
 *   <li>{@code kill-active} (HA only) - shuts the active NameNode down (its port is then
 *       refused; calls in flight lose their connection) and makes the other one active, as
 *       after a NameNode crash: {@code OK active=nn2} (or {@code nn1}). The killed one stays
 *       down.
 *   <li>{@code shutdown} - {@code OK}, then shuts down as on stdin EOF.
 * </ul>
 *
 * <p>Stdin EOF (the test process ended, even by kill -9), SIGTERM or SIGINT shut the cluster down
 * and delete {@code dir}. The shutdown runs on a normal thread, never from a JVM shutdown hook:
 * Hadoop's own hook manager fails there and leaves the data behind.
 */
public final class MiniHdfs {
  private static final long WAIT_MILLIS = 60_000;
  /** The HA mode's nameservice and NameNode ids. */
  private static final String NAMESERVICE = "ns1";

  private static final String[] NAMENODE_IDS = {"nn1", "nn2"};

  private final File dir;
  private final Configuration conf;
  private final MiniDFSCluster cluster;
  private final PrintStream out;
  private final java.net.URI uri;
  private final boolean ha;
  /** HA: the NameNodes' RPC ports, fixed at start (a NameNode shut down has no address). */
  private final int[] namenodePorts = new int[NAMENODE_IDS.length];
  private MiniDFSCluster.DataNodeProperties stoppedDataNode;
  private DistributedFileSystem client;
  private boolean namenodeDown;
  private boolean shutDown;

  private MiniHdfs(File dir, int port, boolean ha, PrintStream out) throws Exception {
    this.dir = dir;
    this.out = out;
    this.ha = ha;
    conf = new Configuration();
    conf.set("dfs.replication", "1");
    conf.set("dfs.permissions.enabled", "false");
    conf.set("dfs.namenode.safemode.extension", "0");
    // Sink tests need no 128 MiB blocks; a smaller block lets tests cross block boundaries.
    conf.set("dfs.blocksize", "16777216");
    // A restarted NameNode is usable only once the DataNode has registered again: heartbeat
    // every second and retry the connection quickly so that a restart takes seconds, not ten.
    conf.set("dfs.heartbeat.interval", "1");
    conf.set("ipc.client.connect.retry.interval", "100");
    if (ha) {
      // The standby tails the shared edits every second (default: a minute), so that a
      // failover has little to catch up on.
      conf.set("dfs.ha.tail-edits.period", "1");
      MiniDFSNNTopology.NSConf ns = new MiniDFSNNTopology.NSConf(NAMESERVICE);
      for (String id : NAMENODE_IDS) {
        ns.addNN(new MiniDFSNNTopology.NNConf(id));
      }
      cluster =
          new MiniDFSCluster.Builder(conf, new File(dir, "data"))
              .nnTopology(new MiniDFSNNTopology().addNameservice(ns))
              .numDataNodes(1)
              .build();
      cluster.waitActive();
      cluster.transitionToActive(0);
      cluster.waitActive();
      waitOutOfSafeMode(0);
      for (int i = 0; i < NAMENODE_IDS.length; i++) {
        namenodePorts[i] = cluster.getNameNode(i).getNameNodeAddress().getPort();
      }
      uri = java.net.URI.create("hdfs://" + NAMESERVICE);
    } else {
      cluster =
          new MiniDFSCluster.Builder(conf, new File(dir, "data"))
              .nameNodePort(port)
              .nameNodeHttpPort(0)
              .numDataNodes(1)
              .build();
      cluster.waitActive();
      waitOutOfSafeMode(0);
      uri = cluster.getURI(0);
    }
  }

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    if (args.length < 1 || args.length > 2) {
      System.err.println("usage: MiniHdfs <dir> [namenode-port | --ha]");
      System.exit(2);
    }
    File dir = new File(args[0]).getAbsoluteFile();
    boolean ha = args.length == 2 && args[1].equals("--ha");
    int port = args.length == 2 && !ha ? Integer.parseInt(args[1]) : 0;
    MiniHdfs hdfs;
    try {
      hdfs = new MiniHdfs(dir, port, ha, out);
    } catch (Throwable e) {
      e.printStackTrace();
      out.println("ERR " + describe(e));
      out.flush();
      Runtime.getRuntime().halt(1);
      return;
    }
    hdfs.installSignalHandlers();
    out.println("READY " + hdfs.url());
    if (ha) {
      out.println("HA " + NAMESERVICE + hdfs.namenodeAddresses());
    }
    out.flush();
    hdfs.serve(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
  }

  private String url() {
    return ha ? uri.toString() : "hdfs://127.0.0.1:" + uri.getPort();
  }

  /** HA: " nn1=127.0.0.1:P1 nn2=127.0.0.1:P2", the NameNodes' RPC addresses. */
  private String namenodeAddresses() {
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < NAMENODE_IDS.length; i++) {
      s.append(' ')
          .append(NAMENODE_IDS[i])
          .append("=127.0.0.1:")
          .append(namenodePorts[i]);
    }
    return s.toString();
  }

  /**
   * HA: makes the active NameNode standby (or, with {@code kill}, shuts it down) and the other
   * one active.
   */
  private String failover(boolean kill) throws Exception {
    if (!ha) {
      return "ERR failover needs an HA cluster (--ha)";
    }
    int from = -1;
    for (int i = 0; i < NAMENODE_IDS.length; i++) {
      if (cluster.isNameNodeUp(i) && cluster.getNameNode(i).isActiveState()) {
        from = i;
      }
    }
    if (from < 0) {
      return "ERR no active NameNode";
    }
    int to = 1 - from;
    if (!cluster.isNameNodeUp(to)) {
      return "ERR " + NAMENODE_IDS[to] + " is down";
    }
    if (kill) {
      cluster.shutdownNameNode(from);
    } else {
      cluster.transitionToStandby(from);
    }
    cluster.transitionToActive(to);
    waitOutOfSafeMode(to);
    return "OK active=" + NAMENODE_IDS[to];
  }

  private void installSignalHandlers() {
    for (String name : new String[] {"TERM", "INT"}) {
      try {
        sun.misc.Signal.handle(new sun.misc.Signal(name), signal -> shutdownAndExit(0));
      } catch (IllegalArgumentException e) {
        System.err.println("MiniHdfs: cannot handle SIG" + name + ": " + e);
      }
    }
  }

  private void serve(BufferedReader in) {
    while (true) {
      String line;
      try {
        line = in.readLine();
      } catch (IOException e) {
        line = null;
      }
      if (line == null) {
        shutdownAndExit(0);
        return;
      }
      line = line.strip();
      if (line.isEmpty()) {
        continue;
      }
      String[] words = line.indexOf('\t') >= 0 ? line.split("\t") : line.split(" +");
      if (words[0].equals("shutdown")) {
        out.println("OK");
        out.flush();
        shutdownAndExit(0);
        return;
      }
      String answer;
      try {
        answer = run(words);
      } catch (Throwable e) {
        System.err.println("MiniHdfs: command failed: " + line);
        e.printStackTrace();
        answer = "ERR " + describe(e);
      }
      out.println(answer);
      out.flush();
    }
  }

  private synchronized String run(String[] words) throws Exception {
    if (shutDown) {
      return "ERR shutting down";
    }
    switch (words[0]) {
      case "ping":
        return "OK";
      case "stop-namenode":
        closeClient();
        cluster.shutdownNameNode(0);
        namenodeDown = true;
        return "OK";
      case "start-namenode":
        closeClient();
        cluster.restartNameNode(0, true);
        namenodeDown = false;
        cluster.waitActive();
        waitOutOfSafeMode(0);
        return "OK " + url();
      case "stop-datanode":
        if (stoppedDataNode != null) {
          return "ERR the DataNode is already stopped";
        }
        stoppedDataNode = cluster.stopDataNode(0);
        return "OK";
      case "start-datanode":
        if (stoppedDataNode == null) {
          return "ERR the DataNode is not stopped";
        }
        if (!cluster.restartDataNode(stoppedDataNode, true)) {
          return "ERR restartDataNode returned false";
        }
        stoppedDataNode = null;
        if (!namenodeDown) {
          cluster.waitActive();
        }
        return "OK";
      case "failover":
        return failover(false);
      case "kill-active":
        return failover(true);
      case "ls":
        return list(argument(words, 1));
      case "get":
        return get(argument(words, 1), argument(words, 2));
      default:
        return "ERR unknown command " + words[0];
    }
  }

  private static String argument(String[] words, int index) {
    if (words.length <= index) {
      throw new IllegalArgumentException(words[0] + " needs " + index + " argument(s)");
    }
    return words[index];
  }

  private String list(String path) throws IOException {
    DistributedFileSystem fs = client();
    StringBuilder answer = new StringBuilder("OK");
    RemoteIterator<LocatedFileStatus> files;
    try {
      files = fs.listFiles(new org.apache.hadoop.fs.Path(path), true);
    } catch (java.io.FileNotFoundException e) {
      return "OK";
    }
    while (files.hasNext()) {
      LocatedFileStatus file = files.next();
      answer
          .append('\t')
          .append(file.getPath().toUri().getPath())
          .append('\t')
          .append(file.getLen())
          .append('\t')
          .append(fs.isFileClosed(file.getPath()) ? "closed" : "open");
    }
    return answer.toString();
  }

  private String get(String hdfsPath, String localPath) throws IOException {
    Path local = Paths.get(localPath);
    try (InputStream in = client().open(new org.apache.hadoop.fs.Path(hdfsPath))) {
      long bytes = Files.copy(in, local, StandardCopyOption.REPLACE_EXISTING);
      return "OK " + bytes;
    }
  }

  /** Hadoop's own client, with short retries so that a command fails fast when a node is down. */
  private DistributedFileSystem client() throws IOException {
    if (client == null) {
      Configuration clientConf = new Configuration(conf);
      clientConf.set("ipc.client.connect.max.retries", "1");
      clientConf.set("ipc.client.connect.retry.interval", "200");
      clientConf.set("dfs.client.retry.policy.enabled", "false");
      clientConf.setBoolean("fs.hdfs.impl.disable.cache", true);
      if (ha) {
        // The same keys a user's hdfs-site.xml has for a nameservice.
        clientConf.set("dfs.nameservices", NAMESERVICE);
        clientConf.set("dfs.ha.namenodes." + NAMESERVICE, String.join(",", NAMENODE_IDS));
        for (int i = 0; i < NAMENODE_IDS.length; i++) {
          clientConf.set(
              "dfs.namenode.rpc-address." + NAMESERVICE + "." + NAMENODE_IDS[i],
              "127.0.0.1:" + namenodePorts[i]);
        }
        clientConf.set(
            "dfs.client.failover.proxy.provider." + NAMESERVICE,
            "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider");
      }
      client = (DistributedFileSystem) FileSystem.newInstance(uri, clientConf);
    }
    return client;
  }

  private void closeClient() {
    if (client != null) {
      try {
        client.close();
      } catch (IOException e) {
        System.err.println("MiniHdfs: closing the client: " + e);
      }
      client = null;
    }
  }

  private void waitOutOfSafeMode(int namenode) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MILLIS);
    while (cluster.getNameNode(namenode).isInSafeMode()) {
      if (System.nanoTime() > deadline) {
        throw new IOException("the NameNode stayed in safe mode for " + WAIT_MILLIS + " ms");
      }
      Thread.sleep(20);
    }
  }

  private void shutdownAndExit(int status) {
    synchronized (this) {
      if (!shutDown) {
        shutDown = true;
        try {
          closeClient();
          cluster.shutdown(true);
        } catch (Throwable e) {
          System.err.println("MiniHdfs: shutdown failed");
          e.printStackTrace();
        }
        deleteRecursively(dir.toPath());
      }
    }
    System.out.flush();
    System.err.flush();
    // Not System.exit: Hadoop's shutdown hooks have nothing left to do and can only fail.
    Runtime.getRuntime().halt(status);
  }

  private static void deleteRecursively(Path root) {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
    } catch (IOException e) {
      System.err.println("MiniHdfs: deleting " + root + ": " + e);
    }
  }

  /** The exception class and the first line of its message (Hadoop's carry stack traces). */
  private static String describe(Throwable e) {
    String message = String.valueOf(e.getMessage());
    int newline = message.indexOf('\n');
    if (newline >= 0) {
      message = message.substring(0, newline);
    }
    return e.getClass().getName() + ": " + message;
  }
}
