package flumen.test;

import java.io.File;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.TreeMap;

import org.apache.avro.file.DataFileReader;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;

/**
 * Reads Avro object container files with Apache Avro's own reader ({@code DataFileReader} with a
 * {@code GenericDatumReader}) and prints what it read, so a test can compare it with the events
 * it sent.
 *
 * <p>Usage: {@code AvroDump file...}. For each file, one line {@code CODEC <avro.codec>}, then one
 * line per record: its {@code headers} map as {@code k=v} pairs sorted by key and joined by
 * {@code &}, a tab, and its {@code body} bytes in lower-case hex. Exits non-zero (with Avro's
 * exception) on any file Avro cannot read whole.
 */
public final class AvroDump {
  private AvroDump() {}

  public static void main(String[] args) throws Exception {
    StringBuilder out = new StringBuilder();
    for (String path : args) {
      try (DataFileReader<GenericRecord> reader =
          new DataFileReader<>(new File(path), new GenericDatumReader<GenericRecord>())) {
        out.append("CODEC ").append(reader.getMetaString("avro.codec")).append('\n');
        for (GenericRecord r : reader) {
          Map<String, String> headers = new TreeMap<>();
          for (Map.Entry<?, ?> e : ((Map<?, ?>) r.get("headers")).entrySet()) {
            headers.put(e.getKey().toString(), e.getValue().toString());
          }
          StringBuilder h = new StringBuilder();
          for (Map.Entry<String, String> e : headers.entrySet()) {
            if (h.length() > 0) {
              h.append('&');
            }
            h.append(e.getKey()).append('=').append(e.getValue());
          }
          ByteBuffer body = (ByteBuffer) r.get("body");
          StringBuilder hex = new StringBuilder();
          while (body.hasRemaining()) {
            hex.append(String.format("%02x", body.get() & 0xff));
          }
          out.append(h).append('\t').append(hex).append('\n');
        }
      }
    }
    System.out.print(out);
  }
}
