package flumen.test;

import java.io.InputStream;
import java.util.zip.CRC32;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.DataOutputBuffer;
import org.apache.hadoop.io.SequenceFile;
import org.apache.hadoop.io.Writable;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;
import org.apache.hadoop.util.ReflectionUtils;

/**
 * Reads files written by flumen's HDFS format encoders with Hadoop's own readers, so a Rust
 * test can compare what Hadoop sees with what it wrote. Arguments: any number of
 * {@code seq:PATH} (a SequenceFile, read with SequenceFile.Reader) or {@code stream:PATH} (a
 * text stream, decompressed by the codec CompressionCodecFactory picks from the extension).
 * Prints one line per file, in argument order:
 * <pre>
 * OK PATH key=CLASS value=CLASS compression=NONE|RECORD|BLOCK codec=CLASS|none records=N syncs=N crc=HEX
 * OK PATH codec=CLASS|none bytes=N lines=N crc=HEX
 * OK PATH records=N values=V1,V2,...        (for seqvalues:PATH)
 * ERR PATH EXCEPTION
 * </pre>
 * The SequenceFile CRC32 runs over every record's serialized key then value (a
 * LongWritable's 8 bytes, a BytesWritable's length and bytes, a Text's VInt and bytes); the
 * stream CRC32 over the decompressed bytes. {@code syncs} counts records preceded by a sync
 * marker as the reader reports them. One JVM checks many files: each start costs seconds.
 */
public final class SeqCheck {
  public static void main(String[] args) throws Exception {
    Configuration conf = new Configuration();
    for (String arg : args) {
      int colon = arg.indexOf(':');
      String kind = arg.substring(0, colon);
      String where = arg.substring(colon + 1);
      // Local paths get file://; full URIs (hdfs://host:port/...) are read where they point.
      Path path = new Path(where.contains("://") ? where : "file://" + where);
      try {
        if (kind.equals("seq")) {
          System.out.println("OK " + path.toUri().getPath() + " " + checkSeq(conf, path));
        } else if (kind.equals("seqvalues")) {
          System.out.println("OK " + path.toUri().getPath() + " " + seqValues(conf, path));
        } else if (kind.equals("stream")) {
          System.out.println("OK " + path.toUri().getPath() + " " + checkStream(conf, path));
        } else {
          throw new IllegalArgumentException("unknown kind " + kind + " (seq: or stream:)");
        }
      } catch (Exception e) {
        System.out.println("ERR " + path.toUri().getPath() + " " + e.toString().replace('\n', ' '));
      }
    }
    System.out.flush();
  }

  private static String checkSeq(Configuration conf, Path path) throws Exception {
    try (SequenceFile.Reader reader = new SequenceFile.Reader(conf, SequenceFile.Reader.file(path))) {
      Writable key = (Writable) ReflectionUtils.newInstance(reader.getKeyClass(), conf);
      Writable value = (Writable) ReflectionUtils.newInstance(reader.getValueClass(), conf);
      CRC32 crc = new CRC32();
      DataOutputBuffer buf = new DataOutputBuffer();
      long records = 0;
      long syncs = 0;
      while (reader.next(key, value)) {
        records++;
        if (reader.syncSeen()) {
          syncs++;
        }
        buf.reset();
        key.write(buf);
        value.write(buf);
        crc.update(buf.getData(), 0, buf.getLength());
      }
      CompressionCodec codec = reader.getCompressionCodec();
      return "key=" + reader.getKeyClassName()
          + " value=" + reader.getValueClassName()
          + " compression=" + reader.getCompressionType()
          + " codec=" + (codec == null ? "none" : codec.getClass().getName())
          + " records=" + records
          + " syncs=" + syncs
          + " crc=" + Long.toHexString(crc.getValue());
    }
  }

  /** Every value of a SequenceFile as text (Text, or BytesWritable bytes as UTF-8), joined by commas. */
  private static String seqValues(Configuration conf, Path path) throws Exception {
    try (SequenceFile.Reader reader = new SequenceFile.Reader(conf, SequenceFile.Reader.file(path))) {
      Writable key = (Writable) ReflectionUtils.newInstance(reader.getKeyClass(), conf);
      Writable value = (Writable) ReflectionUtils.newInstance(reader.getValueClass(), conf);
      StringBuilder out = new StringBuilder();
      long records = 0;
      while (reader.next(key, value)) {
        if (records++ > 0) {
          out.append(',');
        }
        if (value instanceof org.apache.hadoop.io.BytesWritable) {
          org.apache.hadoop.io.BytesWritable b = (org.apache.hadoop.io.BytesWritable) value;
          out.append(new String(b.getBytes(), 0, b.getLength(), java.nio.charset.StandardCharsets.UTF_8));
        } else {
          out.append(value.toString());
        }
      }
      return "records=" + records + " values=" + out;
    }
  }

  private static String checkStream(Configuration conf, Path path) throws Exception {
    FileSystem fs = path.getFileSystem(conf);
    CompressionCodec codec = new CompressionCodecFactory(conf).getCodec(path);
    CRC32 crc = new CRC32();
    long bytes = 0;
    long lines = 0;
    try (InputStream raw = fs.open(path);
        InputStream in = codec == null ? raw : codec.createInputStream(raw)) {
      byte[] chunk = new byte[65536];
      int n;
      while ((n = in.read(chunk)) > 0) {
        crc.update(chunk, 0, n);
        bytes += n;
        for (int i = 0; i < n; i++) {
          if (chunk[i] == '\n') {
            lines++;
          }
        }
      }
    }
    return "codec=" + (codec == null ? "none" : codec.getClass().getName())
        + " bytes=" + bytes
        + " lines=" + lines
        + " crc=" + Long.toHexString(crc.getValue());
  }
}
