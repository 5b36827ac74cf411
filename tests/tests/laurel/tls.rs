//! Encryption in transit (SPEC 4b): HTTPS through a real TLS client, with certificates
//! made here; a renewed certificate taken without a restart; Laurel on NATS over mutual
//! TLS, and on a NATS server that encrypts JetStream at rest.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use laurel_tests::{Laurel, NatsServer, laurel_bin, wait_until};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use serde_json::{Value, json};

/// A certificate authority of the test's own.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A certificate for `127.0.0.1` and `localhost` (or a client's), as PEM: (cert, key).
    fn issue(&self, purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An HTTPS client trusting `ca` alone, speaking only `version`.
fn client(ca: &Ca, version: reqwest::tls::Version) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .min_tls_version(version)
        .max_tls_version(version)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Served {
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HTTPS with TLS 1.2 and 1.3 through a real TLS client; plain HTTP is not answered; a
/// renewed certificate (another CA's) is served to new connections without a restart.
#[test]
fn https_serves_tls_1_2_and_1_3_and_takes_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = Ca::new("Laurel test CA one");
    let (cert, key) = first.issue(ExtendedKeyUsagePurpose::ServerAuth);
    let cert_file = write(dir.path(), "cert.pem", &cert);
    let key_file = write(dir.path(), "key.pem", &key);
    let port = free_port();
    let data = dir.path().join("data");
    let child = Command::new(laurel_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .arg("--tls-cert")
        .arg(&cert_file)
        .arg("--tls-key")
        .arg(&key_file)
        .args(["--tls-reload-secs", "1"])
        .env("LAUREL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _served = Served { child };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let get = |client: &reqwest::Client, path: &str| {
        rt.block_on(async { client.get(format!("{url}{path}")).send().await })
    };
    let tls12 = client(&first, reqwest::tls::Version::TLS_1_2);
    let tls13 = client(&first, reqwest::tls::Version::TLS_1_3);
    wait_until(
        "laurel to answer over HTTPS",
        Duration::from_secs(60),
        || get(&tls13, "/healthz").ok(),
    );
    for client in [&tls12, &tls13] {
        let r = get(client, "/healthz").unwrap();
        assert_eq!(r.status(), 200);
    }

    // The API works over it: an event in, read back.
    let token = |who: &[&str]| {
        let out = Command::new(laurel_bin())
            .args(["token", "--data-dir"])
            .arg(&data)
            .args(who)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let admin = token(&["--admin"]);
    let ann = token(&["--player", "ann"]);
    rt.block_on(async {
        let r = tls13
            .put(format!("{url}/v1/admin/stats/wins"))
            .bearer_auth(&admin)
            .json(&json!({"aggregation": "sum", "kind": "int", "client_writable": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = tls12
            .post(format!("{url}/v1/events"))
            .bearer_auth(&ann)
            .json(&json!({"events": [{"stat": "wins", "value": 3}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let accepted: Value = r.json().await.unwrap();
        let wait = accepted["token"].as_str().unwrap();
        let stats: Value = tls13
            .get(format!("{url}/v1/players/me/stats?wait_for={wait}"))
            .bearer_auth(&ann)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["stats"]["wins"], 3, "{stats}");
    });

    // The CLI reaches it too, trusting the private CA it is given (and only then).
    let ca_file = write(dir.path(), "ca.pem", &first.pem());
    let export = |ca: Option<&Path>| {
        let mut command = Command::new(laurel_bin());
        command.args(["defs", "export", "--url", &url, "--token", &admin]);
        if let Some(ca) = ca {
            command.arg("--ca-cert").arg(ca);
        }
        command.output().unwrap()
    };
    let out = export(Some(&ca_file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("wins"));
    assert!(
        !export(None).status.success(),
        "the public roots do not vouch for a test CA"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = rt.block_on(async {
        plain
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
    });
    assert!(
        r.is_err() || r.as_ref().unwrap().status() != 200,
        "plain HTTP answered: {r:?}"
    );

    // A renewed certificate, from another CA: new connections get it, no restart.
    let second = Ca::new("Laurel test CA two");
    let (cert, key) = second.issue(ExtendedKeyUsagePurpose::ServerAuth);
    write(dir.path(), "key.pem", &key);
    write(dir.path(), "cert.pem", &cert);
    let renewed = client(&second, reqwest::tls::Version::TLS_1_3);
    wait_until("the renewed certificate", Duration::from_secs(30), || {
        get(&renewed, "/healthz").ok().filter(|r| r.status() == 200)
    });
    let stale = client(&first, reqwest::tls::Version::TLS_1_3);
    assert!(
        get(&stale, "/healthz").is_err(),
        "a client trusting only the old CA still connects"
    );
}

/// A key that is not the certificate's is a refusal to start, with the reason.
#[test]
fn a_mismatched_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Laurel test CA");
    let (cert, _) = ca.issue(ExtendedKeyUsagePurpose::ServerAuth);
    let (_, other_key) = ca.issue(ExtendedKeyUsagePurpose::ServerAuth);
    let out = Command::new(laurel_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(write(dir.path(), "cert.pem", &cert))
        .arg("--tls-key")
        .arg(write(dir.path(), "key.pem", &other_key))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not the key of"), "{stderr}");
}

/// Laurel on a NATS server that requires TLS and verifies clients (mutual TLS), and that
/// encrypts JetStream's store at rest (`cipher`, `key`): events in, views out, and no
/// player id in clear in the server's store.
#[test]
fn laurel_on_nats_over_mutual_tls_with_jetstream_encrypted_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Laurel test NATS CA");
    let (server_cert, server_key) = ca.issue(ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = ca.issue(ExtendedKeyUsagePurpose::ClientAuth);
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let config = format!(
        "tls {{ cert_file: {}, key_file: {}, ca_file: {}, verify: true }}\n\
         jetstream {{ store_dir: $STORE, cipher: chachapoly, key: \"laurel-test-jetstream-key\" }}\n",
        path(&write(dir.path(), "server.pem", &server_cert)),
        path(&write(dir.path(), "server-key.pem", &server_key)),
        path(&ca_file),
    );
    let nats = NatsServer::start_configured(&config);
    let extra: Vec<String> = vec![
        "--nats".into(),
        nats.tls_url(),
        "--nats-ca".into(),
        ca_file.display().to_string(),
        "--nats-cert".into(),
        write(dir.path(), "client.pem", &client_cert)
            .display()
            .to_string(),
        "--nats-key".into(),
        write(dir.path(), "client-key.pem", &client_key)
            .display()
            .to_string(),
        "--partitions".into(),
        "4".into(),
    ];
    let laurel = Laurel::start(&dir.path().join("data"), &extra);
    let admin = laurel.token(&["--admin"]);
    let server = laurel.token(&["--server"]);
    laurel.define_sum_stat(&admin, "wins");
    let player = "player-with-a-findable-name";
    let r = laurel.call(
        "POST",
        "/v1/events",
        Some(&server),
        Some(json!({"events": [{"player_id": player, "stat": "wins", "value": 4}]})),
    );
    assert_eq!(r.status, 202, "{:?}", r.json);
    let token = r.json["token"].as_str().unwrap();
    let mine = laurel.token(&["--player", player]);
    let r = laurel.call(
        "GET",
        &format!("/v1/players/me/stats?wait_for={token}"),
        Some(&mine),
        None,
    );
    assert_eq!(r.json["stats"]["wins"], 4, "{:?}", r.json);
    // The server's store holds the event, sealed: the player id is nowhere in clear.
    let store = nats_store_files(&nats.store_dir());
    assert!(!store.is_empty(), "the JetStream store has files");
    for file in store {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(player.len()).any(|w| w == player.as_bytes()),
            "{} holds the player id in clear",
            file.display()
        );
    }
}

fn nats_store_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}
