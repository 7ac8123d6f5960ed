//! A deploy that fails halfway stays registered as failed; `cluster delete --purge` removes
//! what it did from the host, and the same create command retries it to success.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, sql, stderr, stdout};

const PW: &str = ADMIN_PW;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_is_purged_or_retried() {
    let lease = nines_testkit::lease_address().expect("lease");
    let addr = lease.addr();
    let dir = DeployDir::new();
    let ctl = Controller::start().await;
    // A template that renders but that the server refuses: the deploy fails at start.
    let broken = ctl.data_dir().join("broken.cnf.j2");
    std::fs::write(
        &broken,
        format!(
            "{}\nno_such_option_for_nines = 1\n",
            nines_model::deploy::DEFAULT_TEMPLATE
        ),
    )
    .unwrap();
    let template = dir.template();
    let create = |extra: &[&str]| {
        let mut all = vec!["--local"];
        all.extend_from_slice(extra);
        create_cluster(&ctl, "solo", "standalone", &addr, &template, &all)
    };
    let broken_arg = broken.to_str().unwrap();
    let out = create(&["--config-template", broken_arg]);
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("unknown variable 'no_such_option_for_nines=1'"),
        "{text}"
    );
    assert!(text.contains("stays registered as failed"), "{text}");
    let c = ctl.cluster("solo").await.expect("registered");
    assert_eq!(c["deploy_state"], "failed", "{c}");
    assert!(
        dir.datadir(&addr, 3306).exists(),
        "the failed attempt's files are there to purge"
    );

    // Purge: the host is as it was.
    let out = ctl.cli(&["cluster", "delete", "--name", "solo", "--purge", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!dir.datadir(&addr, 3306).exists());
    assert!(
        !std::path::Path::new(&format!("{}.nines", dir.datadir(&addr, 3306).display())).exists()
    );
    assert!(!nines_testkit::port_is_open(&addr, 3306));
    assert!(ctl.cluster("solo").await.is_none());

    // Fail again, then retry with the default template: the same command succeeds on the
    // files the failed attempt left.
    let out = create(&["--config-template", broken_arg]);
    assert!(!out.status.success());
    let out = create(&[]);
    assert!(
        out.status.success(),
        "retry failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("retrying the failed deploy"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        sql(&addr, "dba", PW, "SELECT 1").await.unwrap(),
        vec!["1".to_string()]
    );
    assert_eq!(
        ctl.cluster("solo").await.unwrap()["deploy_state"],
        "deployed"
    );
}
