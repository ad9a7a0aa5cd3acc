//! Model test: random sequences of put, take, commit, rollback, checkpoint, clean reopen and
//! simulated crash, checked after every step against a plain in-memory model of the queue.
//!
//! The model is a FIFO of event ids: a committed put appends ids; a take hands out the lowest
//! available ids; a committed take removes them; a rollback, or a reopen of any kind, returns
//! them to where they were. A crash on `MemFs` drops every byte not yet synced, which is a
//! power cut: every acknowledged put must survive it, and a committed take may come back only
//! if no sync covered it yet (a take commit does not wait for one: at-least-once), and then
//! only the newest takes, in commit order. On the real backends a crash is `simulate_crash`
//! (kill -9: the page cache survives), and nothing committed may come back.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use flumen::channel::file::{FileChannel, FileChannelConfig};
use flumen::channel::{Channel, TakeTransaction};
use flumen::io::mem::MemFs;
use flumen::io::{IoKind, Vfs};
use flumen::Event;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Put events of these body sizes and commit.
    Put(Vec<u16>),
    /// Put events, then roll back.
    PutRollback(u8),
    /// Take up to n into take transaction slot s (opening it if needed).
    Take {
        slot: usize,
        n: u8,
    },
    CommitTake(usize),
    RollbackTake(usize),
    Checkpoint,
    Reopen,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(0u16..3000, 1..40).prop_map(Op::Put),
        1 => (1u8..10).prop_map(Op::PutRollback),
        5 => (0usize..2, 1u8..60).prop_map(|(slot, n)| Op::Take { slot, n }),
        3 => (0usize..2).prop_map(Op::CommitTake),
        2 => (0usize..2).prop_map(Op::RollbackTake),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

fn body(id: u64, size: u16) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.resize(8 + size as usize, (id % 251) as u8);
    b
}

fn id_of(e: &Event) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&e.body()[..8]);
    let id = u64::from_be_bytes(a);
    assert!(
        e.body()[8..].iter().all(|&b| b == (id % 251) as u8),
        "body of event {id} is damaged"
    );
    id
}

/// An open take transaction and the ids the model says it holds.
type OpenTake = (Box<dyn TakeTransaction>, Vec<u64>);

struct Harness {
    fs: Option<Arc<MemFs>>,
    cfg: FileChannelConfig,
    ch: Option<FileChannel>,
    txns: [Option<OpenTake>; 2],
    available: BTreeSet<u64>,
    next_id: u64,
    /// Ids of take commits (one entry per commit, in order) that no sync is known to cover:
    /// a later put commit's sync, a checkpoint or a clean close covers them all.
    unsynced_takes: Vec<Vec<u64>>,
}

impl Harness {
    fn open(&mut self) {
        let ch = match &self.fs {
            Some(fs) => {
                let fs: Arc<dyn Vfs> = fs.clone();
                FileChannel::open_with("model", self.cfg.clone(), fs)
                    .expect("reopen")
                    .0
            }
            None => FileChannel::open("model", self.cfg.clone()).expect("reopen"),
        };
        self.ch = Some(ch);
    }

    fn ch(&self) -> &FileChannel {
        self.ch.as_ref().expect("open")
    }

