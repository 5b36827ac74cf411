//! The `laurel` command line, run as a real process.

use std::process::Command;

use laurel_tests::laurel_bin;

#[test]
fn help_lists_every_role_and_tool() {
    let out = Command::new(laurel_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for command in [
        "serve",
        "gateway",
        "engine",
        "projector",
        "token",
        "defs",
        "replay",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "`{command}` missing from:\n{help}"
        );
    }
}

#[test]
fn an_unknown_command_fails_with_usage() {
    let out = Command::new(laurel_bin())
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
