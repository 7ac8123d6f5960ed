//! A small network of the test's own: hosts in network namespaces on one bridge, for what
//! loopback addresses cannot carry (VRRP and a virtual IP moving between hosts).
//!
//! Layout: a bridge namespace holds `br0` (with the subnet's `.254`, the clients' side)
//! and one veth per host; each host namespace has `eth0` with `10.231.0.N/24` (N from 1)
//! and its own loopback. Each host runs a real sshd on `ADDR:22` (reached from the test's
//! namespace through `ProxyCommand ip netns exec …`, written into [`NetnsLab::ssh_config`]),
//! so nines deploys onto it over SSH as onto any machine.
//!
//! Servers of the test's own namespace (127.0.0.x) are made reachable from inside every
//! host at the same address ([`NetnsLab::forward_into`]: a socat in the host namespace
//! listening on the address, a unix socket on the shared file system, a socat here
//! connecting to the server), and a service inside the network is reachable from here
//! through a unix socket ([`NetnsLab::client_socket`]).
//!
//! Namespaces are named `nl<pid>x<n>…`; dropping the lab kills every process in them
//! (daemons nines started there included) and deletes them; a lab whose test process died
//! is swept by the next lab's start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::GroupChild;
use crate::sshd::Sshd;
use crate::util::{keep_dirs, next_counter, run_dir};

/// The subnet of every lab (each lab's namespaces are its own, so labs never meet).
pub const SUBNET: &str = "10.231.0";

/// A host of the lab.
#[derive(Debug)]
pub struct LabHost {
    pub netns: String,
    pub address: String,
    sshd: Option<Sshd>,
}

impl LabHost {
    /// The private key that logs in as root on this host.
    pub fn private_key(&self) -> PathBuf {
        self.sshd
            .as_ref()
            .map(Sshd::private_key)
            .unwrap_or_default()
    }
}

/// The lab (see the module documentation).
#[derive(Debug)]
pub struct NetnsLab {
    prefix: String,
    bridge: String,
    hosts: Vec<LabHost>,
    dir: PathBuf,
    forwarders: Vec<GroupChild>,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Kills every process in `netns` and deletes it.
fn destroy(netns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", netns])
        .stderr(Stdio::null())
        .status();
}

/// Deletes the namespaces of labs whose test process is gone.
fn sweep() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("nl") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            destroy(name);
        }
    }
}

impl NetnsLab {
    /// A lab with `hosts` hosts (at most 200), each with sshd running.
    pub async fn start(hosts: usize) -> Result<NetnsLab> {
        if hosts == 0 || hosts > 200 {
            bail!("a lab has 1 to 200 hosts");
        }
        sweep();
        let prefix = format!("nl{}x{}", std::process::id(), next_counter());
        let dir = run_dir()?.join(&prefix);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut lab = NetnsLab {
            bridge: format!("{prefix}br"),
            prefix,
            hosts: Vec::new(),
            dir,
            forwarders: Vec::new(),
        };
        lab.build(hosts)?;
        for h in &mut lab.hosts {
            h.sshd = Some(Sshd::start_in_netns(&h.netns, &h.address).await?);
        }
        Ok(lab)
    }

    fn build(&mut self, hosts: usize) -> Result<()> {
        let br = self.bridge.clone();
        ip(&["netns", "add", &br])?;
        ip(&["-n", &br, "link", "set", "lo", "up"])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &br,
            "addr",
            "add",
            &format!("{SUBNET}.254/24"),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 1..=hosts {
            let ns = format!("{}h{i}", self.prefix);
            let address = format!("{SUBNET}.{i}");
            ip(&["netns", "add", &ns])?;
            // Pushed into the lab before its host is listed: a failure below still
            // deletes it on drop.
            self.hosts.push(LabHost {
                netns: ns.clone(),
                address: address.clone(),
                sshd: None,
            });
            let veth = format!("v{i}");
            ip(&[
                "-n", &br, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &br, "link", "set", &veth, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &veth, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    pub fn hosts(&self) -> &[LabHost] {
        &self.hosts
    }

    /// One ssh_config for every host (give it to nines with `--ssh-config`).
    pub fn ssh_config(&self) -> Result<PathBuf> {
        let mut text = String::new();
        for h in &self.hosts {
            let sshd = h.sshd.as_ref().context("sshd not started")?;
            text.push_str(
                &std::fs::read_to_string(sshd.ssh_config())
                    .with_context(|| format!("reading {}", sshd.ssh_config().display()))?,
            );
        }
        let path = self.dir.join("ssh_config");
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    fn socat(&mut self, netns: Option<&str>, args: &[String]) -> Result<()> {
        let mut cmd = match netns {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n, "socat"]);
                c
            }
            None => Command::new("socat"),
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.forwarders.push(GroupChild::spawn(cmd)?);
        Ok(())
    }

    /// Makes each `ADDR:PORT` of the test's namespace reachable at the same address from
    /// inside every host.
    pub async fn forward_into(&mut self, targets: &[String]) -> Result<()> {
        for t in targets {
            let (addr, port) = t
                .rsplit_once(':')
                .with_context(|| format!("{t}: not ADDR:PORT"))?;
            let sock = self.dir.join(format!("in-{addr}-{port}.sock"));
            self.socat(
                None,
                &[
                    format!("UNIX-LISTEN:{},fork,mode=600", sock.display()),
                    format!("TCP:{addr}:{port}"),
                ],
            )?;
            let hosts: Vec<String> = self.hosts.iter().map(|h| h.netns.clone()).collect();
            for ns in hosts {
                self.socat(
                    Some(&ns),
                    &[
                        format!("TCP-LISTEN:{port},bind={addr},fork,reuseaddr"),
                        format!("UNIX-CONNECT:{}", sock.display()),
                    ],
                )?;
            }
            wait_for(&sock).await?;
        }
        Ok(())
    }

    /// A unix socket here that reaches `ADDR:PORT` from the clients' side of the
    /// bridge (a VIP, a host's listener).
    pub async fn client_socket(&mut self, addr: &str, port: u16) -> Result<PathBuf> {
        let sock = self.dir.join(format!("out-{addr}-{port}.sock"));
        let br = self.bridge.clone();
        self.socat(
            Some(&br),
            &[
                format!("UNIX-LISTEN:{},fork,mode=600", sock.display()),
                format!("TCP:{addr}:{port},connect-timeout=2"),
            ],
        )?;
        wait_for(&sock).await?;
        Ok(sock)
    }

    /// Runs a shell command inside host `i`'s namespace; its stdout (fails on failure).
    pub fn exec(&self, i: usize, script: &str) -> Result<String> {
        let h = self.hosts.get(i).context("no such host")?;
        let out = Command::new("ip")
            .args(["netns", "exec", &h.netns, "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .context("ip netns exec")?;
        if !out.status.success() {
            bail!(
                "{script} on {}: {}",
                h.address,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Which hosts hold `address` on their interfaces now.
    pub fn holders(&self, address: &str) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| {
                self.exec(i, "ip -o -4 addr show")
                    .is_ok_and(|o| o.contains(&format!(" {address}/")))
            })
            .collect()
    }
}

async fn wait_for(sock: &Path) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        if tokio::time::Instant::now() >= deadline {
            bail!("{} did not appear", sock.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

impl Drop for NetnsLab {
    fn drop(&mut self) {
        for f in &mut self.forwarders {
            f.kill_group_and_reap();
        }
        for h in &mut self.hosts {
            h.sshd.take();
            destroy(&h.netns);
        }
        destroy(&self.bridge);
        if !keep_dirs() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
