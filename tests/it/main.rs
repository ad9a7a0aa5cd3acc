//! The one integration-test binary: black-box tests of the channel through its public API,
//! real files, real processes (kill -9) and the `flumen` binary.

mod agent;
mod agent_crash;
mod agent_proc;
mod avro_bad_input;
mod avro_client;
mod avro_flume;
mod avro_pipelining;
mod avro_sink;
mod avro_source;
mod avro_tier;
mod avro_tls;
mod cli;
mod common;
mod config_docs;
mod corruption;
mod crash;
mod faults;
mod flume_agent;
mod hdfs_cluster;
mod hdfs_faults;
mod hdfs_format;
mod hdfs_ha;
mod hdfs_sink;
mod hdfs_smoke;
mod java;
mod layers;
mod limits;
mod memory;
mod metrics;
mod model;
mod scan_agreement;
mod sink_errors;
mod spooldir;
mod taildir_bad_input;
mod taildir_crash;
