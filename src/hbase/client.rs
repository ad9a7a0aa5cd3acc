//! [`Client`]: the region cache, one connection per server, mutations grouped per server and
//! region, and retries.
//!
//! [`Client::apply`] sends every pending mutation of a batch at once: one `Multi` call per
//! region server (a `RegionAction` per region inside it), all written before any answer is
//! read, so servers work in parallel. Acknowledged mutations leave the batch; the rest are
//! retried with backoff after whatever their failure calls for: a region that moved, split or
//! is closing makes the table's regions be read again from `hbase:meta` (and the meta location
//! from ZooKeeper, if meta itself moved); a connection that fails is dropped and, since its
//! server may be gone, the table's regions are read again too. A failure no retry can fix (a
//! missing column family, a disabled table) ends the call at once.
//!
//! Invariants: `apply` returns `Ok` only when every mutation was acknowledged by the server
//! holding its row; a mutation acknowledged once is never sent again by the same call (only the
//! caller's retry of a whole batch can write it twice); retries stop at
//! [`ClientConfig::operation_timeout`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::HBaseError;
use super::mutation::Mutation;
use super::proto;
use super::region::{self, Region, TableRegions};
use super::rpc::RpcConnection;
use super::zk::{self, ServerAddr};

/// Rows asked of `hbase:meta` per scan call.
const META_ROWS_PER_CALL: u32 = 5000;
/// The first wait between attempts (HBase's `hbase.client.pause`), doubled up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// How to reach HBase and how hard to try.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `host:port[,host:port...]` (Flume's `zookeeperQuorum`; a host without a port means
    /// 2181).
    pub quorum: String,
    /// Flume's `znodeParent` (`/hbase`).
    pub znode_parent: String,
    /// The user name sent with SIMPLE authentication.
    pub user: String,
    /// One RPC's deadline, and the connect timeout.
    pub rpc_timeout: Duration,
    /// How long [`Client::apply`] keeps retrying before it returns the last failure.
    pub operation_timeout: Duration,
    /// Writes skip the region server's write-ahead log (Flume's `enableWal = false`): faster,
    /// and lost if the region server dies before a flush.
    pub skip_wal: bool,
}

impl ClientConfig {
    /// An RPC timeout of 60 s (HBase's `hbase.rpc.timeout`), an operation timeout of 60 s
    /// (HBase's is 20 min; a sink does better to hand a failure back to its runner, which
    /// keeps the events, backs off and reports), the process user's name.
    pub fn new(quorum: &str, znode_parent: &str) -> ClientConfig {
        ClientConfig {
            quorum: quorum.to_string(),
            znode_parent: znode_parent.to_string(),
            user: std::env::var("USER").unwrap_or_else(|_| "flumen".to_string()),
            rpc_timeout: Duration::from_secs(60),
            operation_timeout: Duration::from_secs(60),
            skip_wal: false,
        }
    }
}

/// What the client has done, for a sink's counters and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Connections opened to servers (meta and region servers).
    pub connections_opened: u64,
    /// Connection attempts that failed, and connections dropped after an error.
    pub connections_failed: u64,
    /// Times a table's regions were read from `hbase:meta` (the first time included).
    pub region_lookups: u64,
    /// Attempts of `apply` after its first (each resends only what was not acknowledged).
    pub retries: u64,
    /// Mutations acknowledged.
    pub mutations: u64,
}

/// A connection to one HBase cluster. Not shared between threads: each sink has its own.
pub struct Client {
    config: ClientConfig,
    meta: ServerAddr,
    /// Open connections, each with its serial: a call sent on a connection since replaced
    /// can never be answered.
    conns: HashMap<ServerAddr, (u64, RpcConnection)>,
    next_serial: u64,
    tables: HashMap<String, Arc<TableRegions>>,
    stats: ClientStats,
}

/// What to do about a failed mutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The region is not where the cache says: read meta again, then retry.
    Relocate,
    /// Wait and retry (a busy server, a broken connection).
    Retry,
    /// No retry can help.
    Permanent,
}

