package flumen.test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.flume.Event;
import org.apache.flume.EventDeliveryException;
import org.apache.flume.api.RpcClient;
import org.apache.flume.api.RpcClientFactory;
import org.apache.flume.event.EventBuilder;

/**
 * Sends events to an avro source with Flume's default RpcClient (Netty Avro).
 *
 * <p>Usage: {@code AvroSend host port count batch [first]}. Event i (from {@code first}, default
 * 0, to {@code first + count - 1}) has headers {@code seq = i, k = v} and body the decimal i.
 * Prints {@code SENT n} once every batch was acknowledged; exits 1 on the first batch the
 * server did not accept (EventDeliveryException), printing {@code FAILED <message>}. With
 * {@code -Dflumen.compression=deflate} the client is built from properties with Flume's
 * {@code compression-type = deflate} (level 6). With {@code -Dflumen.ssl=true} it is built with
 * Flume's {@code ssl = true}, and {@code -Dflumen.truststore=F}, {@code
 * -Dflumen.truststore-password=P}, {@code -Dflumen.truststore-type=T} or {@code
 * -Dflumen.trust-all-certs=true} are passed on as the client properties of the same names.
 * With {@code -Dflumen.headers=a,b,...} event i also has headers {@code a = a-i}, {@code b = b-i},
 * ..., put in that order after {@code seq} and {@code k}.
 */
public final class AvroSend {
  private AvroSend() {}

  public static void main(String[] args) {
    String host = args[0];
    int port = Integer.parseInt(args[1]);
    int count = Integer.parseInt(args[2]);
    int batch = Integer.parseInt(args[3]);
    int first = args.length > 4 ? Integer.parseInt(args[4]) : 0;
    String compression = System.getProperty("flumen.compression", "none");
    boolean ssl = Boolean.parseBoolean(System.getProperty("flumen.ssl", "false"));
    String headerList = System.getProperty("flumen.headers", "");
    String[] extraHeaders = headerList.isEmpty() ? new String[0] : headerList.split(",");
    RpcClient client;
    if (compression.equals("none") && !ssl) {
      client = RpcClientFactory.getDefaultInstance(host, port, batch);
    } else {
      Properties p = new Properties();
      p.setProperty("client.type", "default");
      p.setProperty("hosts", "h1");
      p.setProperty("hosts.h1", host + ":" + port);
      p.setProperty("batch-size", Integer.toString(batch));
      if (!compression.equals("none")) {
        p.setProperty("compression-type", compression);
        p.setProperty("compression-level", "6");
      }
      if (ssl) {
        p.setProperty("ssl", "true");
        for (String key :
            new String[] {
              "truststore", "truststore-password", "truststore-type", "trust-all-certs"
            }) {
          String v = System.getProperty("flumen." + key);
          if (v != null) {
            p.setProperty(key, v);
          }
        }
      }
      client = RpcClientFactory.getInstance(p);
    }
    int sent = 0;
    try {
      List<Event> events = new ArrayList<>(batch);
      for (int i = first; i < first + count; i++) {
        Map<String, String> headers = new HashMap<>();
        headers.put("seq", Integer.toString(i));
        headers.put("k", "v");
        for (String name : extraHeaders) {
          headers.put(name, name + "-" + i);
        }
        events.add(
            EventBuilder.withBody(Integer.toString(i).getBytes(StandardCharsets.UTF_8), headers));
        if (events.size() == batch || i == first + count - 1) {
          client.appendBatch(events);
          sent += events.size();
          events.clear();
        }
      }
    } catch (EventDeliveryException e) {
      System.out.println("FAILED after " + sent + ": " + e);
      System.out.flush();
      client.close();
      System.exit(1);
    }
    client.close();
    System.out.println("SENT " + sent);
    System.out.flush();
  }
}
