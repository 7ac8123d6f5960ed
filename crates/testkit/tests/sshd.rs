//! A real sshd on two leased loopback addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use nines_testkit::{Sshd, lease_addresses, port_is_open};

#[tokio::test]
async fn ssh_logs_in_on_every_address() {
    let leases = lease_addresses(2).unwrap();
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let t = Instant::now();
    let sshd = Sshd::start(&addrs).await.unwrap();
    eprintln!("sshd ready in {:?}", t.elapsed());
    assert!((2200..=2299).contains(&sshd.port()));
    assert_eq!(sshd.user(), "root");
    assert!(sshd.private_key().is_file());
    let known = std::fs::read_to_string(sshd.known_hosts()).unwrap();
    for a in &addrs {
        assert!(known.contains(&format!("[{a}]:{}", sshd.port())), "{known}");
    }

    for a in &addrs {
        let out = std::process::Command::new("ssh")
            .arg("-F")
            .arg(sshd.ssh_config())
            .arg("-p")
            .arg(sshd.port().to_string())
            .arg(format!("root@{a}"))
            .args(["echo", "hi"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        // The helper command builder works the same.
        let out = sshd.ssh_command(a).args(["id", "-u"]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    }

    // Without the kit's key, login is refused (no password logins).
    let out = std::process::Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityFile=/dev/null",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-p",
            &sshd.port().to_string(),
            &format!("root@{}", addrs[0]),
            "true",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "login without the key succeeded");

    let port = sshd.port();
    let dir = sshd.dir().to_path_buf();
    drop(sshd);
    assert!(!port_is_open(&addrs[0], port));
    assert!(!dir.exists());
}