impl Client {
    /// Reads the meta location from ZooKeeper, so an unreachable quorum fails here.
    pub fn connect(config: ClientConfig) -> Result<Client, HBaseError> {
        let meta = zk::meta_location(&config.quorum, &config.znode_parent, config.rpc_timeout)?;
        Ok(Client {
            config,
            meta,
            conns: HashMap::new(),
            next_serial: 0,
            tables: HashMap::new(),
            stats: ClientStats::default(),
        })
    }

    /// The configuration the client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What the client has done so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Checks that `table` exists and has `family` (a `Get` naming the family, which the
    /// region server refuses if the table has no such family).
    pub fn check_table(&mut self, table: &str, family: &[u8]) -> Result<(), HBaseError> {
        let mut retry = Retrying::new(Instant::now(), self.config.operation_timeout);
        loop {
            let err = match self.try_check(table, family) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !err.is_retryable() {
                return Err(err);
            }
            self.tables.remove(table);
            retry.pause(err)?;
        }
    }

    fn try_check(&mut self, table: &str, family: &[u8]) -> Result<(), HBaseError> {
        let regions = self.regions(table)?;
        let first = regions.regions()[0].clone();
        let server = first.server.clone().ok_or_else(|| not_online(&first))?;
        let req = proto::GetRequest {
            region: Some(region::region_specifier(&first.name)),
            get: Some(proto::Get {
                // A row inside the region (HBase refuses an empty row).
                row: Some([first.start.as_slice(), &[0]].concat()),
                column: vec![proto::Column {
                    family: Some(family.to_vec()),
                    qualifier: Vec::new(),
                }],
                existence_only: Some(true),
            }),
        };
        match self.call::<_, proto::GetResponse>(&server, "Get", &req) {
            Ok(_) => Ok(()),
            Err(HBaseError::Remote { class, .. }) if simple_name(&class) == NO_FAMILY => {
                Err(no_family(table, family))
            }
            Err(e) => Err(e),
        }
    }

    /// Applies every mutation to `table`; `Ok` when the region servers acknowledged all of
    /// them. See the module docs for what is retried.
    pub fn apply(&mut self, table: &str, mutations: &[Mutation]) -> Result<(), HBaseError> {
        let start = Instant::now();
        let all: Vec<usize> = (0..mutations.len()).collect();
        let round = self.send_round(table, mutations, &all);
        self.finish(table, mutations, all.len(), round, start)
    }

    /// Sends `mutations` (one `Multi` per region server) and returns at once; the answers are
    /// read by [`Client::complete`], which also does any retrying. Several batches may be in
    /// flight: a server works on the next while the client waits for the first.
    pub fn submit(&mut self, table: &str, mutations: Vec<Mutation>) -> InFlight {
        let start = Instant::now();
        let all: Vec<usize> = (0..mutations.len()).collect();
        let round = self.send_round(table, &mutations, &all);
        InFlight {
            table: table.to_string(),
            mutations,
            round,
            start,
        }
    }

    /// Waits for a batch [`submit`](Client::submit)ted earlier: `Ok` when every mutation was
    /// acknowledged, as [`apply`](Client::apply).
    pub fn complete(&mut self, batch: InFlight) -> Result<(), HBaseError> {
        let InFlight {
            table,
            mutations,
            round,
            start,
        } = batch;
        self.finish(&table, &mutations, mutations.len(), round, start)
    }

    /// Collects `round`'s answers and retries what is left until it is all acknowledged, a
    /// failure no retry fixes, or the operation timeout.
    fn finish(
        &mut self,
        table: &str,
        mutations: &[Mutation],
        sent: usize,
        round: Round,
        start: Instant,
    ) -> Result<(), HBaseError> {
        let mut retry = Retrying::new(start, self.config.operation_timeout);
        let mut in_round = sent;
        let mut round = round;
        loop {
            let used = round.regions.clone();
            let (pending, worst) = self.collect_round(table, mutations, round);
            self.stats.mutations += (in_round - pending.len()) as u64;
            let Some((failure, err)) = worst else {
                return Ok(());
            };
            match failure {
                Failure::Permanent => return Err(err),
                Failure::Relocate => self.forget(table, used.as_ref()),
                Failure::Retry => {}
            }
            retry.pause(err)?;
            self.stats.retries += 1;
            in_round = pending.len();
            round = self.send_round(table, mutations, &pending);
        }
    }

