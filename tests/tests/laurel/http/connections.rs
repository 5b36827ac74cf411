//! Connections and live streams: rates, body limits, slow and idle clients, connection caps,
//! stream lifetimes and counts.

use super::*;

#[test]
fn a_player_past_the_ingest_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--player-events-per-minute",
        "1",
        "--player-events-burst",
        "1000",
    ]
    .map(String::from)
    .to_vec();
    let laurel = Laurel::start(&dir.path().join("data"), &args);
    let admin = laurel.token(&["--admin"]);
    let r = laurel.call(
        "PUT",
        "/v1/admin/stats/bananas",
        Some(&admin),
        Some(json!({"aggregation": "sum", "kind": "int", "client_writable": true})),
    );
    assert_eq!(r.status, 201);
    let send = |token: &str, n: usize| {
        let events: Vec<Value> = (0..n)
            .map(|_| json!({"player_id": "ann", "stat": "bananas", "value": 1}))
            .collect();
        laurel.call(
            "POST",
            "/v1/events",
            Some(token),
            Some(json!({ "events": events })),
        )
    };
    let ann = laurel.token(&["--player", "ann"]);
    assert_eq!(send(&ann, 1000).status, 202, "the burst is allowed");
    let r = send(&ann, 1);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Other players and game servers are not held back by Ann's rate.
    let bob = laurel.token(&["--player", "bob"]);
    let r = laurel.call(
        "POST",
        "/v1/events",
        Some(&bob),
        Some(json!({"events": [{"stat": "bananas", "value": 1}]})),
    );
    assert_eq!(r.status, 202);
    let server = laurel.token(&["--server"]);
    assert_eq!(send(&server, 10).status, 202);
    // Refused events were not appended: Ann has exactly her burst.
    let t = token_of(&send(&server, 1));
    let stats = laurel.call(
        "GET",
        &format!("/v1/players/ann/achievements?wait_for={t}"),
        Some(&server),
        None,
    );
    assert_eq!(stats.status, 200);
    let mine = laurel.call("GET", "/v1/players/me/stats", Some(&ann), None);
    assert_eq!(mine.json["stats"]["bananas"], 1011);
}

