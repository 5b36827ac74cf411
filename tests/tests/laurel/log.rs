//! The log conformance suite: every case runs against the embedded log and against JetStream
//! on a real `nats-server`.

use std::time::Duration;

use laurel_log::{AppendError, Entry, Log, LogError, NatsLog, Start, StreamKind, Target};
use laurel_tests::NatsServer;

use crate::support::{Backend, Fixture, open, read_to_end, reset_consumer_behind};

fn entry(partition: u32, id: &str, payload: &str) -> Entry {
    Entry {
        target: Target::Partition(partition),
        id: id.into(),
        payload: payload.as_bytes().to_vec(),
    }
}

async fn read_all(
    log: &Log,
    stream: StreamKind,
    partition: u32,
    start: Start,
) -> Vec<(u64, String)> {
    read_to_end(log, stream, partition, start)
        .await
        .into_iter()
        .map(|r| (r.seq, String::from_utf8(r.payload.to_vec()).unwrap()))
        .collect()
}

fn texts(records: &[laurel_log::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
        .collect()
}

fn payloads(records: &[(u64, String)]) -> Vec<&str> {
    records.iter().map(|(_, p)| p.as_str()).collect()
}

async fn entries_read_back_in_order_per_partition(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let entries = vec![
        entry(0, "a", "a0"),
        entry(1, "b", "b0"),
        entry(0, "c", "a1"),
        entry(1, "d", "b1"),
        entry(0, "e", "a2"),
    ];
    let acks = f.log.append(StreamKind::Stats, entries).await.unwrap();
    assert!(acks.iter().all(|a| !a.duplicate));
    let mut counts = Vec::new();
    for p in 0..3 {
        counts.push(f.log.entries(StreamKind::Stats, p).await.unwrap());
    }
    assert_eq!(counts, [3, 2, 0], "entries held per partition");
    let p0 = read_all(&f.log, StreamKind::Stats, 0, Start::After(0)).await;
    assert_eq!(payloads(&p0), vec!["a0", "a1", "a2"]);
    assert!(
        p0.windows(2).all(|w| w[0].0 < w[1].0),
        "sequences increase: {p0:?}"
    );
    assert_eq!(p0[2].0, acks[4].seq, "read positions are the appended ones");
    assert_eq!(
        payloads(&read_all(&f.log, StreamKind::Stats, 1, Start::After(0)).await),
        vec!["b0", "b1"]
    );
    assert!(
        read_all(&f.log, StreamKind::Stats, 2, Start::After(0))
            .await
            .is_empty()
    );
}

async fn a_duplicate_id_is_not_appended_twice(backend: Backend) {
    let mut f = Fixture::new(backend, |_| {}).await;
    let first = f
        .log
        .append(
            StreamKind::Stats,
            vec![entry(0, "x", "one"), entry(0, "y", "two")],
        )
        .await
        .unwrap();
    let again = f
        .log
        .append(
            StreamKind::Stats,
            vec![entry(0, "x", "one"), entry(0, "z", "three")],
        )
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|a| a.duplicate).collect::<Vec<_>>(),
        vec![true, false]
    );
    assert_eq!(again[0].seq, first[0].seq);
    f.reopen().await;
    let after_restart = f
        .log
        .append(StreamKind::Stats, vec![entry(0, "y", "two")])
        .await
        .unwrap();
    assert!(
        after_restart[0].duplicate,
        "the dedup window survives a restart"
    );
    let records = read_all(&f.log, StreamKind::Stats, 0, Start::After(0)).await;
    assert_eq!(payloads(&records), vec!["one", "two", "three"]);
}

