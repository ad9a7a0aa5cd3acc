//! The structured target: a list of operations (`arbitrary`-derived) drives a whole
//! `FileChannel` on the in-memory filesystem (`flumen::io::mem::MemFs`) against a plain model
//! of the queue, the way tests/it/model.rs and tests/it/faults.rs do, but with the fuzzer
//! choosing the sequence: put batches, put rollbacks, takes into two open transactions,
//! commits and rollbacks of them, checkpoints, clean reopens, process crashes (the channel
//! dropped, the page cache kept), power cuts (`MemFs::crash`, optionally keeping a torn tail),
//! and one-shot I/O faults (`MemFs::fail_nth` of write, fdatasync, rename or allocate, with EIO
//! or ENOSPC).
//!
//! Invariants, checked at every reopen (and strictly after every take while no operation has
//! failed since the last reopen):
//! - every acknowledged put not taken-and-committed is present, after any reopen or crash;
//! - events come back in FIFO order (event ids are handed out in put order), each at most once;
//! - nothing else appears: a rolled-back put never, an unacknowledged (failed) put or a failed
//!   take's events may; a take committed without a sync since may come back only after a power
//!   cut, and then (while nothing failed) only the newest such commits, in commit order;
//! - a poisoned channel acknowledges no commit;
//! - while nothing failed, a take hands out the lowest ids available and `ChannelSize` counts
//!   what the model holds.

#![no_main]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use flumen::channel::file::{FileChannel, FileChannelConfig, FsyncPolicy};
use flumen::channel::{Channel, TakeTransaction};
use flumen::io::mem::{FaultOp, MemFs};
use flumen::io::Vfs;
use flumen::Event;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
/// Operations per input: enough for several rolls and crashes, few enough to stay fast.
const MAX_OPS: usize = 48;

#[derive(Arbitrary, Debug)]
enum Fault {
    Write,
    Sync,
    Rename,
    Allocate,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Put events whose body sizes are 8 + 8 * each byte, then commit.
    Put(Vec<u8>),
    /// Put this many events, then roll back.
    PutRollback(u8),
    /// Take up to `n` into transaction slot `slot` (opening it if needed).
    Take {
        slot: bool,
        n: u8,
    },
    CommitTake(bool),
    RollbackTake(bool),
    Checkpoint,
    /// Close cleanly and open again.
    Reopen,
    /// kill -9: the channel is dropped without closing; every byte written survives.
    ProcessCrash,
    /// Power loss: only synced bytes survive, plus up to `torn` bytes of an unsynced append.
    PowerCut {
        torn: u16,
    },
    /// The `nth` next call of `op` fails, once.
    Fail {
        op: Fault,
        nth: u8,
        enospc: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    direct_io: bool,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let fs = Arc::new(MemFs::new());
    let mut cfg = FileChannelConfig::new(Path::new("/ch"));
    cfg.direct_io = input.direct_io;
    cfg.max_file_size = 64 * 1024;
    cfg.minimum_required_space = 0;
    cfg.capacity = 1_000_000;
    cfg.transaction_capacity = 1_000_000;
    cfg.fsync = FsyncPolicy::EveryCommit;
    let mut h = Harness {
        fs,
        cfg,
        ch: None,
        txns: [None, None],
        available: BTreeSet::new(),
        maybe: BTreeSet::new(),
        acked: BTreeSet::new(),
        next_id: 0,
        unsynced_takes: Vec::new(),
        tainted: false,
    };
    h.open();
    for op in input.ops.iter().take(MAX_OPS) {
        h.step(op);
    }
    h.step(&Op::PowerCut { torn: 0 });
});

fn body(id: u64, size: usize) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.resize(8 + size, (id % 251) as u8);
    b
}

fn id_of(e: &Event) -> u64 {
    let b = e.body();
    assert!(b.len() >= 8, "an event body lost its id: {} bytes", b.len());
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    let id = u64::from_be_bytes(a);
    assert!(
        b[8..].iter().all(|&x| x == (id % 251) as u8),
        "body of event {id} is damaged"
    );
    id
}

/// An open take transaction and the ids it holds.
type OpenTake = (Box<dyn TakeTransaction>, Vec<u64>);

