//! A standalone server: start, query, restart, crash, freeze, cleanup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use nines_testkit::{MariaDbServer, ServerOptions, port_is_open, wait_port_closed, wait_until};

#[tokio::test]
async fn standalone_server_answers_queries() {
    let t = Instant::now();
    let server = MariaDbServer::start(ServerOptions::default())
        .await
        .unwrap();
    eprintln!("standalone server ready in {:?}", t.elapsed());

    // Bound to its own address on the standard port.
    let addr = server.address();
    let octet: u8 = addr.rsplit('.').next().unwrap().parse().unwrap();
    assert!(
        (20..=250).contains(&octet),
        "address {addr} outside the range"
    );
    assert_eq!(server.endpoint(), format!("{addr}:3306"));
    assert!(port_is_open(&addr, 3306));

    let row: Option<(String, String, u32, String, String, String)> = server
        .query_first(
            "SELECT CURRENT_USER(), @@bind_address, @@server_id, @@log_bin, @@gtid_strict_mode, @@report_host",
        )
        .await
        .unwrap();
    let (user, bind, server_id, log_bin, strict, report_host) = row.unwrap();
    assert_eq!(user, "nines@%");
    assert_eq!(bind, addr);
    assert_eq!(server_id, server.server_id());
    assert_eq!(log_bin, "1");
    assert_eq!(strict, "1");
    assert_eq!(report_host, addr);
    assert_eq!(
        server
            .global_variable("binlog_format")
            .await
            .unwrap()
            .as_deref(),
        Some("ROW")
    );
    // No GTIDs at start: the admin account was created without binlogging.
    assert_eq!(
        server
            .global_variable("gtid_binlog_pos")
            .await
            .unwrap()
            .as_deref(),
        Some("")
    );

    server
        .exec("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT); INSERT INTO app.t VALUES (1, 'one')")
        .await
        .unwrap();
    let rows: Vec<(i32, String)> = server.query_rows("SELECT id, v FROM app.t").await.unwrap();
    assert_eq!(rows, vec![(1, "one".to_owned())]);

    // Runs as mysql, in its own directory.
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let mysql_uid = std::process::Command::new("id")
        .args(["-u", "mysql"])
        .output()
        .unwrap();
    let mysql_uid = String::from_utf8(mysql_uid.stdout).unwrap();
    assert!(
        uid_line.split_whitespace().nth(1) == Some(mysql_uid.trim()),
        "mariadbd not running as mysql: {uid_line}"
    );
    assert!(server.datadir().join("mysql").is_dir());
    assert!(server.error_log().is_file());

    // root has no TCP access.
    let root_tcp = mysql_async::OptsBuilder::default()
        .ip_or_hostname(addr.clone())
        .tcp_port(3306)
        .user(Some("root"))
        .prefer_socket(false);
    assert!(
        mysql_async::Conn::new(root_tcp).await.is_err(),
        "root must be socket-only"
    );

    // Password file.
    let pw = server.write_password_file().unwrap();
    assert_eq!(std::fs::read_to_string(&pw).unwrap(), server.password());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Clean stop and restart keeps the data.
    let t = Instant::now();
    server.stop().await.unwrap();
    eprintln!("clean stop in {:?}", t.elapsed());
    assert!(!server.is_running());
    assert!(!port_is_open(&addr, 3306));
    let t = Instant::now();
    server.start_again().await.unwrap();
    eprintln!("restart in {:?}", t.elapsed());
    let rows: Vec<(i32, String)> = server.query_rows("SELECT id, v FROM app.t").await.unwrap();
    assert_eq!(rows, vec![(1, "one".to_owned())]);

    // Drop kills the server and removes its directory.
    let dir = server.dir().to_path_buf();
    let pid = server.pid();
    drop(server);
    assert!(!dir.exists(), "{} not removed", dir.display());
    // Killed and reaped (a zombie would still have /proc/<pid>).
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!port_is_open(&addr, 3306));
}

#[tokio::test]
async fn kill_9_closes_the_port_and_restart_recovers() {
    let server = MariaDbServer::start(ServerOptions::new().config_line("max_connections=50"))
        .await
        .unwrap();
    let max: Option<u32> = server
        .query_first("SELECT @@max_connections")
        .await
        .unwrap();
    assert_eq!(max, Some(50));
    server
        .exec(
            "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY); INSERT INTO d.t VALUES (7)",
        )
        .await
        .unwrap();
    let pid = server.pid();
    server.kill_9().unwrap();
    assert!(!server.is_running());
    wait_port_closed(&server.address(), 3306, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(server.conn().await.is_err());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    // Data survives a crash.
    assert!(server.datadir().join("d").is_dir());
    server.start_again().await.unwrap();
    assert_ne!(server.pid(), pid);
    let ids: Vec<i32> = server.query_rows("SELECT id FROM d.t").await.unwrap();
    assert_eq!(ids, vec![7]);
}

#[tokio::test]
async fn sigstop_freezes_and_sigcont_resumes() {
    let server = MariaDbServer::start(ServerOptions::default())
        .await
        .unwrap();
    server.sigstop().unwrap();
    // Frozen: the port accepts (kernel backlog) but no query is answered.
    let res = tokio::time::timeout(
        Duration::from_secs(2),
        server.query_first::<i32>("SELECT 1"),
    )
    .await;
    assert!(
        res.is_err() || res.as_ref().is_ok_and(|r| r.is_err()),
        "a frozen server answered: {res:?}"
    );
    server.sigcont().unwrap();
    let one = wait_until(
        Duration::from_secs(20),
        "server to answer after SIGCONT",
        || async { server.query_first::<i32>("SELECT 1").await },
    )
    .await
    .unwrap();
    assert_eq!(one, 1);
}