async fn ids_outside_the_window_are_appended_again(backend: Backend) {
    let f = Fixture::new(backend, |c| c.duplicate_window = Duration::from_millis(300)).await;
    f.log
        .append(StreamKind::Stats, vec![entry(0, "x", "one")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await; // let the window pass
    let again = f
        .log
        .append(StreamKind::Stats, vec![entry(0, "x", "one")])
        .await
        .unwrap();
    assert!(!again[0].duplicate);
}

async fn a_reader_resumes_after_its_acknowledged_position(backend: Backend) {
    let mut f = Fixture::new(backend, |_| {}).await;
    let entries = (0..5)
        .map(|i| entry(2, &format!("id{i}"), &format!("m{i}")))
        .collect();
    f.log.append(StreamKind::Stats, entries).await.unwrap();
    let mut reader = f
        .log
        .reader(StreamKind::Stats, 2, "engine", Start::Resume)
        .await
        .unwrap();
    // A batch holds what has arrived; gather the first three, however they come.
    let mut batch = Vec::new();
    while batch.len() < 3 {
        let more = reader
            .next_batch(3 - batch.len(), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            !more.is_empty(),
            "entries stored before the reader opened are delivered"
        );
        batch.extend(more);
    }
    reader.ack(batch[2].seq).await.unwrap();
    drop(reader);
    if let Log::Embedded(l) = &f.log {
        l.flush().await.unwrap();
    }
    f.reopen().await;
    let mut reader = f
        .log
        .reader(StreamKind::Stats, 2, "engine", Start::Resume)
        .await
        .unwrap();
    let mut rest = Vec::new();
    while rest.len() < 2 {
        let batch = reader.next_batch(10, Duration::from_secs(2)).await.unwrap();
        assert!(
            !batch.is_empty(),
            "the unacknowledged entries are delivered again"
        );
        rest.extend(batch);
    }
    let rest: Vec<String> = rest
        .iter()
        .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
        .collect();
    assert_eq!(rest, vec!["m3", "m4"]);
}

/// `ack_behind` may hold acknowledgements back while batches come fast, but never past a
/// read that waits for nothing: a reader gone after such a read has nothing delivered again,
/// and until then only entries after what was acknowledged.
async fn acknowledgements_held_back_go_when_the_partition_goes_quiet(backend: Backend) {
    let mut f = Fixture::new(backend, |_| {}).await;
    let entries: Vec<Entry> = (0..6)
        .map(|i| entry(1, &format!("q{i}"), &format!("m{i}")))
        .collect();
    f.log.append(StreamKind::Stats, entries).await.unwrap();
    let mut reader = f
        .log
        .reader(StreamKind::Stats, 1, "behind", Start::Resume)
        .await
        .unwrap();
    // One entry a batch, each acknowledged behind at once: most are held back on NATS.
    let mut read = Vec::new();
    while read.len() < 6 {
        let batch = reader.next_batch(1, Duration::from_secs(5)).await.unwrap();
        assert!(!batch.is_empty(), "stored entries are delivered");
        reader.ack_behind(batch[0].seq).await.unwrap();
        read.extend(batch);
    }
    assert_eq!(texts(&read), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    // Quiet: the read waits for nothing, and what was held back goes.
    let none = reader
        .next_batch(10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(none.is_empty());
    drop(reader);
    if let Log::Embedded(l) = &f.log {
        l.flush().await.unwrap();
    }
    f.reopen().await;
    f.log
        .append(StreamKind::Stats, vec![entry(1, "q6", "m6")])
        .await
        .unwrap();
    let mut reader = f
        .log
        .reader(StreamKind::Stats, 1, "behind", Start::Resume)
        .await
        .unwrap();
    let again = reader.next_batch(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        texts(&again),
        ["m6"],
        "everything read before the quiet read was acknowledged"
    );
}

async fn a_reader_can_start_after_any_position(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let acks = f
        .log
        .append(
            StreamKind::Output,
            (0..4)
                .map(|i| entry(1, &format!("o{i}"), &format!("m{i}")))
                .collect(),
        )
        .await
        .unwrap();
    let tail = read_all(&f.log, StreamKind::Output, 1, Start::After(acks[1].seq)).await;
    assert_eq!(payloads(&tail), vec!["m2", "m3"]);
}

async fn a_waiting_reader_wakes_when_entries_arrive(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let mut reader = f
        .log
        .reader(StreamKind::Stats, 3, "waiter", Start::Resume)
        .await
        .unwrap();
    let log = f.log.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        log.append(StreamKind::Stats, vec![entry(3, "w", "hello")])
            .await
            .unwrap();
    });
    let batch = reader
        .next_batch(10, Duration::from_secs(20))
        .await
        .unwrap();
    writer.await.unwrap();
    assert_eq!(
        batch.len(),
        1,
        "woken by the append, well before the 20 s wait ended"
    );
    assert!(
        reader
            .next_batch(10, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn last_seq_tracks_each_partition(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    assert_eq!(f.log.last_seq(StreamKind::Stats, 0).await.unwrap(), 0);
    let acks = f
        .log
        .append(
            StreamKind::Stats,
            vec![entry(0, "a", "x"), entry(1, "b", "y"), entry(0, "c", "z")],
        )
        .await
        .unwrap();
    assert_eq!(
        f.log.last_seq(StreamKind::Stats, 0).await.unwrap(),
        acks[2].seq
    );
    assert_eq!(
        f.log.last_seq(StreamKind::Stats, 1).await.unwrap(),
        acks[1].seq
    );
}

async fn definitions_keep_one_order_across_kinds(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let def = |kind: &'static str, id: &str, payload: &str| Entry {
        target: Target::Definition {
            kind,
            id: id.into(),
        },
        id: format!("{kind}-{id}-{payload}"),
        payload: payload.as_bytes().to_vec(),
    };
    let entries = vec![
        def("stat", "kills", "1"),
        def("achievement", "K10", "2"),
        def("stat", "wins", "3"),
        def("achievement", "K10", "4"),
    ];
    f.log.append(StreamKind::Defs, entries).await.unwrap();
    let all = read_all(&f.log, StreamKind::Defs, 0, Start::After(0)).await;
    assert_eq!(payloads(&all), vec!["1", "2", "3", "4"]);
    assert_eq!(f.log.last_seq(StreamKind::Defs, 0).await.unwrap(), all[3].0);
}

/// Optimistic concurrency on DEFS: an append that expects the stream to end where it no
/// longer does is refused and appends nothing; of writers racing from one position, exactly
/// one goes in; a duplicate id is a duplicate wherever the stream ends.
async fn an_append_after_a_position_goes_in_only_there(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let def = |id: &str| Entry {
        target: Target::Definition {
            kind: "stat",
            id: "wins".into(),
        },
        id: id.into(),
        payload: id.as_bytes().to_vec(),
    };
    let first = f
        .log
        .append_after(StreamKind::Defs, def("one"), 0)
        .await
        .unwrap();
    assert_eq!((first.seq, first.duplicate), (1, false));
    let stale = f.log.append_after(StreamKind::Defs, def("two"), 0).await;
    assert!(matches!(stale, Err(AppendError::Conflict(_))), "{stale:?}");
    let again = f
        .log
        .append_after(StreamKind::Defs, def("one"), 7)
        .await
        .unwrap();
    assert_eq!((again.seq, again.duplicate), (1, true));
    // Writers racing from position 1: one wins.
    let racers = (0..8).map(|i| {
        let log = f.log.clone();
        let entry = def(&format!("racer-{i}"));
        tokio::spawn(async move { log.append_after(StreamKind::Defs, entry, 1).await })
    });
    let mut won = 0;
    for racer in racers.collect::<Vec<_>>() {
        match racer.await.unwrap() {
            Ok(ack) => {
                assert_eq!(ack.seq, 2);
                won += 1;
            }
            Err(AppendError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1, "exactly one racer goes in");
    let all = read_all(&f.log, StreamKind::Defs, 0, Start::After(0)).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let partitioned = f
        .log
        .append_after(StreamKind::Stats, entry(0, "x", "x"), 0)
        .await;
    assert!(
        matches!(partitioned, Err(AppendError::Invalid(_))),
        "{partitioned:?}"
    );
}

/// A fenced append goes in only while its partition ends at the fence, entry after entry;
/// another writer's append to the partition breaks the fence (and nothing of the refused
/// append is stored), an append to another partition does not; a duplicate moves nothing.
async fn a_fenced_append_goes_in_only_while_its_partition_ends_at_the_fence(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let fenced = |entries: Vec<Entry>, fence: u64| {
        let log = f.log.clone();
        async move { log.append_fenced(StreamKind::Output, entries, fence).await }
    };
    let acks = fenced(vec![entry(0, "a", "a"), entry(0, "b", "b")], 0)
        .await
        .unwrap();
    let fence = Log::fence_after(0, &acks);
    assert_eq!(fence, acks[1].seq);
    // Another partition's entries leave this partition's fence alone.
    f.log
        .append(StreamKind::Output, vec![entry(1, "other", "other")])
        .await
        .unwrap();
    let acks = fenced(vec![entry(0, "c", "c")], fence).await.unwrap();
    let fence = Log::fence_after(fence, &acks);
    // A duplicate moves nothing.
    let again = fenced(vec![entry(0, "c", "c")], fence).await.unwrap();
    assert!(again[0].duplicate);
    assert_eq!(Log::fence_after(fence, &again), fence);
    // Another writer appends to the partition: the fence is broken.
    f.log
        .append(StreamKind::Output, vec![entry(0, "intruder", "intruder")])
        .await
        .unwrap();
    let refused = fenced(vec![entry(0, "d", "d"), entry(0, "e", "e")], fence).await;
    assert!(
        matches!(refused, Err(AppendError::Conflict(_))),
        "{refused:?}"
    );
    let payloads: Vec<String> = read_all(&f.log, StreamKind::Output, 0, Start::After(0))
        .await
        .into_iter()
        .map(|(_, payload)| payload)
        .collect();
    assert_eq!(payloads, ["a", "b", "c", "intruder"]);
    let mixed = fenced(vec![entry(0, "f", "f"), entry(1, "g", "g")], fence).await;
    assert!(matches!(mixed, Err(AppendError::Invalid(_))), "{mixed:?}");
}

async fn a_full_stream_refuses_appends_and_keeps_what_it_has(backend: Backend) {
    let f = Fixture::new(backend, |c| c.max_entries = Some(3)).await;
    f.log
        .append(
            StreamKind::Stats,
            (0..3).map(|i| entry(0, &format!("f{i}"), "kept")).collect(),
        )
        .await
        .unwrap();
    let refused = f
        .log
        .append(StreamKind::Stats, vec![entry(0, "f3", "refused")])
        .await;
    assert!(
        matches!(refused, Err(AppendError::Full("stats"))),
        "{refused:?}"
    );
    assert_eq!(
        read_all(&f.log, StreamKind::Stats, 0, Start::After(0))
            .await
            .len(),
        3
    );
}

async fn entries_for_the_wrong_target_are_refused(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let refused = f
        .log
        .append(StreamKind::Stats, vec![entry(99, "x", "bad")])
        .await;
    assert!(
        matches!(refused, Err(AppendError::Invalid(_))),
        "{refused:?}"
    );
    let refused = f
        .log
        .append(StreamKind::Defs, vec![entry(0, "x", "bad")])
        .await;
    assert!(
        matches!(refused, Err(AppendError::Invalid(_))),
        "{refused:?}"
    );
}

async fn the_partition_count_is_fixed_at_creation(backend: Backend) {
    let mut f = Fixture::new(backend, |_| {}).await;
    f.config.partitions = 8;
    f.close();
    let reopened = open(f.backend, &f.config, &f.dir, f.server.as_ref()).await;
    assert!(
        matches!(reopened, Err(LogError::Misconfigured(_))),
        "{reopened:?}"
    );
}

async fn large_concurrent_batches_are_appended_whole(backend: Backend) {
    // Larger than the JetStream client's in-flight ack window, from three appenders at once.
    let f = Fixture::new(backend, |_| {}).await;
    let mut tasks = Vec::new();
    for t in 0..3 {
        let log = f.log.clone();
        tasks.push(tokio::spawn(async move {
            let entries = (0..10_000)
                .map(|i| entry(i % 4, &format!("t{t}-{i}"), "x"))
                .collect();
            log.append(StreamKind::Stats, entries).await.unwrap()
        }));
    }
    let mut appended = 0;
    for task in tasks {
        let acks = tokio::time::timeout(std::time::Duration::from_secs(120), task)
            .await
            .expect("no deadlock")
            .unwrap();
        assert!(acks.iter().all(|a| !a.duplicate));
        appended += acks.len();
    }
    assert_eq!(appended, 30_000);
    let mut stored = 0;
    for p in 0..4 {
        stored += read_all(&f.log, StreamKind::Stats, p, Start::After(0))
            .await
            .len();
    }
    assert_eq!(stored, 30_000);
}

/// A broker that forgets how far a durable consumer got (nats-server writes consumer state
/// lazily, so a restart can set it back) hands entries out again: the reader's own position
/// decides, and nothing at or below it comes out a second time, nor is anything skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_hands_out_an_entry_twice_when_its_consumer_falls_behind() {
    let f = Fixture::new(Backend::Nats, |_| {}).await;
    let first: Vec<Entry> = (0..5)
        .map(|i| entry(1, &format!("a{i}"), &format!("m{i}")))
        .collect();
    f.log.append(StreamKind::Stats, first).await.unwrap();
    let mut reader = f
        .log
        .reader(StreamKind::Stats, 1, "engine", Start::After(0))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let batch = reader.next_batch(10, Duration::from_secs(5)).await.unwrap();
        assert!(!batch.is_empty(), "the first entries are delivered");
        seen.extend(batch);
    }
    reset_consumer_behind(&f, "STATS", "engine_stats_1").await;
    let more: Vec<Entry> = (5..8)
        .map(|i| entry(1, &format!("a{i}"), &format!("m{i}")))
        .collect();
    let last = f.log.append(StreamKind::Stats, more).await.unwrap()[2].seq;
    while seen.last().map_or(0, |r| r.seq) < last {
        match reader.next_batch(10, Duration::from_secs(5)).await {
            Ok(batch) => seen.extend(batch),
            // The consumer vanished under the reader: it repositions on the next read.
            Err(e) => assert!(e.is_transient(), "{e}"),
        }
    }
    let payloads: Vec<String> = seen
        .iter()
        .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
        .collect();
    assert_eq!(payloads, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
}

/// nats-server users for the test below: `admin` may do anything; `engine` may do anything
/// but delete consumers, while `{deny}` is in its permissions.
fn users_config(deny: &str) -> String {
    format!(
        r#"authorization {{
  users = [
    {{ user: admin, password: admin }}
    {{ user: engine, password: engine, permissions: {{ publish: {{ allow: [">"], deny: [{deny}] }} }} }}
  ]
}}"#
    )
}

/// A reader repositions by deleting its durable consumer and creating it afresh at its own
/// position. When the broker refuses the delete (a restart under way), the old consumer is
/// still there, and creating one with the same config hands it back: it delivers after what
/// it delivered before, not after the reader's position. Such a reader must hand out nothing
/// (and be retried), never entries past a gap: recovery took a gap as "reached" and lost a
/// player's counts. The broker is made to refuse the delete with a permission, then to allow
/// it again by a configuration reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_whose_old_consumer_cannot_be_deleted_skips_nothing() {
    let server = NatsServer::start_configured(&users_config(r#""$JS.API.CONSUMER.DELETE.>""#));
    let config = laurel_log::LogConfig {
        partitions: 2,
        ..laurel_log::LogConfig::default()
    };
    let admin = Log::Nats(
        NatsLog::connect(&server.url_as("admin", "admin"), config.clone())
            .await
            .unwrap(),
    );
    let entries: Vec<Entry> = (0..20)
        .map(|i| entry(0, &format!("e{i}"), &format!("m{i}")))
        .collect();
    admin.append(StreamKind::Stats, entries).await.unwrap();
    // An earlier reader took the first entries and went away, leaving its durable consumer
    // behind with those entries delivered and not acknowledged.
    let mut earlier = admin
        .reader(StreamKind::Stats, 0, "engine", Start::After(0))
        .await
        .unwrap();
    let mut taken = Vec::new();
    while taken.len() < 5 {
        taken.extend(earlier.next_batch(5, Duration::from_secs(5)).await.unwrap());
    }
    drop(earlier);

    // A new reader at position 0, whose connection may not delete consumers.
    let engine = Log::Nats(
        NatsLog::connect(&server.url_as("engine", "engine"), config)
            .await
            .unwrap(),
    );
    match engine
        .reader(StreamKind::Stats, 0, "engine", Start::After(0))
        .await
    {
        Err(e) => assert!(e.is_transient(), "a refused delete is worth retrying: {e}"),
        Ok(mut reader) => {
            // Had it taken the old consumer over, it would hand out m5.. (or m10..) first.
            let first = reader.next_batch(20, Duration::from_secs(2)).await;
            let first: Vec<String> = first
                .unwrap_or_default()
                .iter()
                .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
                .collect();
            assert!(
                first.first().is_none_or(|p| p == "m0"),
                "a reader at position 0 handed out {first:?} first"
            );
        }
    }

    // The broker allows the delete again: the reader starts at its position and skips nothing.
    server.reconfigure(&users_config(r#""nothing.denied""#));
    let mut reader = crate::support::retry_transient("a reader once deletes are allowed", || {
        engine.reader(StreamKind::Stats, 0, "engine", Start::After(0))
    })
    .await;
    let mut seen = Vec::new();
    while seen.len() < 20 {
        match reader.next_batch(20, Duration::from_secs(5)).await {
            Ok(batch) => seen.extend(batch),
            Err(e) => assert!(e.is_transient(), "{e}"),
        }
    }
    let payloads: Vec<String> = seen
        .iter()
        .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads, expected);
}

/// Entries whose ids were made for one append (`append_unique`: the gateway's grouped
/// events) read back in order and survive a reopen beside deduplicated ones. Neither log
/// keeps their ids in its deduplication window (nobody sends them again): the embedded log
/// leaves them out, JetStream never gets them as `Nats-Msg-Id`.
async fn unique_entries_read_back_beside_deduplicated_ones(backend: Backend) {
    let mut f = Fixture::new(backend, |_| {}).await;
    let unique = uuid::Uuid::new_v4().to_string();
    f.log
        .append(StreamKind::Stats, vec![entry(0, "x", "one")])
        .await
        .unwrap();
    let acks = f
        .log
        .append_unique(
            StreamKind::Stats,
            vec![
                entry(0, &unique, "two"),
                entry(1, &uuid::Uuid::new_v4().to_string(), "b"),
            ],
        )
        .await
        .unwrap();
    assert!(acks.iter().all(|a| !a.duplicate));
    f.reopen().await;
    let again = f
        .log
        .append(
            StreamKind::Stats,
            vec![entry(0, "x", "one"), entry(0, &unique, "two")],
        )
        .await
        .unwrap();
    assert!(
        again[0].duplicate,
        "the window still holds the client's id after a reopen"
    );
    assert!(
        !again[1].duplicate,
        "a unique id is in no deduplication window (JetStream gets no Nats-Msg-Id for it)"
    );
    let p0 = read_all(&f.log, StreamKind::Stats, 0, Start::After(0)).await;
    let expected = vec!["one", "two", "two"];
    assert_eq!(payloads(&p0), expected);
    assert_eq!(
        payloads(&read_all(&f.log, StreamKind::Stats, 1, Start::After(0)).await),
        vec!["b"]
    );
}

/// A reader says how many entries of its partition follow the last one it handed out: the
/// engine's lag in `/metrics`.
async fn a_reader_says_how_many_entries_follow(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let entries: Vec<Entry> = (0..10)
        .map(|i| entry(0, &format!("a{i}"), "a"))
        .chain((0..3).map(|i| entry(1, &format!("b{i}"), "b")))
        .collect();
    f.log.append(StreamKind::Stats, entries).await.unwrap();
    let mut reader = f
        .log
        .reader(StreamKind::Stats, 0, "lag", Start::After(0))
        .await
        .unwrap();
    let mut read = Vec::new();
    while read.len() < 4 {
        let batch = reader
            .next_batch(4 - read.len(), Duration::from_secs(5))
            .await
            .unwrap();
        read.extend(batch);
    }
    assert_eq!(reader.pending(), Some(6), "ten in the partition, four read");
    let mut rest = Vec::new();
    while rest.len() < 6 {
        rest.extend(
            reader
                .next_batch(100, Duration::from_secs(5))
                .await
                .unwrap(),
        );
    }
    assert_eq!(reader.pending(), Some(0));
}

/// A follower behind reads the log to its end while batches it cannot apply yet (news of
/// entries further on) keep being handed as fast as a task can hand them: each is seen not
/// to follow, and none holds up the read.
async fn a_follower_behind_reads_the_log_while_batches_keep_coming(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let p = 1;
    let entries = (0..200)
        .map(|i| Entry {
            target: Target::Partition(p),
            id: format!("e{i}"),
            payload: vec![1, 2, 3],
        })
        .collect();
    let last = f.log.append(StreamKind::Output, entries).await.unwrap()[199].seq;
    let handoff = std::sync::Arc::new(laurel_log::Handoff::new(f.log.config().partitions));
    let mut follower = laurel_log::Follower::new(
        f.log.clone(),
        StreamKind::Output,
        p,
        "follower".into(),
        handoff.take(p),
        Duration::from_secs(5),
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handing = {
        let (handoff, stop) = (handoff.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let news = laurel_log::Handed {
                    after: last + 1_000,
                    records: Vec::new(),
                };
                handoff.hand(p, news);
                tokio::task::yield_now().await;
            }
        })
    };
    let (mut position, mut read) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while position < last {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the follower read {read} entries of 200, to position {position} of {last}"
        );
        let records = follower
            .next(position, 10, Duration::from_millis(100))
            .await
            .unwrap();
        let fresh = laurel_log::unapplied(records, position);
        if let Some(r) = fresh.last() {
            position = r.seq;
        }
        read += fresh.len();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    handing.await.unwrap();
    assert_eq!(read, 200);
}

/// Batches handed while the follower was busy come back together, as many as follow (the
/// one that reaches `max` whole), so a reader behind catches up in large batches; a batch
/// that does not follow ends them and sends the follower to the log.
async fn a_follower_takes_the_handed_batches_that_follow_together(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let p = 2;
    let mut batches = Vec::new();
    let mut after = 0;
    for b in 0..3 {
        let entries = (0..10)
            .map(|i| Entry {
                target: Target::Partition(p),
                id: format!("b{b}e{i}"),
                payload: vec![b, i],
            })
            .collect::<Vec<_>>();
        let acks = f
            .log
            .append(StreamKind::Output, entries.clone())
            .await
            .unwrap();
        let handed = laurel_log::Handed::appended(after, &acks, entries);
        after = handed.records.last().unwrap().seq;
        batches.push(handed);
    }
    let follow = |max: usize, gap: bool| {
        let (log, batches) = (f.log.clone(), batches.clone());
        async move {
            let handoff = laurel_log::Handoff::new(log.config().partitions);
            for batch in batches {
                handoff.hand(p, batch);
            }
            if gap {
                let news = laurel_log::Handed {
                    after: after + 1_000,
                    records: Vec::new(),
                };
                handoff.hand(p, news);
            }
            let mut follower = laurel_log::Follower::new(
                log,
                StreamKind::Output,
                p,
                format!("together{max}{gap}"),
                handoff.take(p),
                Duration::ZERO,
            );
            let records = follower
                .next(0, max, Duration::from_millis(100))
                .await
                .unwrap();
            (records.iter().map(|r| r.seq).collect::<Vec<_>>(), follower)
        }
    };
    let all: Vec<u64> = batches
        .iter()
        .flat_map(|b| b.records.iter().map(|r| r.seq))
        .collect();
    let (seqs, _) = follow(15, false).await;
    assert_eq!(seqs, all[..20], "the second batch reaches max: no third");
    // Without a linger the reader closes at the next call once the batches followed, and
    // stays open when one did not.
    for gap in [false, true] {
        let (seqs, mut follower) = follow(100, gap).await;
        assert_eq!(
            seqs, all,
            "the three batches in one (gap after them: {gap})"
        );
        let more = follower
            .next(after, 100, Duration::from_millis(100))
            .await
            .unwrap();
        assert!(laurel_log::unapplied(more, after).is_empty());
        assert_eq!(
            follower.is_reading(),
            gap,
            "the log is read after a gap only"
        );
    }
}

crate::both_backends!(
    a_follower_behind_reads_the_log_while_batches_keep_coming,
    a_follower_takes_the_handed_batches_that_follow_together,
    unique_entries_read_back_beside_deduplicated_ones,
    a_reader_says_how_many_entries_follow,
    a_fenced_append_goes_in_only_while_its_partition_ends_at_the_fence,
    large_concurrent_batches_are_appended_whole,
    entries_read_back_in_order_per_partition,
    a_duplicate_id_is_not_appended_twice,
    ids_outside_the_window_are_appended_again,
    a_reader_resumes_after_its_acknowledged_position,
    acknowledgements_held_back_go_when_the_partition_goes_quiet,
    a_reader_can_start_after_any_position,
    a_waiting_reader_wakes_when_entries_arrive,
    last_seq_tracks_each_partition,
    definitions_keep_one_order_across_kinds,
    an_append_after_a_position_goes_in_only_there,
    a_full_stream_refuses_appends_and_keeps_what_it_has,
    entries_for_the_wrong_target_are_refused,
    the_partition_count_is_fixed_at_creation,
);

/// The embedded log's own files: the lock, reopening, sealing (moved from
/// `log/src/embedded/mod.rs`).
mod embedded_files {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use laurel_log::seal::Sealer;
    use laurel_log::{EmbeddedLog, Entry, LogConfig, LogError, Start, StreamKind};

    /// An entry whose payload is its id.
    fn entry(partition: u32, id: &str) -> Entry {
        super::entry(partition, id, id)
    }

    #[test]
    fn a_log_open_elsewhere_is_refused_until_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap();
        let second = EmbeddedLog::open(dir.path(), LogConfig::default());
        assert!(matches!(second, Err(LogError::Locked(_))), "{second:?}");
        drop(log);
        EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_and_ids_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            partitions: 2,
            ..LogConfig::default()
        };
        let identity = {
            let log = EmbeddedLog::open(dir.path(), config.clone()).unwrap();
            for round in 0..50 {
                let entries = (0..20)
                    .map(|i| entry(i % 2, &format!("r{round}-{i}")))
                    .collect();
                log.append(StreamKind::Stats, entries).await.unwrap();
            }
            log.identity().to_string()
        };
        let log = EmbeddedLog::open(dir.path(), config).unwrap();
        assert_eq!(log.identity(), identity);
        assert_eq!(log.last_seq(StreamKind::Stats, 0), 500);
        assert_eq!(log.last_seq(StreamKind::Stats, 1), 500);
        let again = log
            .append(StreamKind::Stats, vec![entry(1, "r7-3"), entry(1, "fresh")])
            .await
            .unwrap();
        assert_eq!(
            again
                .iter()
                .map(|a| (a.seq, a.duplicate))
                .collect::<Vec<_>>(),
            vec![(7 * 10 + 2, true), (501, false)]
        );
        let mut reader = log
            .reader(StreamKind::Stats, 1, "t", Start::After(0))
            .unwrap();
        let mut seqs = Vec::new();
        while seqs.len() < 501 {
            let batch = reader.next_batch(64, Duration::from_secs(1)).await.unwrap();
            assert!(!batch.is_empty());
            seqs.extend(batch.iter().map(|r| r.seq));
        }
        assert_eq!(seqs, (1..=501).collect::<Vec<u64>>());
    }

    fn sealer(dir: &Path, byte: u8) -> Arc<Sealer> {
        let key = laurel_log::seal::DataKey::from_bytes([byte; laurel_log::seal::KEY_LEN]);
        Arc::new(
            laurel_log::seal::unlock(dir, Some(&key), &[])
                .unwrap()
                .unwrap(),
        )
    }

    async fn read_all(
        log: &EmbeddedLog,
        partition: u32,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, LogError> {
        let mut reader = log.reader(StreamKind::Stats, partition, "t", Start::After(0))?;
        let mut out = Vec::new();
        while out.len() < count {
            let batch = reader.next_batch(64, Duration::from_secs(1)).await?;
            assert!(!batch.is_empty(), "entries missing after {}", out.len());
            out.extend(batch.into_iter().map(|r| r.payload.to_vec()));
        }
        Ok(out)
    }

    fn segment_bytes(dir: &Path) -> Vec<u8> {
        let mut all = Vec::new();
        for kind in StreamKind::ALL {
            for item in std::fs::read_dir(dir.join(kind.name())).unwrap() {
                all.extend(std::fs::read(item.unwrap().path()).unwrap());
            }
        }
        all
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sealed_log_holds_nothing_in_clear_and_opens_only_with_its_sealer() {
        let keys = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let seal = sealer(keys.path(), 1);
        let ids: Vec<String> = (0..300).map(|i| format!("player-secret-{i}")).collect();
        {
            let log =
                EmbeddedLog::open_sealed(dir.path(), LogConfig::default(), Some(seal.clone()))
                    .unwrap();
            log.append(
                StreamKind::Stats,
                ids.iter().map(|id| entry(0, id)).collect(),
            )
            .await
            .unwrap();
        }
        let bytes = segment_bytes(dir.path());
        assert!(bytes.len() > 300, "nothing was written");
        assert!(
            !bytes.windows(13).any(|w| w == b"player-secret"),
            "a player id is in clear"
        );
        let log =
            EmbeddedLog::open_sealed(dir.path(), LogConfig::default(), Some(seal.clone())).unwrap();
        let read = read_all(&log, 0, 300).await.unwrap();
        assert_eq!(
            read,
            ids.iter()
                .map(|id| id.as_bytes().to_vec())
                .collect::<Vec<_>>()
        );
        // The dedup window was rebuilt from the sealed frames.
        let again = log
            .append(StreamKind::Stats, vec![entry(0, &ids[5])])
            .await
            .unwrap();
        assert!(again[0].duplicate);
        drop(log);
        let refused = EmbeddedLog::open(dir.path(), LogConfig::default());
        assert!(
            matches!(refused, Err(LogError::Misconfigured(_))),
            "{refused:?}"
        );
        let other = sealer(tempfile::tempdir().unwrap().path(), 1);
        let refused = EmbeddedLog::open_sealed(dir.path(), LogConfig::default(), Some(other));
        assert!(
            matches!(refused, Err(LogError::Misconfigured(_))),
            "{refused:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_in_clear_is_sealed_from_when_a_key_is_given() {
        let keys = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        {
            let log = EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap();
            log.append(StreamKind::Stats, vec![entry(0, "before")])
                .await
                .unwrap();
        }
        let seal = sealer(keys.path(), 1);
        {
            let log =
                EmbeddedLog::open_sealed(dir.path(), LogConfig::default(), Some(seal.clone()))
                    .unwrap();
            log.append(StreamKind::Stats, vec![entry(0, "after-secret")])
                .await
                .unwrap();
        }
        assert!(
            !segment_bytes(dir.path())
                .windows(12)
                .any(|w| w == b"after-secret")
        );
        let log = EmbeddedLog::open_sealed(dir.path(), LogConfig::default(), Some(seal)).unwrap();
        let read = read_all(&log, 0, 2).await.unwrap();
        assert_eq!(read, vec![b"before".to_vec(), b"after-secret".to_vec()]);
        drop(log);
        assert!(EmbeddedLog::open(dir.path(), LogConfig::default()).is_err());
    }
}
