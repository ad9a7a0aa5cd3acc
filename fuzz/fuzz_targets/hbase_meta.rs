//! Fuzzes what flumen's HBase client reads about where regions are: the meta location znode
//! from ZooKeeper (`hbase::zk::parse_meta_znode`) and `hbase:meta` rows
//! (`hbase::region::parse_meta_row`), which carry a `PBUF`-prefixed `RegionInfo` and a
//! `host:port` server. The input is used three ways: as a znode, as a whole protobuf `Result`,
//! and split in two as the `info:regioninfo` and `info:server` values of a well-formed row, so
//! the parsers behind the protobuf layer are reached without the fuzzer building one. None may
//! panic; a parsed region must hold a row inside its own bounds when it is located.

#![no_main]

use flumen::hbase::proto;
use flumen::hbase::region::{parse_meta_row, TableRegions};
use flumen::hbase::zk::parse_meta_znode;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = parse_meta_znode(data);
    if let Ok(result) = proto::Result::decode(data) {
        let _ = parse_meta_row(&result, "t");
    }
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (info, server) = data.split_at(cut);
    let cell = |q: &[u8], v: &[u8]| proto::Cell {
        row: Some(b"t,,1.x.".to_vec()),
        family: Some(b"info".to_vec()),
        qualifier: Some(q.to_vec()),
        value: Some(v.to_vec()),
        ..Default::default()
    };
    let row = proto::Result {
        cell: vec![
            cell(b"regioninfo", &[b"PBUF".as_slice(), info].concat()),
            cell(b"server", server),
        ],
        ..Default::default()
    };
    if let Ok(Some(region)) = parse_meta_row(&row, "t") {
        let start = region.start.clone();
        let table = TableRegions::new(vec![region]);
        if let Some(found) = table.locate(&start) {
            assert!(found.end.is_empty() || start < found.end || found.start == found.end);
        }
    }
});