    /// Drops `table`'s cached regions, unless they were read again since `used` (the regions a
    /// failed round was sent with): with several batches in flight, one re-read serves all of
    /// them.
    fn forget(&mut self, table: &str, used: Option<&Arc<TableRegions>>) {
        let current = self.tables.get(table);
        if used.is_none() || current.is_some_and(|c| used.is_some_and(|u| Arc::ptr_eq(c, u))) {
            self.tables.remove(table);
        }
    }

    /// Sends the `pending` mutations, one `Multi` per region server, without reading answers.
    /// Mutations that could not be sent (no region, no server, a failed connection) are in
    /// the round's `left` with the failure.
    fn send_round(&mut self, table: &str, mutations: &[Mutation], pending: &[usize]) -> Round {
        let mut round = Round::default();
        let regions = match self.regions(table) {
            Ok(r) => r,
            Err(e) => {
                let f = if e.is_retryable() {
                    Failure::Retry
                } else {
                    Failure::Permanent
                };
                note(&mut round.worst, f, e);
                round.left = pending.to_vec();
                return round;
            }
        };
        round.regions = Some(regions.clone());
        // Mutation indexes per region (by its place in the cache), then regions per server:
        // nothing is allocated per mutation but its index.
        let mut by_region: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &i in pending {
            let row = mutations[i].row();
            match regions.locate_index(row) {
                Some(r) => by_region.entry(r).or_default().push(i),
                None => {
                    round.left.push(i);
                    let e = HBaseError::Remote {
                        server: "hbase:meta".into(),
                        class: "no region".into(),
                        message: format!(
                            "no region of `{table}` holds row {} (a split in progress?)",
                            show_row(row)
                        ),
                    };
                    note(&mut round.worst, Failure::Relocate, e);
                }
            }
        }
        let mut plan: BTreeMap<&ServerAddr, Vec<(&Region, Vec<usize>)>> = BTreeMap::new();
        for (r, idx) in by_region {
            let region = &regions.regions()[r];
            match &region.server {
                Some(s) => plan.entry(s).or_default().push((region, idx)),
                None => {
                    round.left.extend(idx);
                    note(&mut round.worst, Failure::Relocate, not_online(region));
                }
            }
        }
        for (server, by_region) in plan {
            let req = proto::MultiRequest {
                region_action: by_region
                    .iter()
                    .map(|(r, idx)| proto::RegionAction {
                        region: Some(region::region_specifier(&r.name)),
                        atomic: None,
                        action: idx
                            .iter()
                            .map(|&i| proto::Action {
                                index: Some(i as u32),
                                mutation: Some(to_proto(&mutations[i], self.config.skip_wal)),
                            })
                            .collect(),
                    })
                    .collect(),
                nonce_group: None,
            };
            let order: Vec<Vec<usize>> = by_region.into_iter().map(|(_, idx)| idx).collect();
            match self.send(server, "Multi", &req) {
                Ok(call) => round.sent.push(Sent {
                    server: server.clone(),
                    call,
                    order,
                }),
                Err(e) => {
                    order.iter().for_each(|idx| round.left.extend(idx.iter()));
                    let f = failure_of(&e);
                    note(&mut round.worst, f, e);
                }
            }
        }
        round
    }

