//! HBase's protobuf messages as prost generates them from `proto/hbase.proto` (see that file
//! for which fields are declared and why). Generated at build time by `build.rs`.

#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/hbase.pb.rs"));
