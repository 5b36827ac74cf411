//! Icons (SPEC 4b) through a real `laurel serve`: upload, the URL in a player's list, the
//! bytes served with caching headers; bad images refused; references checked; unreferenced
//! icons collected; the directory, JetStream object store and S3 (a real S3-compatible
//! server) stores.

use std::io::Cursor;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use laurel_tests::{Reply, S3Server, wait_until};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::{Launched, launch, launch_with, launch_with_env};
use crate::support::Backend;

/// A `width` x `height` picture in `format`.
fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, y| {
        Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255])
    });
    let image = match format {
        // JPEG has no alpha channel.
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(image).to_rgb8()),
        _ => DynamicImage::ImageRgba8(image),
    };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn upload(l: &Launched, id: &str, slot: &str, token: &str, bytes: Vec<u8>) -> Reply {
    l.laurel
        .try_request(
            "PUT",
            &format!("/v1/admin/achievements/{id}/icons/{slot}"),
            Some(token),
            Some(("application/octet-stream", bytes)),
        )
        .expect("laurel answers")
}

/// An upload of FIRST_WIN's `slot` icon that must be taken.
fn uploaded(l: &Launched, slot: &str, bytes: Vec<u8>) -> Reply {
    let r = upload(l, "FIRST_WIN", slot, &l.admin, bytes);
    assert_eq!(r.status, 200, "{:?}", r.json);
    r
}

fn get(l: &Launched, path: &str, headers: &[(&str, &str)]) -> Reply {
    l.laurel
        .try_request_with("GET", path, None, None, headers)
        .expect("laurel answers")
}

fn define(l: &Launched, id: &str, extra: Value) -> Reply {
    let mut spec =
        json!({"title": id, "points": 5, "conditions": [{"stat": "wins", "at_least": 1}]});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    l.laurel.call(
        "PUT",
        &format!("/v1/admin/achievements/{id}"),
        Some(&l.admin),
        Some(spec),
    )
}

