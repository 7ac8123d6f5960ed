//! Bad deploy input gets a clear error naming the host or field, and leaves every host as
//! it was: the tests look at the hosts (directories, listeners), not only at the message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use common::{Controller, DeployDir, create_cluster, stderr, stdout};
use nines_testkit::Sshd;

fn create(
    ctl: &Controller,
    name: &str,
    kind: &str,
    nodes: &str,
    template: &str,
    extra: &[&str],
) -> Output {
    create_cluster(ctl, name, kind, nodes, template, extra)
}

fn all_output(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// Nothing of a node was created: no data directory, no node directory.
fn untouched(dir: &DeployDir, addr: &str) {
    let d = dir.datadir(addr, 3306);
    assert!(!d.exists(), "{} was created", d.display());
    assert!(!std::path::Path::new(&format!("{}.nines", d.display())).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_before_any_job() {
    let ctl = Controller::start().await;
    let dir = DeployDir::new();
    let t = dir.template();
    let cases: [(&str, &str, &str, &str, &str); 5] = [
        (
            "galera",
            "127.0.0.250,127.0.0.251",
            "nodes",
            "at least 3 nodes",
            "too few Galera nodes",
        ),
        (
            "replication",
            "127.0.0.250,127.0.0.250:3306",
            "nodes",
            "listed twice",
            "a repeated address",
        ),
        (
            "galera",
            "127.0.0.250,127.0.0.251,127.0.0.252",
            "datadir",
            "{hots}",
            "an unknown placeholder",
        ),
        (
            "mysql-cluster",
            "127.0.0.250",
            "type",
            "galera, replication, standalone",
            "an unknown type",
        ),
        (
            "standalone",
            "127.0.0.250:70000",
            "nodes",
            "invalid port",
            "a bad port",
        ),
    ];
    for (kind, nodes, field, words, what) in cases {
        let template = if field == "datadir" {
            "/srv/{hots}"
        } else {
            t.as_str()
        };
        let out = create(&ctl, "c1", kind, nodes, template, &["--local"]);
        assert!(!out.status.success(), "{what} accepted");
        let text = all_output(&out);
        assert!(
            text.contains(words) && text.contains(&format!("field `{field}`")),
            "{what}: {text}"
        );
    }
    // No host access at all.
    let out = create(&ctl, "c1", "standalone", "127.0.0.250", &t, &[]);
    assert!(
        all_output(&out).contains("needs host access"),
        "{}",
        all_output(&out)
    );
    assert_eq!(
        ctl.json(&["job", "list"]).as_array().unwrap().len(),
        0,
        "a job was queued"
    );
    assert_eq!(ctl.json(&["cluster", "list"]).as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_failures_name_the_host_and_change_nothing() {
    let leases = nines_testkit::lease_addresses(4).expect("leases");
    let a: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let dir = DeployDir::new();
    let ctl = Controller::start().await;

    // A port taken on one node's address: the whole Galera deploy is refused, no host touched.
    let holder = std::net::TcpListener::bind(format!("{}:4567", a[1])).expect("bind");
    let nodes = a[..3].join(",");
    let out = create(&ctl, "gal", "galera", &nodes, &dir.template(), &["--local"]);
    assert!(!out.status.success());
    let text = all_output(&out);
    assert!(
        text.contains(&format!("port 4567 on {} is already in use", a[1])),
        "{text}"
    );
    assert!(text.contains("nothing was changed"), "{text}");
    for x in &a[..3] {
        untouched(&dir, x);
    }
    assert!(holder.local_addr().is_ok(), "our listener is still ours");
    drop(holder);

    // A data directory that exists and is not empty: refused, its content untouched.
    let busy = dir.datadir(&a[0], 3306);
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("precious.txt"), "keep me").unwrap();
    let out = create(
        &ctl,
        "solo",
        "standalone",
        &a[0],
        &dir.template(),
        &["--local"],
    );
    assert!(!out.status.success());
    let text = all_output(&out);
    assert!(
        text.contains(&format!(
            "data directory {} exists and is not empty",
            busy.display()
        )),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(busy.join("precious.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    assert!(!nines_testkit::port_is_open(&a[0], 3306));

    // A template under a directory that cannot be written.
    let out = create(
        &ctl,
        "solo",
        "standalone",
        &a[3],
        "/proc/nines-test/{host}_{port}",
        &["--local"],
    );
    assert!(!out.status.success());
    let text = all_output(&out);
    assert!(
        text.contains("/proc is not writable") || text.contains("not writable"),
        "{text}"
    );
    assert!(!std::path::Path::new("/proc/nines-test").exists());

    // Nothing was registered by any of them.
    assert_eq!(ctl.json(&["cluster", "list"]).as_array().unwrap().len(), 0);

    // A duplicate name: the second create is refused at once.
    let out = create(
        &ctl,
        "solo",
        "standalone",
        &a[3],
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let out = create(
        &ctl,
        "solo",
        "standalone",
        &a[2],
        &dir.template(),
        &["--local"],
    );
    assert!(!out.status.success());
    let text = all_output(&out);
    assert!(
        text.contains("already exists") && text.contains("field `name`"),
        "{text}"
    );
    untouched(&dir, &a[2]);
    // A node already managed by nines.
    let out = create(
        &ctl,
        "other",
        "standalone",
        &a[3],
        &dir.template(),
        &["--local"],
    );
    assert!(
        all_output(&out).contains("already managed"),
        "{}",
        all_output(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_named() {
    let leases = nines_testkit::lease_addresses(2).expect("leases");
    let a: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    // sshd on the first address only: the second host cannot be reached.
    let sshd = Sshd::start(&a[..1]).await.expect("sshd");
    let dir = DeployDir::new();
    let config = sshd.ssh_config().display().to_string();
    let ctl = Controller::start_with(&["--ssh-config", &config]).await;
    let key = sshd.private_key().display().to_string();
    let port = sshd.port().to_string();
    let nodes = a.join(",");
    let out = create(
        &ctl,
        "rep",
        "replication",
        &nodes,
        &dir.template(),
        &["--ssh-user", "root", "--ssh-key", &key, "--ssh-port", &port],
    );
    assert!(!out.status.success());
    let text = all_output(&out);
    assert!(
        text.contains(&format!("host {} is not reachable", a[1])),
        "{text}"
    );
    for x in &a {
        untouched(&dir, x);
    }
    assert_eq!(ctl.json(&["cluster", "list"]).as_array().unwrap().len(), 0);
}