    /// Reads the answers to a round's calls. Returns the mutations still pending (sorted) and
    /// the worst failure among them.
    fn collect_round(
        &mut self,
        table: &str,
        mutations: &[Mutation],
        round: Round,
    ) -> (Vec<usize>, Option<(Failure, HBaseError)>) {
        let Round {
            regions: _,
            sent,
            mut left,
            mut worst,
        } = round;
        for Sent {
            server,
            call,
            order,
        } in sent
        {
            let resp: proto::MultiResponse = match self.receive(&server, call) {
                Ok(r) => r,
                Err(e) => {
                    order.iter().for_each(|idx| left.extend(idx.iter()));
                    let f = failure_of(&e);
                    note(&mut worst, f, e);
                    continue;
                }
            };
            for (k, idx) in order.iter().enumerate() {
                let Some(rar) = resp.region_action_result.get(k) else {
                    left.extend(idx.iter());
                    let e = HBaseError::Protocol {
                        peer: format!("HBase server {server}"),
                        what: "Multi response",
                        detail: format!(
                            "{} region results for {} regions",
                            resp.region_action_result.len(),
                            order.len()
                        ),
                    };
                    note(&mut worst, Failure::Retry, e);
                    continue;
                };
                if let Some(ex) = &rar.exception {
                    left.extend(idx.iter());
                    let (f, e) = remote(table, mutations, idx[0], &server, ex);
                    note(&mut worst, f, e);
                    continue;
                }
                let mut done = vec![false; idx.len()];
                for (k, roe) in rar.result_or_exception.iter().enumerate() {
                    // Servers answer in the order of the actions: try that place first, so a
                    // large batch is not matched in quadratic time.
                    let at = |x: u32| match idx.get(k) {
                        Some(&i) if i as u32 == x => Some(k),
                        _ => idx.iter().position(|&i| i as u32 == x),
                    };
                    let Some(pos) = roe.index.and_then(at) else {
                        continue;
                    };
                    match &roe.exception {
                        None => done[pos] = true,
                        Some(ex) => {
                            let (f, e) = remote(table, mutations, idx[pos], &server, ex);
                            note(&mut worst, f, e);
                        }
                    }
                }
                for (pos, &i) in idx.iter().enumerate() {
                    if !done[pos] {
                        left.push(i);
                        if worst.is_none() {
                            let e = HBaseError::Protocol {
                                peer: format!("HBase server {server}"),
                                what: "Multi response",
                                detail: format!("no result for action {i}"),
                            };
                            note(&mut worst, Failure::Retry, e);
                        }
                    }
                }
            }
        }
        left.sort_unstable();
        (left, worst)
    }

    /// `table`'s regions, from the cache or `hbase:meta`.
    fn regions(&mut self, table: &str) -> Result<Arc<TableRegions>, HBaseError> {
        if let Some(r) = self.tables.get(table) {
            return Ok(r.clone());
        }
        self.stats.region_lookups += 1;
        let regions = match self.scan_meta(table) {
            Ok(r) => r,
            Err(e) => {
                // Meta may have moved: ask ZooKeeper again before the next try.
                if let Ok(meta) = zk::meta_location(
                    &self.config.quorum,
                    &self.config.znode_parent,
                    self.config.rpc_timeout,
                ) {
                    self.meta = meta;
                }
                return Err(e);
            }
        };
        if regions.is_empty() {
            return Err(HBaseError::TableNotFound {
                table: table.to_string(),
            });
        }
        let regions = Arc::new(regions);
        self.tables.insert(table.to_string(), regions.clone());
        Ok(regions)
    }

    fn scan_meta(&mut self, table: &str) -> Result<TableRegions, HBaseError> {
        let meta = self.meta.clone();
        let mut req = region::meta_scan(table, META_ROWS_PER_CALL);
        let mut found = Vec::new();
        loop {
            let resp: proto::ScanResponse = self.call(&meta, "Scan", &req)?;
            let mut last_row = None;
            for result in &resp.results {
                if let Some(r) = region::parse_meta_row(result, table).map_err(|detail| {
                    HBaseError::Protocol {
                        peer: format!("HBase server {meta} (hbase:meta)"),
                        what: "meta row",
                        detail,
                    }
                })? {
                    found.push(r);
                }
                last_row = result.cell.first().and_then(|c| c.row.clone());
            }
            // A full answer may have more rows after it: go on from just after the last.
            match last_row {
                Some(mut row) if resp.results.len() as u32 >= META_ROWS_PER_CALL => {
                    row.push(0);
                    if let Some(scan) = req.scan.as_mut() {
                        scan.start_row = Some(row);
                    }
                }
                _ => break,
            }
        }
        Ok(TableRegions::new(found))
    }

