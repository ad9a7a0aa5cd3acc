package flumen.test;

import java.io.ByteArrayOutputStream;
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
 * Sends events to a thrift source with the Flume SDK's ThriftRpcClient.
 *
 * <p>Usage: {@code ThriftSend host port count batch [first]}. Event i (from {@code first},
 * default 0) has headers {@code seq = i}, {@code k = v} and {@code "ünï" = "é€ i"}, and a binary
 * body: the decimal i, then the bytes {@code 00 FF FE 80} (not UTF-8). Prints {@code SENT n} once
 * every batch was acknowledged; exits 1 on the first batch the server did not accept
 * (EventDeliveryException), printing {@code FAILED <message>}. {@code -Dflumen.protocol=binary}
 * sets the client's {@code protocol} (compact, Flume's default, otherwise). With {@code
 * -Dflumen.ssl=true} the client is built with Flume's {@code ssl = true}, and {@code
 * -Dflumen.truststore=F}, {@code -Dflumen.truststore-password=P} and {@code
 * -Dflumen.truststore-type=T} are passed on as the client properties of the same names.
 */
public final class ThriftSend {
  private ThriftSend() {}

  /** The body of event i, as the tests expect it. */
  static byte[] body(int i) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    byte[] digits = Integer.toString(i).getBytes(StandardCharsets.UTF_8);
    b.write(digits, 0, digits.length);
    b.write(0x00);
    b.write(0xFF);
    b.write(0xFE);
    b.write(0x80);
    return b.toByteArray();
  }

  public static void main(String[] args) {
    String host = args[0];
    int port = Integer.parseInt(args[1]);
    int count = Integer.parseInt(args[2]);
    int batch = Integer.parseInt(args[3]);
    int first = args.length > 4 ? Integer.parseInt(args[4]) : 0;
    Properties p = new Properties();
    p.setProperty("client.type", "thrift");
    p.setProperty("hosts", "h1");
    p.setProperty("hosts.h1", host + ":" + port);
    p.setProperty("batch-size", Integer.toString(batch));
    p.setProperty("protocol", System.getProperty("flumen.protocol", "compact"));
    if (Boolean.parseBoolean(System.getProperty("flumen.ssl", "false"))) {
      p.setProperty("ssl", "true");
      for (String key : new String[] {"truststore", "truststore-password", "truststore-type"}) {
        String v = System.getProperty("flumen." + key);
        if (v != null) {
          p.setProperty(key, v);
        }
      }
    }
    RpcClient client = RpcClientFactory.getInstance(p);
    int sent = 0;
    try {
      List<Event> events = new ArrayList<>(batch);
      for (int i = first; i < first + count; i++) {
        Map<String, String> headers = new HashMap<>();
        headers.put("seq", Integer.toString(i));
        headers.put("k", "v");
        headers.put("ünï", "é€ " + i);
        events.add(EventBuilder.withBody(body(i), headers));
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
