//! The writes a sink hands the client: puts and increments of cells in one column family
//! each, the two kinds of `Mutate` Flume's HBase sinks send. Kept free of protobuf types so a
//! serializer can build them without knowing the wire.

/// One cell of a put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutCell {
    pub family: Vec<u8>,
    pub qualifier: Vec<u8>,
    pub value: Vec<u8>,
}

/// One counter of an increment: `amount` is added to the 8-byte big-endian long in the cell
/// (a missing cell counts as 0), as HBase's `Increment.addColumn` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementCell {
    pub family: Vec<u8>,
    pub qualifier: Vec<u8>,
    pub amount: i64,
}

/// A write to one row. The server stamps cells with its own time (Flume's sinks set no
/// timestamp either).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    Put {
        row: Vec<u8>,
        cells: Vec<PutCell>,
    },
    Increment {
        row: Vec<u8>,
        cells: Vec<IncrementCell>,
    },
}

impl Mutation {
    /// The row the mutation writes, which decides its region.
    pub fn row(&self) -> &[u8] {
        match self {
            Mutation::Put { row, .. } | Mutation::Increment { row, .. } => row,
        }
    }
}