    fn conn(&mut self, server: &ServerAddr) -> Result<(u64, &mut RpcConnection), HBaseError> {
        self.drop_if_broken(server);
        if !self.conns.contains_key(server) {
            match RpcConnection::open(server, &self.config.user, self.config.rpc_timeout) {
                Ok(c) => {
                    self.stats.connections_opened += 1;
                    self.next_serial += 1;
                    self.conns.insert(server.clone(), (self.next_serial, c));
                }
                Err(e) => {
                    self.stats.connections_failed += 1;
                    return Err(e);
                }
            }
        }
        self.conns
            .get_mut(server)
            .map(|(serial, c)| (*serial, c))
            .ok_or_else(|| HBaseError::Connection {
                server: server.to_string(),
                detail: "connection vanished".into(),
            })
    }

    fn send<M: prost::Message>(
        &mut self,
        server: &ServerAddr,
        method: &str,
        req: &M,
    ) -> Result<CallId, HBaseError> {
        let r = self
            .conn(server)
            .and_then(|(serial, c)| Ok((serial, c.send(method, req)?)));
        self.drop_if_broken(server);
        r
    }

    fn receive<R: prost::Message + Default>(
        &mut self,
        server: &ServerAddr,
        (serial, id): CallId,
    ) -> Result<R, HBaseError> {
        let r = match self.conns.get_mut(server) {
            Some((s, c)) if *s == serial => c.receive(id),
            _ => Err(HBaseError::Connection {
                server: server.to_string(),
                detail: "the connection the call was sent on failed before it was answered".into(),
            }),
        };
        self.drop_if_broken(server);
        r
    }

    fn call<M: prost::Message, R: prost::Message + Default>(
        &mut self,
        server: &ServerAddr,
        method: &str,
        req: &M,
    ) -> Result<R, HBaseError> {
        let id = self.send(server, method, req)?;
        self.receive(server, id)
    }

    fn drop_if_broken(&mut self, server: &ServerAddr) {
        if self.conns.get(server).is_some_and(|(_, c)| c.is_broken()) {
            self.conns.remove(server);
            self.stats.connections_failed += 1;
        }
    }
}

/// A call in flight: the serial of the connection it was sent on, and its call id.
type CallId = (u64, u32);

/// A batch handed to [`Client::submit`] whose answers are not read yet.
pub struct InFlight {
    table: String,
    mutations: Vec<Mutation>,
    round: Round,
    start: Instant,
}

impl InFlight {
    /// The batch's mutations.
    pub fn len(&self) -> usize {
        self.mutations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty()
    }
}

/// One attempt at a batch: the calls sent, and what could not be sent with why.
#[derive(Default)]
struct Round {
    /// The cached regions the round was planned with.
    regions: Option<Arc<TableRegions>>,
    sent: Vec<Sent>,
    left: Vec<usize>,
    worst: Option<(Failure, HBaseError)>,
}

/// One `Multi` call sent: to which server, its id, and the mutation indexes of each region
/// action in the order they were sent.
struct Sent {
    server: ServerAddr,
    call: CallId,
    order: Vec<Vec<usize>>,
}

/// Keeps the failure that decides what happens next: a permanent one over a relocation over a
/// plain retry; among equals, the latest.
fn note(worst: &mut Option<(Failure, HBaseError)>, f: Failure, e: HBaseError) {
    let rank = |f: Failure| match f {
        Failure::Retry => 0,
        Failure::Relocate => 1,
        Failure::Permanent => 2,
    };
    if worst.as_ref().is_none_or(|(w, _)| rank(f) >= rank(*w)) {
        *worst = Some((f, e));
    }
}

const NO_FAMILY: &str = "NoSuchColumnFamilyException";

