//! docker-compose.yml uses the binaries' real flags: every `command` parses (no Docker
//! engine here, so each one is started and must fail only at connecting, never at usage),
//! and none carries a token or a password, which belong in the environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use conveyor_core::yaml::{self, Value};
use conveyor_runner::credentials::has_password;

#[test]
fn every_conveyor_command_in_docker_compose_parses() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let text = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
    let doc = yaml::parse(&text).unwrap();
    let Value::Map(services) = &doc.get("services").unwrap().value else {
        panic!("services")
    };
    let mut checked = Vec::new();
    for (name, svc) in services {
        let Some(cmd) = svc.get("command") else {
            continue;
        };
        let Value::Seq(args) = &cmd.value else {
            panic!("command of {name:?} is a list")
        };
        let args: Vec<String> = args.iter().map(|a| a.scalar_text().unwrap()).collect();
        if !args[0].starts_with("conveyor") {
            continue;
        }
        for a in &args {
            let flag = a.split('=').next().unwrap_or_default();
            assert!(
                !flag.ends_with("-token") && !has_password(a),
                "{a}: a credential on the command line of {:?}, which every process can read",
                name.scalar_text()
            );
        }
        let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_conveyor")).with_file_name(&args[0]);
        let mut command = Command::new(&bin);
        // Credentials come in the service's environment (never in argv).
        if let Some(Value::Map(vars)) = svc.get("environment").map(|e| &e.value) {
            for (k, v) in vars {
                command.env(k.scalar_text().unwrap(), v.scalar_text().unwrap());
            }
        }
        let out = command
            .args(&args[1..])
            .env("CONVEYOR_LOG", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(
            out.status.code(),
            Some(2),
            "{} rejects its flags: {stderr}",
            name.scalar_text().unwrap()
        );
        assert!(stderr.starts_with("error: cannot"), "{stderr}");
        checked.push(args[0].clone());
    }
    checked.sort();
    assert_eq!(
        checked,
        ["conveyor", "conveyor", "conveyor-runner", "conveyor-runner"]
    );
}
