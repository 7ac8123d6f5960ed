//! Property tests of the validation boundary: arbitrary strings never panic a validator,
//! what a validator accepts keeps the promises its type makes, and whatever a datadir
//! template, a host and a cluster name that passed validation render to is read back
//! identically by MariaDB's own option-file parser (`my_print_defaults`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use nines_model::ClusterType;
use nines_model::deploy::{ConfigInput, HostShare, NodeLayout, render_config, size_for};
use nines_model::input::{
    AccountName, ClusterName, MAX_TEXT_LEN, Text, controller_path, node_address, printable,
    ssh_user,
};
use proptest::prelude::*;

/// Strings that mix what validators must accept with everything they must refuse.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._:/{}\\[\\]#;%|&$'\"`\\\\ \n\t\u{1b}-]{0,40}",
        Just("..".to_string()),
        Just(".".to_string()),
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn validators_never_panic_and_keep_their_promises(s in hostile()) {
        if let Ok(n) = ClusterName::parse("name", &s) {
            prop_assert!(n.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
            prop_assert!(!n.as_str().starts_with('.') && n.as_str().len() <= 64);
        }
        if let Ok(a) = AccountName::parse("user", &s) {
            prop_assert!(!a.as_str().contains(['\'', '\\', '"', '`', '@', ' ']));
        }
        if let Ok(t) = Text::parse("reason", &s) {
            prop_assert!(!t.as_str().chars().any(char::is_control));
            prop_assert!(t.as_str().chars().count() <= MAX_TEXT_LEN);
        }
        if let Ok(ep) = node_address("node", &s) {
            // The canonical form parses back to the same address, and is a safe URL
            // segment and file name part once `:` and brackets are encoded.
            let again = node_address("node", &ep.to_string()).unwrap();
            prop_assert_eq!(&again, &ep);
            prop_assert!(ep.host != "." && ep.host != ".." && !ep.host.contains('/'));
        }
        if let Ok(u) = ssh_user("ssh.user", &s) {
            prop_assert!(!u.starts_with('-'));
        }
        let _ = controller_path("ssh.key_path", &s);
        let shown = printable(&s);
        prop_assert!(!shown.chars().any(char::is_control));
    }

    #[test]
    fn layouts_never_panic_and_never_leave_their_base(
        template in hostile(),
        host in hostile(),
    ) {
        let Ok(ep) = node_address("node", &host) else { return Ok(()) };
        if let Ok(l) = NodeLayout::from_template(&template, &ep) {
            prop_assert!(l.datadir.starts_with('/'));
            prop_assert!(!l.datadir.split('/').any(|seg| seg == ".." || seg == "."));
            prop_assert!(l.datadir.chars().all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c)));
        }
    }
}

/// A template made of path parts validation may accept, with the placeholders.
fn template() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9_.-]{1,12}",
            Just("{host}".to_string()),
            Just("{port}".to_string()),
            Just("{host}_{port}".to_string()),
        ],
        1..5,
    )
    .prop_map(|parts| format!("/srv/{}", parts.join("/")))
}

/// Host names and addresses validation may accept.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "(127\\.0\\.0\\.[0-9]{1,2})",
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9_-]{0,8}){0,2}",
        Just("::1".to_string()),
    ]
}

proptest! {
    // Each case runs my_print_defaults: fewer cases, still a minute at most.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn accepted_values_survive_mariadbs_option_parser(
        template in template(),
        host in host(),
        port in 1u16..,
        name in "[a-zA-Z0-9][a-zA-Z0-9._-]{0,20}",
    ) {
        let Ok(name) = ClusterName::parse("name", &name) else { return Ok(()) };
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let Ok(ep) = node_address("node", &addr) else { return Ok(()) };
        let Ok(layout) = NodeLayout::from_template(&template, &ep) else { return Ok(()) };
        let sizing = size_for(HostShare { memory_bytes: 1 << 30, cpus: 1, nodes_on_host: 1 });
        let input = ConfigInput::new(name.as_str(), ClusterType::Galera, &ep, &layout, &sizing, 1);
        let cnf = render_config(None, &input).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("my.cnf");
        std::fs::write(&file, &cnf).unwrap();
        let out = Command::new("my_print_defaults")
            .arg(format!("--defaults-file={}", file.display()))
            .arg("mysqld")
            .output()
            .expect("my_print_defaults (mariadb-server) must be installed");
        prop_assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let opts = String::from_utf8(out.stdout).unwrap();
        let value = |key: &str| {
            opts.lines()
                .find_map(|l| l.strip_prefix(&format!("--{key}=")))
                .map(str::to_string)
        };
        prop_assert_eq!(value("datadir"), Some(layout.datadir.clone()));
        prop_assert_eq!(value("socket"), Some(layout.socket.clone()));
        prop_assert_eq!(value("wsrep_cluster_name"), Some(name.to_string()));
        prop_assert_eq!(value("wsrep_node_address"), Some(ep.host.clone()));
        prop_assert_eq!(value("bind_address"), Some(ep.host.clone()));
    }
}