/// The class name without its package.
fn simple_name(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// What a server exception calls for, by HBase's class names.
fn classify(class: &str) -> Failure {
    match simple_name(class) {
        "NotServingRegionException"
        | "RegionMovedException"
        | "RegionOpeningException"
        | "WrongRegionException"
        | "RegionServerStoppedException"
        | "RegionServerAbortedException"
        | "ServerNotRunningYetException"
        | "UnknownRegionException" => Failure::Relocate,
        NO_FAMILY
        | "DoNotRetryIOException"
        | "FailedSanityCheckException"
        | "TableNotFoundException"
        | "TableNotEnabledException"
        | "TableNotDisabledException"
        | "UnknownProtocolException"
        | "UnsupportedOperationException"
        | "AccessDeniedException"
        | "InvalidFamilyOperationException"
        | "NamespaceNotFoundException"
        | "QuotaExceededException" => Failure::Permanent,
        _ => Failure::Retry,
    }
}

/// What a failed `Multi` call calls for. A connection that cannot be opened or broke means
/// the server may be gone (crashed, stopped): its regions are reopened elsewhere and only
/// `hbase:meta` says where, so the cache is read again, as HBase's own client clears the
/// locations of a server it cannot reach. Retrying with the cached location would try the
/// dead server until the operation timeout, and every later batch again.
fn failure_of(e: &HBaseError) -> Failure {
    match e {
        HBaseError::Remote { class, .. } => classify(class),
        HBaseError::Connection { .. } => Failure::Relocate,
        _ => Failure::Retry,
    }
}

/// A server's exception for a mutation, classified and named.
fn remote(
    table: &str,
    mutations: &[Mutation],
    i: usize,
    server: &ServerAddr,
    ex: &proto::NameBytesPair,
) -> (Failure, HBaseError) {
    let class = ex.name.clone().unwrap_or_default();
    let message = ex
        .value
        .as_deref()
        .map(|v| {
            String::from_utf8_lossy(v)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    if simple_name(&class) == NO_FAMILY {
        let family = match &mutations[i] {
            Mutation::Put { cells, .. } => cells.first().map(|c| c.family.clone()),
            Mutation::Increment { cells, .. } => cells.first().map(|c| c.family.clone()),
        }
        .unwrap_or_default();
        return (Failure::Permanent, no_family(table, &family));
    }
    (
        classify(&class),
        HBaseError::Remote {
            server: server.to_string(),
            class,
            message,
        },
    )
}

fn no_family(table: &str, family: &[u8]) -> HBaseError {
    HBaseError::NoSuchFamily {
        table: table.to_string(),
        family: String::from_utf8_lossy(family).into_owned(),
    }
}

fn not_online(r: &Region) -> HBaseError {
    HBaseError::Remote {
        server: "hbase:meta".into(),
        class: "region not assigned".into(),
        message: format!(
            "region {} has no server yet (opening or in transition)",
            String::from_utf8_lossy(&r.name)
        ),
    }
}

/// The waits between attempts of one call: [`FIRST_PAUSE`] doubling to [`MAX_PAUSE`], until
/// the next wait would pass the operation's deadline.
struct Retrying {
    start: Instant,
    deadline: Instant,
    pause: Duration,
    attempts: u32,
}

impl Retrying {
    fn new(start: Instant, timeout: Duration) -> Retrying {
        Retrying {
            start,
            deadline: start + timeout,
            pause: FIRST_PAUSE,
            attempts: 1,
        }
    }

    /// Waits before the next attempt after `last` failed; `Err` (naming `last`) when no
    /// attempt fits before the deadline.
    fn pause(&mut self, last: HBaseError) -> Result<(), HBaseError> {
        if Instant::now() + self.pause > self.deadline {
            return Err(HBaseError::RetriesExhausted {
                attempts: self.attempts,
                elapsed_ms: self.start.elapsed().as_millis() as u64,
                last: Box::new(last),
            });
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        self.attempts += 1;
        Ok(())
    }
}

/// A row key for a message: UTF-8 as is, anything else in hex, cut at 64 bytes.
fn show_row(row: &[u8]) -> String {
    let cut = &row[..row.len().min(64)];
    match std::str::from_utf8(cut) {
        Ok(s) => format!("`{s}`"),
        Err(_) => cut.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The `MutationProto` of a put or an increment, cells inside the message.
fn to_proto(m: &Mutation, skip_wal: bool) -> proto::MutationProto {
    use proto::mutation_proto::column_value::QualifierValue;
    use proto::mutation_proto::{ColumnValue, Durability, MutationType};
    // Cells of one family go in one ColumnValue, in the order given.
    fn group<'a>(cells: impl Iterator<Item = (&'a [u8], &'a [u8], Vec<u8>)>) -> Vec<ColumnValue> {
        let mut out: Vec<ColumnValue> = Vec::new();
        for (family, qualifier, value) in cells {
            let qv = QualifierValue {
                qualifier: Some(qualifier.to_vec()),
                value: Some(value),
                timestamp: None,
            };
            match out.iter_mut().find(|c| c.family.as_deref() == Some(family)) {
                Some(c) => c.qualifier_value.push(qv),
                None => out.push(ColumnValue {
                    family: Some(family.to_vec()),
                    qualifier_value: vec![qv],
                }),
            }
        }
        out
    }
    let (row, kind, columns) = match m {
        Mutation::Put { row, cells } => (
            row,
            MutationType::Put,
            group(
                cells
                    .iter()
                    .map(|c| (c.family.as_slice(), c.qualifier.as_slice(), c.value.clone())),
            ),
        ),
        Mutation::Increment { row, cells } => (
            row,
            MutationType::Increment,
            group(cells.iter().map(|c| {
                (
                    c.family.as_slice(),
                    c.qualifier.as_slice(),
                    c.amount.to_be_bytes().to_vec(),
                )
            })),
        ),
    };
    proto::MutationProto {
        row: Some(row.clone()),
        mutate_type: Some(kind as i32),
        column_value: columns,
        timestamp: None,
        durability: Some(if skip_wal {
            Durability::SkipWal
        } else {
            Durability::UseDefault
        } as i32),
        associated_cell_count: None,
        nonce: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hbase::mutation::{IncrementCell, PutCell};

    #[test]
    fn exceptions_are_classified_by_class_name() {
        assert_eq!(
            classify("org.apache.hadoop.hbase.NotServingRegionException"),
            Failure::Relocate
        );
        assert_eq!(
            classify("org.apache.hadoop.hbase.exceptions.RegionMovedException"),
            Failure::Relocate
        );
        assert_eq!(
            classify("org.apache.hadoop.hbase.regionserver.NoSuchColumnFamilyException"),
            Failure::Permanent
        );
        assert_eq!(
            classify("org.apache.hadoop.hbase.RegionTooBusyException"),
            Failure::Retry
        );
        // A server that cannot be reached may be dead: where its regions went is in meta.
        let refused = HBaseError::Connection {
            server: "127.0.0.1:16020".into(),
            detail: "Connection refused".into(),
        };
        assert_eq!(failure_of(&refused), Failure::Relocate);
    }

    #[test]
    fn increments_carry_big_endian_longs_grouped_by_family() {
        let m = Mutation::Increment {
            row: b"incRow".to_vec(),
            cells: vec![
                IncrementCell {
                    family: b"f".to_vec(),
                    qualifier: b"a".to_vec(),
                    amount: 3,
                },
                IncrementCell {
                    family: b"f".to_vec(),
                    qualifier: b"b".to_vec(),
                    amount: -1,
                },
            ],
        };
        let p = to_proto(&m, false);
        assert_eq!(p.mutate_type, Some(1));
        assert_eq!(p.column_value.len(), 1);
        let qv = &p.column_value[0].qualifier_value;
        assert_eq!(qv[0].value.as_deref(), Some(&3i64.to_be_bytes()[..]));
        assert_eq!(qv[1].value.as_deref(), Some(&(-1i64).to_be_bytes()[..]));

        let put = Mutation::Put {
            row: b"r".to_vec(),
            cells: vec![PutCell {
                family: b"f".to_vec(),
                qualifier: b"q".to_vec(),
                value: b"v".to_vec(),
            }],
        };
        let p = to_proto(&put, true);
        assert_eq!(p.mutate_type, Some(2));
        assert_eq!(p.durability, Some(1));
    }
}