#[test]
fn a_body_announced_over_the_limit_is_refused_before_it_is_sent() {
    use std::io::{Read as _, Write as _};
    let l = launch(Backend::Embedded);
    let ann = l.laurel.token(&["--player", "ann"]);
    let mut tcp =
        std::net::TcpStream::connect(l.laurel.url().trim_start_matches("http://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Headers only: a server that waited for the body would never answer.
    write!(
        tcp,
        "POST /v1/events HTTP/1.1\r\nhost: laurel\r\nauthorization: Bearer {ann}\r\n\
         content-type: application/json\r\ncontent-length: 100000000\r\n\r\n"
    )
    .unwrap();
    let mut answer = [0u8; 512];
    let n = tcp.read(&mut answer).expect("an answer without the body");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

/// Reads from `tcp` until the server answers or closes: what it sent, and whether it closed
/// (within the read timeout set on `tcp`; a timeout is neither).
fn answer_or_close(tcp: &mut std::net::TcpStream) -> (String, bool) {
    use std::io::Read as _;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

fn connect(l: &Launched) -> std::net::TcpStream {
    let tcp = std::net::TcpStream::connect(l.laurel.url().trim_start_matches("http://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    tcp
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    use std::io::Write as _;
    let l = launch_with(
        Backend::Embedded,
        &["--header-timeout-secs", "1", "--body-timeout-secs", "1"],
    );
    let ann = l.laurel.token(&["--player", "ann"]);
    let connect = || connect(&l);
    // Headers sent one piece and then no more (slowloris): closed after the header timeout.
    let mut slow = connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: laurel\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    let (_, closed) = answer_or_close(&mut slow);
    assert!(closed, "a connection stuck in its headers is closed");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A connection that never sends anything is closed the same way.
    let mut idle = connect();
    let (_, closed) = answer_or_close(&mut idle);
    assert!(closed, "an idle connection is closed");
    // A body that stops halfway: 408, as a problem document.
    let mut body = connect();
    write!(
        body,
        "POST /v1/events HTTP/1.1\r\nhost: laurel\r\nauthorization: Bearer {ann}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"events\": ["
    )
    .unwrap();
    let (answer, _) = answer_or_close(&mut body);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[test]
fn connections_past_the_cap_are_closed_at_once() {
    use std::io::Write as _;
    let l = launch_with(Backend::Embedded, &["--max-connections", "3"]);
    let connect = || connect(&l);
    // Five connections against a cap of three (the test client may hold one of its own
    // from the start): those past the cap are closed at once, unanswered.
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..5 {
        let mut tcp = connect();
        let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: laurel\r\n\r\n");
        let mut buf = [0u8; 256];
        match std::io::Read::read(&mut tcp, &mut buf) {
            Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200") => served.push(tcp),
            Ok(_) | Err(_) => refused += 1,
        }
    }
    assert!(
        (2..=3).contains(&served.len()),
        "served {}, refused {refused}",
        served.len()
    );
    assert!(refused >= 2, "served {}, refused {refused}", served.len());
    drop(served);
    laurel_tests::wait_until(
        "a freed connection to make room",
        Duration::from_secs(10),
        || {
            l.laurel
                .try_request("GET", "/healthz", None, None)
                .is_ok_and(|r| r.status == 200)
                .then_some(())
        },
    );
}

#[test]
fn a_live_stream_ends_when_its_token_expires() {
    let l = launch(Backend::Embedded);
    let short = l.laurel.token(&["--player", "ann", "--ttl", "2"]);
    let sse = l.laurel.sse("/v1/players/me/notifications", &short);
    assert_eq!(sse.status, 200);
    sse.expect("ready", Duration::from_secs(5));
    let expired = sse.expect("expired", Duration::from_secs(10));
    assert!(
        expired["detail"].as_str().unwrap().contains("expired"),
        "{expired}"
    );
    assert!(
        sse.ends_within(Duration::from_secs(5)),
        "the stream ends after `expired`"
    );
}

/// Opens a live notification stream on a socket of its own: its status, and the socket
/// (dropping it closes the stream).
fn raw_stream(l: &Launched, token: &str) -> (u16, std::net::TcpStream) {
    use std::io::{Read as _, Write as _};
    let mut tcp = connect(l);
    write!(
        tcp,
        "GET /v1/players/me/notifications HTTP/1.1\r\nhost: laurel\r\n\
         authorization: Bearer {token}\r\naccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    let status = String::from_utf8_lossy(&head[9..12]).parse().unwrap();
    (status, tcp)
}

fn notification_players(l: &Launched) -> Option<u64> {
    let metrics = l.laurel.call("GET", "/metrics", None, None);
    String::from_utf8_lossy(&metrics.body)
        .lines()
        .find_map(|line| {
            line.strip_prefix("laurel_notification_players ")?
                .parse()
                .ok()
        })
}

#[test]
fn a_player_has_a_bounded_number_of_live_streams() {
    let l = launch_with(Backend::Embedded, &["--max-streams-per-player", "2"]);
    let ann = l.laurel.token(&["--player", "ann"]);
    let bob = l.laurel.token(&["--player", "bob"]);
    let first = raw_stream(&l, &ann);
    let second = raw_stream(&l, &ann);
    assert_eq!((first.0, second.0), (200, 200));
    let third = l.laurel.sse("/v1/players/me/notifications", &ann);
    assert_eq!(third.status, 429);
    assert_eq!(third.content_type, "application/problem+json");
    let bobs = raw_stream(&l, &bob);
    assert_eq!(bobs.0, 200, "another player's streams are counted apart");
    assert_eq!(notification_players(&l), Some(2));
    // A stream that closes gives its place back, and a player with none left is forgotten.
    drop(first);
    let _kept = laurel_tests::wait_until(
        "a closed stream to free its place",
        Duration::from_secs(40),
        || {
            let (status, tcp) = raw_stream(&l, &ann);
            (status == 200).then_some(tcp)
        },
    );
    drop((second, bobs));
    laurel_tests::wait_until("bob to be forgotten", Duration::from_secs(40), || {
        (notification_players(&l) == Some(1)).then_some(())
    });
}
