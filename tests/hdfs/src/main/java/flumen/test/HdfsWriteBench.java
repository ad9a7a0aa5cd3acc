package flumen.test;

import java.net.URI;
import java.util.Arrays;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.BytesWritable;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.SequenceFile;

/**
 * The baseline of `benches/hdfs_vs_java.sh`: Hadoop's own Java client writes the bytes flumen's
 * HDFS sink writes for the same workload (events of a given size, a sync every batch), into one
 * file, and prints one JSON line with the elapsed time.
 *
 * <p>Usage: {@code HdfsWriteBench hdfs://host:port /path events eventSize batch
 * DataStream|SequenceFile hsync|hflush|none} (none: no sync until close)
 */
public final class HdfsWriteBench {
  private HdfsWriteBench() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 7) {
      System.err.println(
          "usage: HdfsWriteBench URL PATH EVENTS EVENT_SIZE BATCH DataStream|SequenceFile"
              + " hsync|hflush|none");
      System.exit(2);
    }
    String url = args[0];
    Path path = new Path(args[1]);
    long events = Long.parseLong(args[2]);
    int size = Integer.parseInt(args[3]);
    int batch = Integer.parseInt(args[4]);
    boolean seq = args[5].equalsIgnoreCase("SequenceFile");
    String sync = args[6].toLowerCase();

    Configuration conf = new Configuration();
    conf.set("fs.defaultFS", url);
    FileSystem fs = FileSystem.get(new URI(url), conf);
    byte[] body = new byte[size];
    Arrays.fill(body, (byte) 'x');
    byte[] line = Arrays.copyOf(body, size + 1);
    line[size] = '\n';

    long start = System.nanoTime();
    long written = 0;
    if (seq) {
      try (SequenceFile.Writer w =
          SequenceFile.createWriter(
              conf,
              SequenceFile.Writer.file(path),
              SequenceFile.Writer.keyClass(LongWritable.class),
              SequenceFile.Writer.valueClass(BytesWritable.class),
              SequenceFile.Writer.compression(SequenceFile.CompressionType.NONE))) {
        LongWritable key = new LongWritable();
        BytesWritable value = new BytesWritable(body);
        while (written < events) {
          long n = Math.min(batch, events - written);
          for (long i = 0; i < n; i++) {
            key.set(System.currentTimeMillis());
            w.append(key, value);
          }
          written += n;
          if (sync.equals("hsync")) {
            w.hsync();
          } else if (sync.equals("hflush")) {
            w.hflush();
          }
        }
      }
    } else {
      try (FSDataOutputStream out = fs.create(path, false)) {
        while (written < events) {
          long n = Math.min(batch, events - written);
          for (long i = 0; i < n; i++) {
            out.write(line);
          }
          written += n;
          if (sync.equals("hsync")) {
            out.hsync();
          } else if (sync.equals("hflush")) {
            out.hflush();
          }
        }
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    long bytes = fs.getFileStatus(path).getLen();
    fs.close();
    System.out.printf(
        "{\"events\": %d, \"bytes\": %d, \"seconds\": %.4f, \"events_per_sec\": %.1f}%n",
        written, bytes, seconds, written / seconds);
  }
}
