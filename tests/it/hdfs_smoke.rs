//! Smoke tests of hdfs-native against a real HDFS (MiniDFSCluster, see `hdfs_cluster`): they pin
//! the client behaviour the `hdfs` sink is built on. hsync makes the data visible to Hadoop's
//! reader (the NameNode's length only moves at a block's first hsync, as with Hadoop's client); rename `x.tmp` -> `x`; append to a closed file; a lease
//! held by a dropped writer and `recover_lease`; what a stopped NameNode or DataNode does to
//! calls (which error, how fast with shortened retries) and that clients and files survive
//! a restart, even when a call was cancelled by a timeout during the outage. Each test prints
//! what it measured (`--nocapture`).

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};

use crate::hdfs_cluster::{short_retry_config, MiniHdfs};

/// Deadline for a call expected to succeed.
const CALL_DEADLINE: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn new_client(url: &str, fast_fail: bool) -> Client {
    let mut builder = ClientBuilder::new().with_url(url);
    if fast_fail {
        builder = builder.with_config(short_retry_config());
    }
    builder.build().expect("hdfs-native client")
}

/// Awaits `fut` (an hdfs-native call) with a deadline; panics if it hangs.
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(CALL_DEADLINE, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: no result within {CALL_DEADLINE:?}"),
    }
}

/// Awaits `fut`, expecting an error; returns it with the time it took.
async fn expect_err<T, F>(what: &str, deadline: Duration, fut: F) -> (HdfsError, Duration)
where
    F: Future<Output = Result<T, HdfsError>>,
{
    let started = Instant::now();
    match tokio::time::timeout(deadline, fut).await {
        Ok(Err(e)) => {
            let took = started.elapsed();
            println!("{what}: {} after {took:?}", brief(&e));
            (e, took)
        }
        Ok(Ok(_)) => panic!("{what}: succeeded, expected an error"),
        Err(_) => panic!("{what}: still running after {deadline:?}, expected a fast error"),
    }
}

/// An error's variant and the first line of its message (Java stack traces are long).
fn brief(e: &HdfsError) -> String {
    let text = format!("{e:?}");
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(240)
        .collect()
}

async fn read_all(client: &Client, path: &str) -> Vec<u8> {
    let mut reader = within("open for reading", client.read(path))
        .await
        .expect("open for reading");
    let len = reader.file_length();
    within("read", reader.read_bytes(len))
        .await
        .expect("read")
        .to_vec()
}

async fn write_file(client: &Client, path: &str, data: &'static [u8]) {
    let mut w = within("create", client.create(path, WriteOptions::default()))
        .await
        .expect("create");
    within("write", w.write_bytes(Bytes::from_static(data)))
        .await
        .expect("write");
    within("close", w.close()).await.expect("close");
}

