//! A table's regions as `hbase:meta` lists them, and which region holds a row.
//!
//! The client reads a table's rows of `hbase:meta` in one scan ([`meta_scan`]) and keeps the
//! result ([`TableRegions`]) until a server says a region is not where the cache thinks
//! (moved, split, closing): then the whole table is read again, which also picks up the
//! daughters of a split. A row of `hbase:meta` is a region: its key is the region name
//! (`table,startKey,regionId.encodedName.`), `info:regioninfo` holds `PBUF` and a
//! `RegionInfo`, `info:server` the `host:port` serving it.
//!
//! Invariants: split parents and offline regions are skipped (their daughters hold the rows);
//! a region without a server is kept, so a row in it is known to be unassigned for now (a
//! retryable condition) rather than missing.

use prost::Message;

use super::proto;
use super::zk::ServerAddr;

/// The region name of `hbase:meta` itself (HBase 2 has one meta region).
pub const META_REGION: &[u8] = b"hbase:meta,,1";
const INFO: &[u8] = b"info";
const REGIONINFO: &[u8] = b"regioninfo";
const SERVER: &[u8] = b"server";

/// One region of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// The full region name (the meta row key), as `RegionSpecifier`s name it.
    pub name: Vec<u8>,
    pub start: Vec<u8>,
    /// Exclusive; empty for the last region.
    pub end: Vec<u8>,
    /// `None` while the region is not assigned to a server.
    pub server: Option<ServerAddr>,
}

/// A table's online regions, ordered by start key.
#[derive(Clone, Debug, Default)]
pub struct TableRegions {
    regions: Vec<Region>,
}

