//! Flume's JSON rendering (`GET /metrics`): what Flume's `HTTPMetricsServer` serves, so
//! tools written for Flume read flumen unchanged. Invariant: the names, the shape
//! (`{"<TYPE>.<name>": {...}}`) and the string-valued numbers are Flume's; never rename them
//! here (the Prometheus rendering is where naming conventions of other systems apply).

use super::Registry;

impl Registry {
    /// Flume's JSON: `{"CHANNEL.c1": {"ChannelSize": "0", ..., "Type": "CHANNEL"}}`, every
    /// value a string.
    pub fn render_json(&self) -> String {
        let mut top = serde_json::Map::new();
        for r in self.rows() {
            let mut m = serde_json::Map::new();
            for (k, v) in r.values {
                m.insert(k.name.to_string(), serde_json::Value::String(v.render()));
            }
            m.insert(
                "Type".into(),
                serde_json::Value::String(r.ty.flume_name().into()),
            );
            top.insert(
                format!("{}.{}", r.ty.flume_name(), r.name),
                serde_json::Value::Object(m),
            );
        }
        serde_json::Value::Object(top).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::registry;

    #[test]
    fn json_has_flumes_shape() {
        let (reg, _, _) = registry();
        let v: serde_json::Value = serde_json::from_str(&reg.render_json()).expect("json");
        let c1 = &v["CHANNEL.c1"];
        assert_eq!(c1["Type"], "CHANNEL");
        assert_eq!(c1["ChannelSize"], "1");
        assert_eq!(c1["ChannelCapacity"], "100");
        assert_eq!(c1["ChannelFillPercentage"], "1.0");
        assert_eq!(c1["EventPutSuccessCount"], "1");
        assert!(c1.get("Unhealthy").is_none(), "memory channel: {c1}");
        assert_ne!(c1["StartTime"], "0");
        assert_eq!(c1["StopTime"], "0");
        let r1 = &v["SOURCE.r1"];
        assert_eq!(r1["Type"], "SOURCE");
        assert_eq!(r1["EventReceivedCount"], "3");
        assert_eq!(r1["EventAcceptedCount"], "2");
        assert_eq!(r1["OpenConnectionCount"], "0");
        assert_eq!(r1["AppendBatchAcceptedCount"], "0");
        let k1 = &v["SINK.k1"];
        assert_eq!(k1["Type"], "SINK");
        assert_eq!(k1["EventDrainSuccessCount"], "7");
        assert_eq!(k1["BatchEmptyCount"], "0");
        // Every value a string.
        for comp in v.as_object().expect("object").values() {
            for val in comp.as_object().expect("object").values() {
                assert!(val.is_string(), "{val}");
            }
        }
    }
}
