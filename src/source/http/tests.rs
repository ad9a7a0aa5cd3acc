//! The http source driven over a real socket with a memory channel behind it.
