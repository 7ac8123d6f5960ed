//! Starts a real three-node MariaDB Galera cluster on loopback addresses for the demo
//! (scripts/demo.sh), writes how to reach it to a file, and keeps it running until
//! interrupted. Until `cluster create` lands, this is how the demo gets a cluster.

use std::io::Write;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "demo-cluster.env".to_string());
    eprintln!("starting a three-node Galera cluster on loopback addresses…");
    let g = nines_testkit::GaleraCluster::start(3).await?;
    let n0 = g.node(0);
    let dir = std::path::Path::new(&out)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let pw = nines_testkit::write_password_file(&dir, n0.password())?;
    let mut f = std::fs::File::create(&out)?;
    writeln!(f, "SEED={}", n0.endpoint())?;
    writeln!(f, "DB_USER={}", n0.user())?;
    writeln!(f, "DB_PASSWORD_FILE={}", pw.display())?;
    writeln!(
        f,
        "NODES={}",
        g.nodes()
            .iter()
            .map(|n| n.endpoint())
            .collect::<Vec<_>>()
            .join(",")
    )?;
    drop(f);
    eprintln!("cluster ready: {}", g.addresses().join(", "));
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping the demo cluster");
    Ok(())
}