    /// Everything in flight returns to the queue, as after any restart.
    fn forget_txns(&mut self) {
        for t in &mut self.txns {
            if let Some((tx, ids)) = t.take() {
                // Dropping it rolls back into the old, dead channel: harmless.
                drop(tx);
                self.available.extend(ids);
            }
        }
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Put(sizes) => {
                let mut tx = self.ch().put_transaction();
                let first = self.next_id;
                for (i, &s) in sizes.iter().enumerate() {
                    tx.put(Event::new(body(first + i as u64, s))).expect("put");
                }
                tx.commit().expect("commit put");
                self.unsynced_takes.clear();
                self.next_id += sizes.len() as u64;
                self.available.extend(first..self.next_id);
            }
            Op::PutRollback(n) => {
                let mut tx = self.ch().put_transaction();
                for i in 0..*n {
                    tx.put(Event::new(body(u64::MAX - u64::from(i), 5)))
                        .expect("put");
                }
                tx.rollback();
            }
            Op::Take { slot, n } => {
                let ch = self.ch().clone();
                let (tx, ids) =
                    self.txns[*slot].get_or_insert_with(|| (ch.take_transaction(), vec![]));
                let mut out = vec![];
                let got = tx.take_batch(*n as usize, &mut out).expect("take");
                assert_eq!(got, out.len());
                let expected: Vec<u64> = self.available.iter().take(*n as usize).copied().collect();
                let got_ids: Vec<u64> = out.iter().map(id_of).collect();
                assert_eq!(
                    got_ids, expected,
                    "take must hand out the lowest available ids"
                );
                for id in &expected {
                    self.available.remove(id);
                }
                ids.extend(expected);
            }
            Op::CommitTake(slot) => {
                if let Some((tx, ids)) = self.txns[*slot].take() {
                    tx.commit().expect("commit take");
                    if !ids.is_empty() {
                        self.unsynced_takes.push(ids);
                    }
                }
            }
            Op::RollbackTake(slot) => {
                if let Some((tx, ids)) = self.txns[*slot].take() {
                    tx.rollback();
                    self.available.extend(ids);
                }
            }
            Op::Checkpoint => {
                self.ch().checkpoint().expect("checkpoint");
                self.unsynced_takes.clear();
            }
            Op::Reopen => {
                for t in &mut self.txns {
                    if let Some((tx, ids)) = t.take() {
                        tx.rollback();
                        self.available.extend(ids);
                    }
                }
                self.ch().close().expect("close");
                self.unsynced_takes.clear();
                self.ch = None;
                self.open();
                self.check_contents();
            }
            Op::Crash => {
                self.ch().simulate_crash();
                if let Some(fs) = &self.fs {
                    fs.crash();
                }
                // Open transactions die with the process; their drop must not touch the new
                // channel (they hold the old one).
                self.forget_txns();
                self.ch = None;
                self.open();
                if self.fs.is_some() {
                    self.accept_unsynced_takes_back();
                }
                self.unsynced_takes.clear();
                self.check_contents();
            }
        }
        let in_flight: usize = self.txns.iter().flatten().map(|(_, ids)| ids.len()).sum();
        assert_eq!(
            self.ch().stats().size,
            (self.available.len() + in_flight) as u64,
            "ChannelSize after {op:?}"
        );
    }

    /// After a power cut: the events of the newest unsynced take commits may be back (a suffix
    /// of them, since the log keeps a prefix); the model takes back exactly those.
    fn accept_unsynced_takes_back(&mut self) {
        let mut tx = self.ch().take_transaction();
        let mut out = vec![];
        tx.take_batch(usize::MAX >> 1, &mut out).expect("take all");
        tx.rollback();
        let back: BTreeSet<u64> = out
            .iter()
            .map(id_of)
            .filter(|id| !self.available.contains(id))
            .collect();
        let suffix_matches = (0..=self.unsynced_takes.len()).any(|k| {
            let suffix: BTreeSet<u64> =
                self.unsynced_takes[k..].iter().flatten().copied().collect();
            suffix == back
        });
        assert!(
            suffix_matches,
            "after a power cut, events {back:?} came back, which are not the newest unsynced take commits {:?}",
            self.unsynced_takes
        );
        self.available.extend(back);
    }

    /// Reads everything available without consuming it.
    fn check_contents(&mut self) {
        let mut tx = self.ch().take_transaction();
        let mut out = vec![];
        tx.take_batch(usize::MAX >> 1, &mut out).expect("take all");
        tx.rollback();
        let ids: Vec<u64> = out.iter().map(id_of).collect();
        let expected: Vec<u64> = self.available.iter().copied().collect();
        assert_eq!(ids, expected, "contents after reopen");
    }
}

fn run(ops: &[Op], backend: Option<IoKind>, direct_io: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fs, root) = match backend {
        None => (Some(Arc::new(MemFs::new())), Path::new("/ch").to_path_buf()),
        Some(_) => (None, dir.path().to_path_buf()),
    };
    let mut cfg = FileChannelConfig::new(&root);
    cfg.io = backend.unwrap_or(IoKind::Std);
    cfg.direct_io = direct_io;
    cfg.max_file_size = 64 * 1024;
    cfg.minimum_required_space = 0;
    cfg.transaction_capacity = 10_000_000;
    cfg.capacity = 10_000_000;
    let mut h = Harness {
        fs,
        cfg,
        ch: None,
        txns: [None, None],
        available: BTreeSet::new(),
        next_id: 0,
        unsynced_takes: vec![],
    };
    h.open();
    for op in ops {
        h.step(op);
    }
    h.step(&Op::Crash);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn file_channel_matches_model_across_power_cuts(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops, None, true);
    }

    /// The same with `directIo = false`: each record is written as it commits.
    #[test]
    fn file_channel_without_direct_io_matches_model_across_power_cuts(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run(&ops, None, false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn file_channel_matches_model_on_std_files(ops in prop::collection::vec(op(), 1..60)) {
        run(&ops, Some(IoKind::Std), true);
    }

    #[test]
    fn file_channel_matches_model_on_io_uring(ops in prop::collection::vec(op(), 1..60)) {
        run(&ops, Some(IoKind::Uring), true);
    }
}