struct Harness {
    fs: Arc<MemFs>,
    cfg: FileChannelConfig,
    ch: Option<FileChannel>,
    txns: [Option<OpenTake>; 2],
    /// Acknowledged puts, not taken-and-committed, not in an open transaction: must survive.
    available: BTreeSet<u64>,
    /// Events that may or may not be there: failed puts (and failed puts recovered from a log
    /// nobody synced).
    maybe: BTreeSet<u64>,
    /// Every id whose put commit returned Ok.
    acked: BTreeSet<u64>,
    next_id: u64,
    /// Take commits (one entry each, in order) that no sync is known to cover yet.
    unsynced_takes: Vec<Vec<u64>>,
    /// An operation failed since the last reopen: the in-memory state is no longer exactly
    /// known, so only the reopen checks apply.
    tainted: bool,
}

impl Harness {
    fn ch(&self) -> &FileChannel {
        self.ch.as_ref().expect("open")
    }

    /// Opens the channel; a pending injected fault may fail an attempt (each fires once).
    fn open(&mut self) {
        let mut last = None;
        for _ in 0..16 {
            let fs: Arc<dyn Vfs> = self.fs.clone();
            match FileChannel::open_with("fuzz", self.cfg.clone(), fs) {
                Ok((ch, _)) => {
                    self.ch = Some(ch);
                    return;
                }
                Err(e) => last = Some(e),
            }
        }
        panic!("the channel does not open again: {last:?}");
    }

