//! Helpers shared by the fuzz targets and the seed writer: a deterministic way to turn fuzz
//! input into structured values that are valid by construction.

/// Reads little pieces off the front of a byte slice; once the input runs out every read
/// yields zeros (or nothing), so any input maps to some value and never panics.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u32(&mut self) -> u32 {
        let mut a = [0u8; 4];
        for b in &mut a {
            *b = self.u8();
        }
        u32::from_le_bytes(a)
    }

    pub fn u64(&mut self) -> u64 {
        let mut a = [0u8; 8];
        for b in &mut a {
            *b = self.u8();
        }
        u64::from_le_bytes(a)
    }

    /// Up to `max` bytes, the count chosen by the input.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.u8() as usize % (max + 1)).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// A short string (lossy UTF-8, so any bytes will do).
    pub fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }
}

/// Splits a record_decoder input into the segment id (its first 8 bytes, little-endian, when
/// there are 8) and the segment body (the rest).
pub fn split_segment_input(data: &[u8]) -> (u64, &[u8]) {
    match data.split_first_chunk::<8>() {
        Some((id, body)) => (u64::from_le_bytes(*id), body),
        None => (0, data),
    }
}