fn game(l: &Launched) {
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/wins",
        Some(&l.admin),
        Some(json!({"aggregation": "sum", "kind": "int"})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    let r = define(l, "FIRST_WIN", json!({}));
    assert_eq!(r.status, 201, "{:?}", r.json);
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The icon a player's list shows for FIRST_WIN.
fn players_icon(l: &Launched, player: &str) -> Value {
    let token = l.laurel.token(&["--player", player]);
    let r = l
        .laurel
        .call("GET", "/v1/players/me/achievements", Some(&token), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "FIRST_WIN")
        .map(|a| a["icon_url"].clone())
        .unwrap_or(Value::Null)
}

/// Upload, the URL in the player's list, and the bytes with their caching headers.
fn an_uploaded_icon_reaches_players_and_is_served_immutable(backend: Backend) {
    let l = launch(backend);
    game(&l);
    let r = uploaded(&l, "locked", picture(300, 120, ImageFormat::Png));
    let digest = r.json["digest"].as_str().unwrap().to_string();
    assert!(is_digest(&digest), "{digest}");
    assert_eq!(r.json["url"], format!("/v1/icons/{digest}"));
    assert_eq!(r.json["content_type"], "image/png");
    assert_eq!(r.json["source_type"], "image/png");
    assert_eq!(
        (
            r.json["source_width"].clone(),
            r.json["source_height"].clone()
        ),
        (json!(300), json!(120))
    );
    assert_eq!(r.json["achievement"]["locked_icon"], digest.as_str());
    assert_eq!(r.json["achievement"]["version"], 2);
    assert_eq!(r.header("etag"), Some("\"2\""));

    // A JPEG for the unlocked slot; the locked one stays.
    let r = uploaded(&l, "unlocked", picture(64, 200, ImageFormat::Jpeg));
    let unlocked = r.json["digest"].as_str().unwrap().to_string();
    assert_eq!(r.json["source_type"], "image/jpeg");
    assert_eq!(r.json["achievement"]["locked_icon"], digest.as_str());
    assert_eq!(r.json["achievement"]["unlocked_icon"], unlocked.as_str());

    // The same picture again is the same icon, and changes nothing.
    let again = uploaded(&l, "locked", picture(300, 120, ImageFormat::Png));
    assert_eq!(again.json["digest"], digest.as_str());
    assert_eq!(again.json["achievement"]["version"], 3);

    // The player sees the locked icon's URL until they earn it, then the unlocked one's.
    assert_eq!(players_icon(&l, "ann"), format!("/v1/icons/{digest}"));
    let r = l.events(
        &l.server,
        json!([{"player_id": "ann", "stat": "wins", "value": 1}]),
    );
    assert_eq!(r.status, 202, "{:?}", r.json);
    let token = crate::http::token_of(&r);
    let ann = l.laurel.token(&["--player", "ann"]);
    let mine = l.my(&ann, "achievements", Some(&token));
    let first = mine["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "FIRST_WIN")
        .unwrap()
        .clone();
    assert_eq!(first["earned"], true);
    assert_eq!(first["icon_url"], format!("/v1/icons/{unlocked}"));

    // The bytes: no token needed, a square PNG whose SHA-256 is its name.
    let r = get(&l, &format!("/v1/icons/{digest}"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("etag"), Some(format!("\"{digest}\"").as_str()));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(format!("{:x}", Sha256::digest(&r.body)), digest);
    let png = image::load_from_memory_with_format(&r.body, ImageFormat::Png).unwrap();
    assert_eq!((png.width(), png.height()), (100, 100));

    // A client holding it is told so; HEAD has the headers and no body.
    let etag = format!("\"{digest}\"");
    let r = get(
        &l,
        &format!("/v1/icons/{digest}"),
        &[("if-none-match", &etag)],
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = get(
        &l,
        &format!("/v1/icons/{digest}"),
        &[("if-none-match", "\"0000\"")],
    );
    assert_eq!(r.status, 200);
    let r = l
        .laurel
        .try_request("HEAD", &format!("/v1/icons/{digest}"), None, None)
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), Some("image/png"));

    // No such icon, or not a digest at all: 404 problems.
    let r = get(&l, &format!("/v1/icons/{}", "0".repeat(64)), &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(get(&l, "/v1/icons/..%2Fkeys", &[]).status, 404);

    // The published list shows the locked icon too.
    let r = l.laurel.call("GET", "/v1/achievements", Some(&ann), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        r.json["achievements"][0]["icon_url"],
        format!("/v1/icons/{digest}")
    );
}

/// Bad uploads get clear problems and change nothing: not the definition, not the store.
fn bad_images_are_refused_and_change_nothing(backend: Backend) {
    let l = launch(backend);
    game(&l);
    let png = picture(40, 40, ImageFormat::Png);
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        (
            "a text file named .png",
            b"<svg onload=alert(1)></svg>".to_vec(),
            415,
            None,
        ),
        ("an empty body", Vec::new(), 415, None),
        (
            "a truncated PNG",
            png[..png.len() / 2].to_vec(),
            422,
            Some("does not decode"),
        ),
        ("a decompression bomb", bomb(), 422, Some("100000x100000")),
        ("over 512 KiB", oversized(), 413, None),
    ];
    for (what, bytes, status, says) in cases {
        let r = upload(&l, "FIRST_WIN", "locked", &l.admin, bytes);
        assert_eq!(r.status, status, "{what}: {:?}", r.json);
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        if let Some(says) = says {
            assert_eq!(r.json["errors"][0]["field"], "body", "{what}: {:?}", r.json);
            assert_eq!(
                r.json["errors"][0]["code"]["code"], "image",
                "{what}: {:?}",
                r.json
            );
            let reason = r.json["errors"][0]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(says), "{what}: {reason}");
        }
    }
    let r = upload(&l, "NO_SUCH", "locked", &l.admin, png.clone());
    assert_eq!(r.status, 404, "{:?}", r.json);
    let r = upload(&l, "FIRST_WIN", "sideways", &l.admin, png.clone());
    assert_eq!(r.status, 404, "{:?}", r.json);
    let ann = l.laurel.token(&["--player", "ann"]);
    assert_eq!(
        upload(&l, "FIRST_WIN", "locked", &ann, png.clone()).status,
        403
    );
    let r = l
        .laurel
        .try_request_with(
            "PUT",
            "/v1/admin/achievements/FIRST_WIN/icons/locked",
            Some(&l.admin),
            Some(("image/png", png)),
            &[("if-match", "\"7\"")],
        )
        .unwrap();
    assert_eq!(r.status, 412, "{:?}", r.json);

    let r = l.laurel.call(
        "GET",
        "/v1/admin/achievements/FIRST_WIN",
        Some(&l.admin),
        None,
    );
    assert_eq!(r.json["version"], 1, "{:?}", r.json);
    assert!(
        r.json.get("locked_icon").is_none_or(Value::is_null),
        "{:?}",
        r.json
    );
    let icons = l.dir.path().join("data").join("icons");
    if backend == Backend::Embedded {
        let kept = std::fs::read_dir(&icons).map_or(0, |d| d.count());
        assert_eq!(kept, 0, "nothing was stored in {}", icons.display());
    }
}

/// A PNG declaring 100000 x 100000 pixels with nothing behind it.
fn bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&100_000u32.to_be_bytes());
    chunk.extend_from_slice(&100_000u32.to_be_bytes());
    chunk.extend_from_slice(&[8, 6, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    // A first data chunk (the header is read up to it), tiny, and the end.
    for chunk in [&b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01"[..], b"IEND"] {
        png.extend_from_slice(&(chunk.len() as u32 - 4).to_be_bytes());
        png.extend_from_slice(chunk);
        png.extend_from_slice(&crc32(chunk).to_be_bytes());
    }
    png
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid PNG over 512 KiB (noise does not compress).
fn oversized() -> Vec<u8> {
    let mut state = 0x2545_F491_u32;
    let image = RgbaImage::from_fn(512, 512, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Rgba(state.to_le_bytes())
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).unwrap();
    let bytes = out.into_inner();
    assert!(bytes.len() > 512 * 1024, "{} bytes", bytes.len());
    bytes
}

/// An icon field holds an uploaded icon's digest, an http(s) URL or a relative path:
/// `javascript:` and unknown digests are refused, in a PUT and in a definitions file.
fn icon_references_are_checked(backend: Backend) {
    let l = launch(backend);
    game(&l);
    for (icon, code) in [
        ("javascript:alert(1)", "icon_reference"),
        ("data:image/png;base64,AAAA", "icon_reference"),
        ("/etc/passwd", "icon_reference"),
        ("https://cdn.example.com/a b.png", "icon_reference"),
    ] {
        let r = define(&l, "BAD", json!({"locked_icon": icon}));
        assert_eq!(r.status, 422, "{icon}: {:?}", r.json);
        assert_eq!(r.json["errors"][0]["field"], "locked_icon", "{icon}");
        assert_eq!(
            r.json["errors"][0]["code"]["code"], code,
            "{icon}: {:?}",
            r.json
        );
    }
    let unknown = "ab".repeat(32);
    let r = define(&l, "BAD", json!({"unlocked_icon": unknown}));
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert_eq!(r.json["errors"][0]["field"], "unlocked_icon");
    assert_eq!(r.json["errors"][0]["code"]["code"], "unknown_icon");
    for icon in [
        "https://cdn.example.com/icons/a.png",
        "icons/FIRST_WIN_locked.png",
    ] {
        let r = define(&l, "GOOD", json!({"locked_icon": icon}));
        assert!(matches!(r.status, 200 | 201), "{icon}: {:?}", r.json);
        assert_eq!(players_icon_of(&l, "GOOD"), icon);
    }
    // So is a definitions file's.
    let file = l.dir.path().join("defs.json");
    std::fs::write(
        &file,
        json!({"stats": {"wins": {"aggregation": "sum", "kind": "int"}},
               "achievements": {"OTHER": {"title": "Other", "locked_icon": unknown,
                                          "conditions": [{"stat": "wins", "at_least": 3}]}}})
        .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(laurel_tests::laurel_bin())
        .args([
            "defs",
            "apply",
            "--url",
            &l.laurel.url(),
            "--token",
            &l.admin,
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("locked_icon") && stderr.contains(&unknown),
        "{stderr}"
    );
    let r = l
        .laurel
        .call("GET", "/v1/admin/achievements/OTHER", Some(&l.admin), None);
    assert_eq!(r.status, 404, "{:?}", r.json);
}

fn players_icon_of(l: &Launched, id: &str) -> Value {
    let r = l
        .laurel
        .call("GET", "/v1/achievements", Some(&l.admin), None);
    r.json["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["icon_url"].clone())
        .unwrap_or(Value::Null)
}

/// With `--icons-base-url`, players' clients fetch icons from the CDN in front of Laurel.
fn a_cdn_base_url_goes_into_icon_urls(backend: Backend) {
    let l = launch_with(
        backend,
        &["--icons-base-url", "https://cdn.example.com/v1/icons/"],
    );
    game(&l);
    let r = uploaded(&l, "locked", picture(20, 20, ImageFormat::WebP));
    let digest = r.json["digest"].as_str().unwrap();
    assert_eq!(r.json["source_type"], "image/webp");
    let url = format!("https://cdn.example.com/v1/icons/{digest}");
    assert_eq!(r.json["url"], url.as_str());
    assert_eq!(players_icon(&l, "ann"), url.as_str());
    // The origin still serves it, for the CDN to fetch.
    assert_eq!(get(&l, &format!("/v1/icons/{digest}"), &[]).status, 200);
}

/// An icon no definition references any more goes once the grace period is over; the
/// icons definitions reference stay, archived achievements' included.
fn unreferenced_icons_are_collected(backend: Backend) {
    let l = launch_with(
        backend,
        &["--icons-grace-secs", "0", "--icons-collect-every-secs", "1"],
    );
    game(&l);
    let r = define(&l, "RETIRED", json!({}));
    assert_eq!(r.status, 201, "{:?}", r.json);
    let first = uploaded(&l, "locked", picture(30, 30, ImageFormat::Png));
    let retired = upload(
        &l,
        "RETIRED",
        "locked",
        &l.admin,
        picture(31, 30, ImageFormat::Png),
    );
    assert_eq!(retired.status, 200, "{:?}", retired.json);
    let r = l.laurel.call(
        "DELETE",
        "/v1/admin/achievements/RETIRED",
        Some(&l.admin),
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let second = uploaded(&l, "locked", picture(32, 30, ImageFormat::Png));
    let digest = |r: &Reply| r.json["digest"].as_str().unwrap().to_string();
    let (first, retired, second) = (digest(&first), digest(&retired), digest(&second));
    wait_until(
        "the replaced icon to be collected",
        Duration::from_secs(30),
        || (get(&l, &format!("/v1/icons/{first}"), &[]).status == 404).then_some(()),
    );
    // Several collections later, the referenced ones are still there.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(&l, &format!("/v1/icons/{second}"), &[]).status, 200);
    assert_eq!(get(&l, &format!("/v1/icons/{retired}"), &[]).status, 200);
}

/// Defines the game, uploads `image` as FIRST_WIN's locked icon and reads it back: its
/// digest and the answer.
fn upload_and_serve(l: &Launched, image: Vec<u8>) -> (String, Reply) {
    game(l);
    let r = uploaded(l, "locked", image);
    let digest = r.json["digest"].as_str().unwrap().to_string();
    let served = get(l, &format!("/v1/icons/{digest}"), &[]);
    assert_eq!(served.status, 200);
    (digest, served)
}

/// On NATS, `--icons-store nats` keeps icons in the JetStream object store, where every
/// gateway of the deployment reads them.
fn icons_in_the_jetstream_object_store() {
    let l = launch_with(
        Backend::Nats,
        &["--icons-store", "nats", "--stream-prefix", "GAME1"],
    );
    let (digest, served) = upload_and_serve(&l, picture(50, 50, ImageFormat::Png));
    let url = l.nats.as_ref().unwrap().url();
    let stored = tokio::runtime::Runtime::new().unwrap().block_on(async {
        use tokio::io::AsyncReadExt;
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let bucket = js.get_object_store("GAME1_ICONS").await.unwrap();
        let mut object = bucket.get(&digest).await.unwrap();
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.unwrap();
        bytes
    });
    assert_eq!(stored, served.body);
}

/// `--icons-store nats` without NATS is a refusal to start, not a silent fallback.
fn the_object_store_needs_nats() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = laurel_tests::refusal_of(&[
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--icons-store".as_ref(),
        "nats".as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_ref(),
    ]);
    assert!(
        stderr.contains("--icons-store nats needs --nats"),
        "{stderr}"
    );
}

/// `--icons-store s3://BUCKET/PREFIX` against a real S3-compatible server.
fn icons_in_an_s3_bucket(backend: Backend) {
    let s3 = S3Server::start();
    s3.create_bucket("game-icons");
    let l = launch_with_env(
        backend,
        &["--icons-store", "s3://game-icons/laurel"],
        &s3.env(),
    );
    let (digest, served) = upload_and_serve(&l, picture(80, 40, ImageFormat::Jpeg));
    assert_eq!(
        s3.objects("game-icons"),
        [(format!("laurel/{digest}.png"), served.body.len() as u64)]
    );
    assert_eq!(players_icon(&l, "ann"), format!("/v1/icons/{digest}"));
    // Referencing it from another definition is checked against the bucket.
    let r = define(&l, "ALSO", json!({"locked_icon": digest}));
    assert_eq!(r.status, 201, "{:?}", r.json);
}

crate::both_backends_sync!(
    an_uploaded_icon_reaches_players_and_is_served_immutable,
    bad_images_are_refused_and_change_nothing,
    icon_references_are_checked,
    a_cdn_base_url_goes_into_icon_urls,
    unreferenced_icons_are_collected,
    icons_in_an_s3_bucket,
);

#[test]
fn jetstream_object_store_holds_the_icons() {
    icons_in_the_jetstream_object_store();
}

#[test]
fn object_store_without_nats_is_refused() {
    the_object_store_needs_nats();
}
