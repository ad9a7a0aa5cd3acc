//! The client's failures, named for an operator: which quorum, server, table or family, and
//! whether retrying can help.

use thiserror::Error;

/// What went wrong talking to HBase.
#[derive(Debug, Error)]
pub enum HBaseError {
    /// ZooKeeper could not be reached or did not answer.
    #[error("cannot reach the ZooKeeper quorum {quorum}: {detail}; check zookeeperQuorum and that ZooKeeper is running")]
    Quorum { quorum: String, detail: String },
    /// ZooKeeper has no meta location under the parent znode.
    #[error(
        "ZooKeeper {quorum} has no {znode}: is znodeParent right and is HBase's master running?"
    )]
    NoMetaLocation { quorum: String, znode: String },
    /// `hbase:meta` lists no region of the table.
    #[error("table `{table}` does not exist in HBase (no region in hbase:meta): create it, e.g. `create '{table}', 'FAMILY'` in the HBase shell")]
    TableNotFound { table: String },
    /// The table has no such column family.
    #[error("table `{table}` has no column family `{family}`: add it (`alter '{table}', NAME => '{family}'`) or fix columnFamily")]
    NoSuchFamily { table: String, family: String },
    /// A connection to a server failed, or it closed the connection, mid-call or before.
    #[error("region server {server}: {detail}")]
    Connection { server: String, detail: String },
    /// The server answered a call with an exception.
    #[error("region server {server} answered {class}: {message}")]
    Remote {
        server: String,
        class: String,
        message: String,
    },
    /// What a server or ZooKeeper sent could not be decoded.
    #[error("{peer} sent a malformed {what}: {detail}")]
    Protocol {
        peer: String,
        what: &'static str,
        detail: String,
    },
    /// Retries ran out.
    #[error("gave up after {attempts} attempts over {elapsed_ms} ms; last failure: {last}")]
    RetriesExhausted {
        attempts: u32,
        elapsed_ms: u64,
        last: Box<HBaseError>,
    },
}

impl HBaseError {
    /// Whether waiting and retrying can succeed without anyone acting.
    pub fn is_retryable(&self) -> bool {
        match self {
            HBaseError::TableNotFound { .. } | HBaseError::NoSuchFamily { .. } => false,
            HBaseError::RetriesExhausted { last, .. } => last.is_retryable(),
            _ => true,
        }
    }
}