/// Polls `recover_lease` until the file is closed (lease recovery is asynchronous).
async fn recover(client: &Client, path: &str) -> Duration {
    let started = Instant::now();
    loop {
        let done = within("recover_lease", client.recover_lease(path))
            .await
            .expect("recover_lease");
        if done {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < CALL_DEADLINE,
            "lease recovery of {path} did not finish within {CALL_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn hdfs_native_write_sync_rename_append() {
    let hdfs = MiniHdfs::shared();
    let dir = "/t/hdfs_native_write_sync_rename_append";
    let tmp = format!("{dir}/x.tmp");
    let done = format!("{dir}/x");
    runtime().block_on(async {
        let client = new_client(hdfs.url(), false);

        // Create, write, hsync: the synced length is visible before close.
        let mut w = within("create", client.create(&tmp, WriteOptions::default()))
            .await
            .expect("create x.tmp");
        within("write", w.write_bytes(Bytes::from_static(b"hello ")))
            .await
            .expect("write");
        within("hsync", w.hsync()).await.expect("hsync");
        let info = within("get_file_info", client.get_file_info(&tmp))
            .await
            .expect("get_file_info");
        assert_eq!(info.length, 6, "get_file_info sees the synced length");
        // Hadoop's own client agrees: open, 6 bytes readable.
        assert!(hdfs.hadoop_ls(&format!("{dir}/none")).is_empty());
        let listed = hdfs.hadoop_ls(dir);
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!((listed[0].len, listed[0].closed), (6, false));
        assert_eq!(hdfs.hadoop_read(&tmp), b"hello ");
        // hdfs-native's own reader sees nothing of a file still being written.
        let open_read = read_all(&client, &tmp).await;
        println!(
            "hdfs-native reader of an open, hsynced file: {} bytes",
            open_read.len()
        );
        assert!(open_read.is_empty() || open_read == b"hello ");
        // A second hsync in the same block goes to the DataNodes only (as Hadoop's client,
        // vendor/hdfs-native/FLUMEN-PATCH.md): Hadoop's reader, which asks the DataNode, sees
        // the bytes; the NameNode's length stays at the block's first sync.
        within("write", w.write_bytes(Bytes::from_static(b"there ")))
            .await
            .expect("write");
        within("hsync", w.hsync()).await.expect("hsync");
        assert_eq!(hdfs.hadoop_read(&tmp), b"hello there ");
        let info = within("get_file_info", client.get_file_info(&tmp))
            .await
            .expect("get_file_info");
        assert_eq!(
            info.length, 6,
            "the NameNode's length is the block's first sync"
        );

        within("write", w.write_bytes(Bytes::from_static(b"world")))
            .await
            .expect("write");
        within("close", w.close()).await.expect("close");
        within("close again", w.close())
            .await
            .expect("a second close is a no-op");

        // Rename x.tmp -> x, the sink's roll.
        let started = Instant::now();
        within("rename", client.rename(&tmp, &done, false))
            .await
            .expect("rename");
        println!("rename x.tmp -> x: {:?}", started.elapsed());
        match within("get_file_info", client.get_file_info(&tmp)).await {
            Err(HdfsError::FileNotFound(_)) => {}
            other => panic!("x.tmp after the rename: {other:?}"),
        }
        assert_eq!(read_all(&client, &done).await, b"hello there world");
        let listed = hdfs.hadoop_ls(dir);
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(
            (listed[0].path.as_str(), listed[0].len, listed[0].closed),
            (done.as_str(), 17, true)
        );

        // Append to the closed file.
        let mut a = within("append", client.append(&done))
            .await
            .expect("append");
        within("write", a.write_bytes(Bytes::from_static(b"!")))
            .await
            .expect("append write");
        within("close", a.close()).await.expect("append close");
        assert_eq!(read_all(&client, &done).await, b"hello there world!");
        assert_eq!(hdfs.hadoop_read(&done), b"hello there world!");

        // Appending to a missing file: an RPCError naming FileNotFoundException.
        let (e, _) = expect_err(
            "append to a missing file",
            CALL_DEADLINE,
            client.append(&format!("{dir}/missing")),
        )
        .await;
        assert!(
            matches!(&e, HdfsError::RPCError(class, _) if class.ends_with("FileNotFoundException")),
            "{e:?}"
        );

        // create without overwrite over an existing file: AlreadyExists.
        let (e, _) = expect_err(
            "create over an existing file",
            CALL_DEADLINE,
            client.create(&done, WriteOptions::default()),
        )
        .await;
        assert!(matches!(e, HdfsError::AlreadyExists(_)), "{e:?}");
        // create with overwrite: replaces an existing file; on a missing one it also works.
        let overwrite = WriteOptions::default().overwrite(true);
        let mut w = within("create overwrite", client.create(&done, overwrite.clone()))
            .await
            .expect("create with overwrite over an existing file");
        within("close", w.close()).await.expect("close");
        assert_eq!(
            within("info", client.get_file_info(&done))
                .await
                .expect("info")
                .length,
            0
        );
        match within(
            "create overwrite missing",
            client.create(&format!("{dir}/new"), overwrite),
        )
        .await
        {
            Ok(mut w) => {
                within("close", w.close()).await.expect("close");
                println!("create(overwrite=true) of a missing file: Ok");
            }
            Err(e) => println!("create(overwrite=true) of a missing file: {}", brief(&e)),
        }

        // A writer dropped without close keeps its lease: appending fails until the lease
        // is recovered.
        let orphan = format!("{dir}/orphan");
        let mut w = within("create", client.create(&orphan, WriteOptions::default()))
            .await
            .expect("create orphan");
        within("write", w.write_bytes(Bytes::from_static(b"kept")))
            .await
            .expect("write");
        within("hsync", w.hsync()).await.expect("hsync");
        drop(w);
        let (e, _) = expect_err(
            "append to a file whose writer was dropped",
            CALL_DEADLINE,
            client.append(&orphan),
        )
        .await;
        assert!(
            matches!(&e, HdfsError::AlreadyExists(_) | HdfsError::RPCError(..)),
            "{e:?}"
        );
        let took = recover(&client, &orphan).await;
        println!("recover_lease of a dropped writer's file: closed after {took:?}");
        assert_eq!(read_all(&client, &orphan).await, b"kept");
        let mut a = within("append", client.append(&orphan))
            .await
            .expect("append after lease recovery");
        within("write", a.write_bytes(Bytes::from_static(b"+")))
            .await
            .expect("write");
        within("close", a.close()).await.expect("close");
        assert_eq!(hdfs.hadoop_read(&orphan), b"kept+");
    });
}

#[test]
fn hdfs_native_namenode_restart() {
    let hdfs = MiniHdfs::start();
    let dir = "/t/namenode_restart";
    let closed = format!("{dir}/closed");
    let open = format!("{dir}/open.tmp");
    runtime().block_on(async {
        let client = new_client(hdfs.url(), true);
        write_file(&client, &closed, b"before the restart").await;
        let mut w = within("create", client.create(&open, WriteOptions::default()))
            .await
            .expect("create open.tmp");
        within("write", w.write_bytes(Bytes::from_static(b"synced;")))
            .await
            .expect("write");
        within("hsync", w.hsync()).await.expect("hsync");

        // A client with the default retries, and a writer of its own.
        let patient = new_client(hdfs.url(), false);
        let slow = format!("{dir}/slow.tmp");
        let mut ws = within("create", patient.create(&slow, WriteOptions::default()))
            .await
            .expect("create slow.tmp");
        within("write", ws.write_bytes(Bytes::from_static(b"a;")))
            .await
            .expect("write");
        within("hsync", ws.hsync()).await.expect("hsync");

        let started = Instant::now();
        hdfs.command_ok("stop-namenode");
        println!("stop-namenode: {:?}", started.elapsed());

        // Every NameNode call fails fast with the shortened retries.
        let fast = Duration::from_secs(5);
        let (e, took) = expect_err(
            "get_file_info, NameNode down",
            fast,
            client.get_file_info(&closed),
        )
        .await;
        assert!(matches!(e, HdfsError::IOError(_)), "{e:?}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
        let (e, _) = expect_err(
            "create, NameNode down",
            fast,
            client.create(&format!("{dir}/new"), WriteOptions::default()),
        )
        .await;
        assert!(matches!(e, HdfsError::IOError(_)), "{e:?}");
        // A new client builds without contacting the NameNode; its first call fails too.
        let fresh = new_client(hdfs.url(), true);
        let (e, _) = expect_err(
            "a new client, NameNode down",
            fast,
            fresh.get_file_info(&closed),
        )
        .await;
        assert!(matches!(e, HdfsError::IOError(_)), "{e:?}");
        // The open writer: data goes to the DataNode, and an hsync within a block the
        // NameNode already knows needs only the DataNode pipeline (flumen's patch of
        // hdfs-native, vendor/hdfs-native/FLUMEN-PATCH.md, as Hadoop's own client), so it
        // succeeds while the NameNode is down.
        within("write", w.write_bytes(Bytes::from_static(b"during;")))
            .await
            .expect("write_bytes while the NameNode is down (queued to the DataNode)");
        within("hsync, NameNode down", w.hsync())
            .await
            .expect("hsync within a known block needs only the DataNodes");

        // With the default retries (about 180 s) calls hang: the caller's timeout (Flume's
        // callTimeout) is what ends them. Cancelling the futures must leave the client and the
        // writer usable once the NameNode is back.
        let hang = Duration::from_secs(2);
        let pending = tokio::time::timeout(hang, patient.get_file_info(&closed)).await;
        assert!(
            pending.is_err(),
            "default retries: still pending after {hang:?}, got {pending:?}"
        );
        within("write", ws.write_bytes(Bytes::from_static(b"b;")))
            .await
            .expect("write_bytes while the NameNode is down");
        println!("default retries: get_file_info still pending after {hang:?}, cancelled");

        let started = Instant::now();
        let url = hdfs.command_ok("start-namenode");
        println!(
            "start-namenode (until out of safe mode, DataNode registered): {:?}",
            started.elapsed()
        );
        assert_eq!(url, hdfs.url(), "the NameNode restarts on the same port");

        // The same client works again: it reconnects by itself.
        let info = within("get_file_info after restart", client.get_file_info(&closed))
            .await
            .expect("the same client after the NameNode restart");
        assert_eq!(info.length, b"before the restart".len());
        assert_eq!(read_all(&client, &closed).await, b"before the restart");
        assert_eq!(read_all(&fresh, &closed).await, b"before the restart");
        write_file(&client, &format!("{dir}/after"), b"after").await;
        assert_eq!(hdfs.hadoop_read(&format!("{dir}/after")), b"after");

        // The writer that lived through the restart: its lease survived (the NameNode
        // reloads it from its edit log); see whether it can go on.
        match within("hsync after restart", w.hsync()).await {
            Ok(()) => println!("the open writer's hsync after the NameNode restart: Ok"),
            Err(e) => println!(
                "the open writer's hsync after the NameNode restart: {}",
                brief(&e)
            ),
        }
        match within("close after restart", w.close()).await {
            Ok(()) => println!("the open writer's close after the NameNode restart: Ok"),
            Err(e) => println!(
                "the open writer's close after the NameNode restart: {}",
                brief(&e)
            ),
        }
        let took = recover(&client, &open).await;
        println!("recover_lease of the open file after the restart: {took:?}");

        // The writer whose hsync was cancelled by a timeout during the outage.
        let hsync_again = within("hsync after a cancelled hsync", ws.hsync()).await;
        println!(
            "hsync after an hsync cancelled during the outage: {:?}",
            hsync_again.as_ref().map_err(brief)
        );
        let closed_again = within("close after a cancelled hsync", ws.close()).await;
        println!(
            "close after an hsync cancelled during the outage: {:?}",
            closed_again.as_ref().map_err(brief)
        );
        if closed_again.is_err() {
            recover(&patient, &slow).await;
        }
        let data = hdfs.hadoop_read(&slow);
        println!(
            "the file whose hsync was cancelled: {:?}",
            String::from_utf8_lossy(&data)
        );
        assert!(data.starts_with(b"a;"), "{data:?}");
        let data = hdfs.hadoop_read(&open);
        println!(
            "the open file after the restart: {:?}",
            String::from_utf8_lossy(&data)
        );
        assert!(
            data.starts_with(b"synced;"),
            "hsynced data survives: {data:?}"
        );
    });
}

#[test]
fn hdfs_native_datanode_restart() {
    let hdfs = MiniHdfs::start();
    let dir = "/t/datanode_restart";
    let open = format!("{dir}/open.tmp");
    runtime().block_on(async {
        let client = new_client(hdfs.url(), true);
        let mut w = within("create", client.create(&open, WriteOptions::default()))
            .await
            .expect("create");
        within("write", w.write_bytes(Bytes::from_static(b"synced;")))
            .await
            .expect("write");
        within("hsync", w.hsync()).await.expect("hsync");

        hdfs.command_ok("stop-datanode");
        let fast = Duration::from_secs(10);
        // The pipeline's only DataNode is gone: the next write or hsync fails.
        let started = Instant::now();
        let first = within("write", w.write_bytes(Bytes::from_static(b"lost;"))).await;
        let e = match first {
            Err(e) => e,
            Ok(_) => expect_err("hsync, DataNode down", fast, w.hsync()).await.0,
        };
        println!(
            "first failure with the DataNode down: {} after {:?}",
            brief(&e),
            started.elapsed()
        );
        assert!(matches!(e, HdfsError::DataTransferError(_)), "{e:?}");
        drop(w);

        // A new file: create is a NameNode call and succeeds; its data has nowhere to go.
        let orphan = format!("{dir}/no-datanode");
        let mut w2 = within("create", client.create(&orphan, WriteOptions::default()))
            .await
            .expect("create needs only the NameNode");
        let started = Instant::now();
        let r = match within("write", w2.write_bytes(Bytes::from_static(b"x"))).await {
            Err(e) => Err(e),
            Ok(_) => within("hsync", w2.hsync()).await,
        };
        match r {
            Err(e) => println!(
                "write + hsync of a new file with the DataNode down: {} after {:?}",
                brief(&e),
                started.elapsed()
            ),
            Ok(()) => panic!("hsync of a new file succeeded without a DataNode"),
        }
        drop(w2);

        let started = Instant::now();
        hdfs.command_ok("start-datanode");
        println!("start-datanode: {:?}", started.elapsed());

        // A new file can be written, by the same client.
        let after = format!("{dir}/after");
        write_file(&client, &after, b"after").await;
        assert_eq!(read_all(&client, &after).await, b"after");

        // The interrupted file: recover its lease, then its hsynced bytes are there.
        let took = recover(&client, &open).await;
        println!("recover_lease of the interrupted file: {took:?}");
        let data = hdfs.hadoop_read(&open);
        println!("the interrupted file: {:?}", String::from_utf8_lossy(&data));
        assert!(data.starts_with(b"synced;"), "{data:?}");
        let took = recover(&client, &orphan).await;
        println!("recover_lease of the file created with the DataNode down: {took:?}");
    });
}

/// What the `hdfs` sink does with a file that holds bytes of a failed batch, through its own
/// `HdfsFs`: `truncate` cuts the closed file back to its committed bytes (in the middle of a
/// block HDFS finishes that in the background, and `recover_lease` reports when), Hadoop's
/// reader then sees exactly those bytes, a cut beyond the end changes nothing, and a file with
/// no committed byte is deleted.
#[test]
fn sink_fs_truncates_a_closed_file_to_its_committed_bytes_and_deletes() {
    use flumen::sink::hdfs::fs::{HdfsFs, SinkFs};

    let hdfs = MiniHdfs::shared();
    let dir = format!("/t/sink_fs_truncate-{}", std::process::id());
    let mut fs = HdfsFs::connect(hdfs.url(), CALL_DEADLINE, &[]).expect("client");
    let path = format!("{dir}/f.tmp");
    let mut f = fs.create(&path).expect("create");
    for chunk in [
        "committed 1\n",
        "committed 2\n",
        "a failed batch, cut off mi",
    ] {
        f.write(Bytes::from_static(chunk.as_bytes()))
            .expect("write");
        f.sync().expect("hsync");
    }
    f.close().expect("close");
    let committed: &[u8] = b"committed 1\ncommitted 2\n";
    if !fs
        .truncate(&path, committed.len() as u64)
        .expect("truncate")
    {
        // HDFS cuts the last block in the background; the file is closed again once done.
        let took = runtime().block_on(recover(&new_client(hdfs.url(), false), &path));
        println!("truncate to mid-block done after {took:?}");
    }
    assert_eq!(hdfs.hadoop_read(&path), committed);
    assert!(
        fs.truncate(&path, committed.len() as u64 + 100)
            .expect("truncate beyond the end"),
        "nothing to cut is done at once"
    );
    let done = format!("{dir}/f");
    fs.rename(&path, &done).expect("rename");
    let listed = hdfs.hadoop_ls(&dir);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].len, listed[0].closed),
        (committed.len() as u64, true),
        "{listed:?}"
    );
    assert_eq!(hdfs.hadoop_read(&done), committed);

    let empty = format!("{dir}/g.tmp");
    let mut g = fs.create(&empty).expect("create");
    g.write(Bytes::from_static(b"only a failed batch"))
        .expect("write");
    g.close().expect("close");
    fs.delete(&empty).expect("delete");
    assert!(!fs.exists(&empty).expect("exists"));
}
