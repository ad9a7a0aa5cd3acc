package flumen.peer.flume;

import java.math.BigDecimal;

/**
 * One JSON object on one line, fields in the order they are added (the order flumen prints
 * them in, so the two lines read side by side). Only what the bench needs: strings without
 * control characters, integers, finite doubles and booleans.
 */
final class JsonLine {
  private final StringBuilder sb = new StringBuilder("{");

  private JsonLine key(String k) {
    if (sb.length() > 1) {
      sb.append(',');
    }
    sb.append('"').append(k).append("\":");
    return this;
  }

  JsonLine put(String k, String v) {
    key(k).sb.append('"').append(v.replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
    return this;
  }

  JsonLine put(String k, long v) {
    key(k).sb.append(v);
    return this;
  }

  /** Rounded to 3 decimals, as flumen rounds; plain notation (never 1.2E7). */
  JsonLine put(String k, double v) {
    double r = Double.isFinite(v) ? Math.round(v * 1000.0) / 1000.0 : 0.0;
    key(k).sb.append(BigDecimal.valueOf(r).toPlainString());
    return this;
  }

  JsonLine put(String k, boolean v) {
    key(k).sb.append(v);
    return this;
  }

  @Override
  public String toString() {
    return sb + "}";
  }
}