impl TableRegions {
    /// Orders `regions` by start key.
    pub fn new(mut regions: Vec<Region>) -> TableRegions {
        regions.sort_by(|a, b| a.start.cmp(&b.start));
        TableRegions { regions }
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The region whose `[start, end)` holds `row`; `None` in a gap (a split in progress
    /// shows one until the daughters are in meta).
    pub fn locate(&self, row: &[u8]) -> Option<&Region> {
        self.locate_index(row).map(|i| &self.regions[i])
    }

    /// [`locate`](Self::locate) as a place in [`regions`](Self::regions).
    pub fn locate_index(&self, row: &[u8]) -> Option<usize> {
        let i = self.regions.partition_point(|r| r.start.as_slice() <= row);
        let i = i.checked_sub(1)?;
        let r = &self.regions[i];
        (r.end.is_empty() || row < r.end.as_slice()).then_some(i)
    }
}

/// The meta scan that lists `table`'s regions: rows from `table,,` up to `table-,`.
/// `hbase:meta` orders rows by their comma-separated parts (table, start key, region id),
/// not bytewise, and a row without a comma sorts before every row with one, so both bounds
/// need one; `-` is the byte after `,`, and no table name holds a comma.
pub fn meta_scan(table: &str, max_rows: u32) -> proto::ScanRequest {
    let mut start = table.as_bytes().to_vec();
    start.extend_from_slice(b",,");
    let mut stop = table.as_bytes().to_vec();
    stop.extend_from_slice(&[b',' + 1, b',']);
    scan_request(start, stop, max_rows)
}

/// A one-call scan of `hbase:meta` from `start` (inclusive) to `stop`: the server answers
/// with up to `max_rows` rows and closes the scanner.
pub fn scan_request(start: Vec<u8>, stop: Vec<u8>, max_rows: u32) -> proto::ScanRequest {
    proto::ScanRequest {
        region: Some(region_specifier(META_REGION)),
        scan: Some(proto::Scan {
            column: vec![proto::Column {
                family: Some(INFO.to_vec()),
                qualifier: Vec::new(),
            }],
            start_row: Some(start),
            stop_row: Some(stop),
            max_versions: Some(1),
            cache_blocks: Some(true),
            reversed: None,
            caching: Some(max_rows),
        }),
        scanner_id: None,
        number_of_rows: Some(max_rows),
        close_scanner: Some(true),
        next_call_seq: None,
        client_handles_partials: None,
        client_handles_heartbeats: None,
        limit_of_rows: Some(max_rows),
    }
}

/// A `RegionSpecifier` by full region name.
pub fn region_specifier(name: &[u8]) -> proto::RegionSpecifier {
    proto::RegionSpecifier {
        r#type: Some(proto::region_specifier::RegionSpecifierType::RegionName as i32),
        value: Some(name.to_vec()),
    }
}

/// The region one meta row describes, `None` for a row to skip (a split parent, an offline
/// region, a read replica, another table's row).
pub fn parse_meta_row(result: &proto::Result, table: &str) -> Result<Option<Region>, String> {
    let mut name = None;
    let mut info = None;
    let mut server = None;
    for cell in &result.cell {
        if name.is_none() {
            name = cell.row.clone();
        }
        if cell.family.as_deref() != Some(INFO) {
            continue;
        }
        match cell.qualifier.as_deref() {
            Some(q) if q == REGIONINFO => info = cell.value.as_deref(),
            Some(q) if q == SERVER => server = cell.value.as_deref(),
            _ => {}
        }
    }
    let Some(name) = name else {
        return Ok(None);
    };
    let shown = String::from_utf8_lossy(&name).into_owned();
    let info = info.ok_or_else(|| format!("meta row `{shown}` has no info:regioninfo"))?;
    let pb = info
        .strip_prefix(b"PBUF")
        .ok_or_else(|| format!("meta row `{shown}`: info:regioninfo has no PBUF magic"))?;
    let ri = proto::RegionInfo::decode(pb)
        .map_err(|e| format!("meta row `{shown}`: info:regioninfo: {e}"))?;
    let tn = ri.table_name.unwrap_or_default();
    let ns = tn.namespace.unwrap_or_default();
    let q = tn.qualifier.unwrap_or_default();
    let full = if ns.is_empty() || ns == b"default" {
        q
    } else {
        [ns.as_slice(), b":", q.as_slice()].concat()
    };
    if full != table.as_bytes()
        || ri.offline.unwrap_or(false)
        || ri.split.unwrap_or(false)
        || ri.replica_id.unwrap_or(0) != 0
    {
        return Ok(None);
    }
    let server = match server {
        None | Some([]) => None,
        Some(s) => Some(parse_server(s).map_err(|e| format!("meta row `{shown}`: {e}"))?),
    };
    Ok(Some(Region {
        name,
        start: ri.start_key.unwrap_or_default(),
        end: ri.end_key.unwrap_or_default(),
        server,
    }))
}

/// `host:port` as meta's `info:server` holds it.
fn parse_server(s: &[u8]) -> Result<ServerAddr, String> {
    let s = std::str::from_utf8(s).map_err(|_| "info:server is not UTF-8".to_string())?;
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("info:server `{s}` is not host:port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("info:server `{s}` has no valid port"))?;
    Ok(ServerAddr {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: &[u8], end: &[u8]) -> Region {
        Region {
            name: [b"t,", start, b",1.x."].concat(),
            start: start.to_vec(),
            end: end.to_vec(),
            server: None,
        }
    }

    #[test]
    fn rows_are_located_by_start_key() {
        let t = TableRegions::new(vec![
            region(b"m", b"t"),
            region(b"", b"m"),
            region(b"t", b""),
        ]);
        assert_eq!(t.locate(b"").expect("first").start, b"");
        assert_eq!(t.locate(b"a").expect("first").start, b"");
        assert_eq!(t.locate(b"m").expect("second").start, b"m");
        assert_eq!(t.locate(b"szzz").expect("second").start, b"m");
        assert_eq!(t.locate(b"t").expect("last").start, b"t");
        assert_eq!(t.locate(b"\xff\xff").expect("last").start, b"t");
    }

    #[test]
    fn a_gap_between_regions_locates_nothing() {
        let t = TableRegions::new(vec![region(b"", b"g"), region(b"m", b"")]);
        assert!(t.locate(b"h").is_none());
        assert!(TableRegions::default().locate(b"a").is_none());
    }

    fn meta_row(table: &[u8], ri: proto::RegionInfo, server: Option<&[u8]>) -> proto::Result {
        let row = [table, b",,1.abc."].concat();
        let mut cells = vec![proto::Cell {
            row: Some(row.clone()),
            family: Some(INFO.to_vec()),
            qualifier: Some(REGIONINFO.to_vec()),
            value: Some([b"PBUF".as_slice(), &ri.encode_to_vec()].concat()),
            ..Default::default()
        }];
        if let Some(s) = server {
            cells.push(proto::Cell {
                row: Some(row),
                family: Some(INFO.to_vec()),
                qualifier: Some(SERVER.to_vec()),
                value: Some(s.to_vec()),
                ..Default::default()
            });
        }
        proto::Result {
            cell: cells,
            ..Default::default()
        }
    }

    fn info(ns: &[u8], q: &[u8]) -> proto::RegionInfo {
        proto::RegionInfo {
            region_id: Some(1),
            table_name: Some(proto::TableName {
                namespace: Some(ns.to_vec()),
                qualifier: Some(q.to_vec()),
            }),
            start_key: Some(Vec::new()),
            end_key: Some(b"k".to_vec()),
            ..Default::default()
        }
    }

    #[test]
    fn meta_rows_become_regions_and_parents_are_skipped() {
        let r = parse_meta_row(
            &meta_row(b"t", info(b"default", b"t"), Some(b"rs1:16020")),
            "t",
        )
        .expect("parse")
        .expect("a region");
        assert_eq!(r.end, b"k");
        assert_eq!(r.server.expect("server").to_string(), "rs1:16020");

        let ns = parse_meta_row(&meta_row(b"ns:t", info(b"ns", b"t"), None), "ns:t")
            .expect("parse")
            .expect("a region");
        assert!(ns.server.is_none());

        let mut parent = info(b"default", b"t");
        parent.split = Some(true);
        parent.offline = Some(true);
        assert!(parse_meta_row(&meta_row(b"t", parent, Some(b"rs1:1")), "t")
            .expect("parse")
            .is_none());
        assert!(
            parse_meta_row(&meta_row(b"u", info(b"default", b"u"), None), "t")
                .expect("parse")
                .is_none()
        );
    }

    #[test]
    fn malformed_meta_rows_are_errors() {
        let mut bad = meta_row(b"t", info(b"default", b"t"), Some(b"nocolon"));
        assert!(parse_meta_row(&bad, "t").is_err());
        bad.cell[0].value = Some(b"PBUF\xff\xff".to_vec());
        assert!(parse_meta_row(&bad, "t").is_err());
        bad.cell[0].value = Some(b"xx".to_vec());
        assert!(parse_meta_row(&bad, "t").is_err());
    }
}
