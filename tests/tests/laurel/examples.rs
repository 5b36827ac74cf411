//! The files of `examples/` work as the README says: the sample definitions apply, and the
//! minimal game-client loop earns achievements through a real `laurel serve`.

use std::path::PathBuf;
use std::process::Command;

use laurel_tests::{Laurel, laurel_bin};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[test]
fn the_sample_game_applies_and_the_client_loop_earns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let laurel = Laurel::start(&data, &[]);
    let out = Command::new(laurel_bin())
        .args(["defs", "apply"])
        .arg(example("achievements.json"))
        .arg("--url")
        .arg(laurel.url())
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("applied 11 changes"), "{stdout}");

    let token = laurel.token(&["--player", "ann"]);
    let out = Command::new("sh")
        .arg(example("game-client.sh"))
        .arg("3")
        .env("LAUREL_URL", laurel.url())
        .env("PLAYER_TOKEN", token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("round 3: {\"accepted\":3"), "{stdout}");
    let last_round = stdout.split("round 3:").nth(1).unwrap();
    for title in ["Prospector", "Strip miner", "Demolition expert"] {
        assert!(
            last_round.contains(&format!("earned: {title}")),
            "{title} after three rounds:\n{stdout}"
        );
    }
    assert!(!stdout.contains("earned: Survivor"), "{stdout}");
}