    /// Where the ids of a transaction that did not commit go back to.
    fn give_back(&mut self, ids: Vec<u64>) {
        for id in ids {
            if self.acked.contains(&id) {
                self.available.insert(id);
            } else {
                self.maybe.insert(id);
            }
        }
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Put(sizes) => {
                let sizes = &sizes[..sizes.len().min(16)];
                if sizes.is_empty() {
                    return;
                }
                let poisoned = self.ch().stats().poisoned;
                let mut tx = self.ch().put_transaction();
                let first = self.next_id;
                self.next_id += sizes.len() as u64;
                for (i, &s) in sizes.iter().enumerate() {
                    tx.put(Event::new(body(first + i as u64, usize::from(s) * 8)))
                        .expect("put into a transaction");
                }
                match tx.commit() {
                    Ok(()) => {
                        assert!(!poisoned, "a poisoned channel acknowledged a put");
                        self.acked.extend(first..self.next_id);
                        self.available.extend(first..self.next_id);
                        // The put's sync covers every take record written before it.
                        self.unsynced_takes.clear();
                    }
                    Err(_) => {
                        self.tainted = true;
                        self.maybe.extend(first..self.next_id);
                    }
                }
            }
            Op::PutRollback(n) => {
                let mut tx = self.ch().put_transaction();
                for i in 0..u64::from(*n % 8) {
                    tx.put(Event::new(body(u64::MAX - i, 5)))
                        .expect("put into a transaction");
                }
                tx.rollback();
            }
            Op::Take { slot, n } => {
                let slot = usize::from(*slot);
                let n = usize::from(*n % 40) + 1;
                let ch = self.ch().clone();
                let (tx, _) =
                    self.txns[slot].get_or_insert_with(|| (ch.take_transaction(), vec![]));
                let mut out = vec![];
                let got = match tx.take_batch(n, &mut out) {
                    Ok(got) => got,
                    Err(_) => {
                        self.tainted = true;
                        return;
                    }
                };
                assert_eq!(got, out.len());
                let ids: Vec<u64> = out.iter().map(id_of).collect();
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "a take is out of order: {ids:?}"
                );
                if !self.tainted {
                    let expected: Vec<u64> =
                        self.available.union(&self.maybe).take(n).copied().collect();
                    assert_eq!(ids, expected, "take must hand out the lowest available ids");
                }
                for id in &ids {
                    let known = self.available.remove(id) | self.maybe.remove(id);
                    assert!(
                        known,
                        "take handed out event {id}, which is not in the channel"
                    );
                }
                if let Some((_, held)) = &mut self.txns[slot] {
                    held.extend(ids);
                }
            }
            Op::CommitTake(slot) => {
                let poisoned = self.ch().stats().poisoned;
                if let Some((tx, ids)) = self.txns[usize::from(*slot)].take() {
                    match tx.commit() {
                        Ok(()) => {
                            assert!(
                                !poisoned || ids.is_empty(),
                                "a poisoned channel acknowledged a take"
                            );
                            if !ids.is_empty() {
                                self.unsynced_takes.push(ids);
                            }
                        }
                        Err(_) => {
                            // A failed take commit leaves its events (faults.rs).
                            self.tainted = true;
                            self.give_back(ids);
                        }
                    }
                }
            }
            Op::RollbackTake(slot) => {
                if let Some((tx, ids)) = self.txns[usize::from(*slot)].take() {
                    tx.rollback();
                    self.give_back(ids);
                }
            }
            Op::Checkpoint => match self.ch().checkpoint() {
                Ok(()) => self.unsynced_takes.clear(),
                Err(_) => self.tainted = true,
            },
            Op::Reopen => {
                for t in 0..2 {
                    if let Some((tx, ids)) = self.txns[t].take() {
                        tx.rollback();
                        self.give_back(ids);
                    }
                }
                let closed = self.ch().close();
                if closed.is_ok() {
                    self.unsynced_takes.clear();
                } else {
                    self.tainted = true;
                }
                self.ch = None;
                self.open();
                self.check_after_reopen(false);
            }
            Op::ProcessCrash | Op::PowerCut { .. } => {
                self.ch().simulate_crash();
                // Open transactions die with the process: drop them into the dead channel.
                for t in 0..2 {
                    if let Some((tx, ids)) = self.txns[t].take() {
                        drop(tx);
                        self.give_back(ids);
                    }
                }
                self.ch = None;
                let power = if let Op::PowerCut { torn } = op {
                    self.fs.crash_keeping(usize::from(*torn % 4096));
                    true
                } else {
                    false
                };
                self.open();
                self.check_after_reopen(power);
            }
            Op::Fail { op, nth, enospc } => {
                let op = match op {
                    Fault::Write => FaultOp::Write,
                    Fault::Sync => FaultOp::Sync,
                    Fault::Rename => FaultOp::Rename,
                    Fault::Allocate => FaultOp::Allocate,
                };
                let errno = if *enospc { ENOSPC } else { EIO };
                self.fs.fail_nth(op, u64::from(*nth % 8), errno);
            }
        }
        if !self.tainted {
            let in_flight: usize = self.txns.iter().flatten().map(|(_, ids)| ids.len()).sum();
            let held = (self.available.len() + self.maybe.len() + in_flight) as u64;
            assert_eq!(self.ch().stats().size, held, "ChannelSize after {op:?}");
        }
    }

    /// Reads everything (without consuming it) and checks it against the model; then the
    /// model holds exactly that.
    fn check_after_reopen(&mut self, power_cut: bool) {
        let mut tx = self.ch().take_transaction();
        let mut out = vec![];
        tx.take_batch(usize::MAX >> 1, &mut out)
            .expect("take all after reopen");
        tx.rollback();
        let got: Vec<u64> = out.iter().map(id_of).collect();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "after reopen, events are out of order or duplicated: {got:?}"
        );
        let got_set: BTreeSet<u64> = got.iter().copied().collect();
        let lost: Vec<u64> = self.available.difference(&got_set).copied().collect();
        assert!(
            lost.is_empty(),
            "acknowledged events {lost:?} are missing after reopen (power cut: {power_cut})"
        );
        let unsynced: BTreeSet<u64> = self.unsynced_takes.iter().flatten().copied().collect();
        let back: BTreeSet<u64> = got_set
            .iter()
            .filter(|id| !self.available.contains(id) && !self.maybe.contains(id))
            .copied()
            .collect();
        let allowed = if power_cut {
            &unsynced
        } else {
            &BTreeSet::new()
        };
        let stray: Vec<u64> = back.difference(allowed).copied().collect();
        assert!(
            stray.is_empty(),
            "events {stray:?} came back after reopen (power cut: {power_cut}), which were \
             taken-and-committed under a sync or never acknowledged; unsynced takes: {:?}",
            self.unsynced_takes
        );
        if power_cut && !self.tainted {
            // The log keeps a prefix of what was written: the takes that come back are the
            // newest ones.
            let suffix = (0..=self.unsynced_takes.len()).any(|k| {
                let s: BTreeSet<u64> = self.unsynced_takes[k..].iter().flatten().copied().collect();
                s == back
            });
            assert!(
                suffix,
                "after a power cut, events {back:?} came back, which are not the newest \
                 unsynced take commits {:?}",
                self.unsynced_takes
            );
        }
        self.available = got_set.intersection(&self.acked).copied().collect();
        self.maybe = got_set.difference(&self.acked).copied().collect();
        if power_cut {
            self.unsynced_takes.clear();
        }
        self.tainted = false;
    }
}
