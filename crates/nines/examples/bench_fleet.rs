//! Starts ten real MariaDB nodes on loopback addresses for the monitoring benchmark
//! (bench/monitor.sh): a primary with three replicas, a three-node Galera cluster and
//! three standalone servers. Writes one seed per line to the file given as argument
//! (`SEED USER PASSWORD_FILE`) and runs until interrupted.

use std::io::Write;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fleet.txt".to_string());
    let repl = nines_testkit::ReplicationTopology::start(3, false).await?;
    let galera = nines_testkit::GaleraCluster::start(3).await?;
    let mut solo = Vec::new();
    for _ in 0..3 {
        solo.push(nines_testkit::MariaDbServer::start(Default::default()).await?);
    }
    let mut lines = Vec::new();
    for s in [repl.primary(), galera.node(0)]
        .into_iter()
        .chain(solo.iter())
    {
        let pw = s.write_password_file()?;
        lines.push(format!("{} {} {}", s.endpoint(), s.user(), pw.display()));
    }
    let tmp = format!("{out}.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{}", lines.join("\n"))?;
    drop(f);
    std::fs::rename(&tmp, &out)?;
    eprintln!("fleet ready: 10 nodes");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
