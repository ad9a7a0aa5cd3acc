//! Generates the hbase client's protobuf messages from `src/hbase/proto/hbase.proto` into
//! `OUT_DIR` (included by `src/hbase/proto.rs`). protox parses the .proto in Rust, so no
//! `protoc` is needed.

fn main() {
    let proto = "src/hbase/proto/hbase.proto";
    println!("cargo:rerun-if-changed={proto}");
    let files = match protox::compile([proto], ["src/hbase/proto"]) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("{proto}: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = prost_build::Config::new().compile_fds(files) {
        eprintln!("generating Rust from {proto}: {e}");
        std::process::exit(1);
    }
}
