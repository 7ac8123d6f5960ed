//! A real OpenSSH server on loopback addresses, with generated keys.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::lease::{AddressLease, SSHD_PORTS};
use crate::process::GroupChild;
use crate::util::{POLL_INTERVAL, keep_dirs, next_counter, port_is_open, run_dir, tail_file};

const SSHD: &str = "/usr/sbin/sshd";
/// Preferred port, tried before the rest of [`SSHD_PORTS`].
const PREFERRED_PORT: u16 = 2222;
/// How long sshd gets to accept a login on every address.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A real `/usr/sbin/sshd` (running as root) listening on one port on each of
/// several loopback addresses, so each address looks like a host reachable
/// over SSH as `root`.
///
/// The kit generates an ed25519 host key and a client key pair, and writes a
/// `known_hosts` (entries `[addr]:port` for every address) and an
/// `ssh_config` (port, user root, identity, known hosts, strict host key
/// checking, batch mode) for clients: `ssh -F <ssh_config> <addr> true`.
/// Password logins are off; only the generated key is accepted.
///
/// Addresses leased by this process (e.g. those of a [`crate::GaleraCluster`])
/// stay leased while the sshd lives. Dropping it kills sshd and removes its
/// directory.
#[derive(Debug)]
pub struct Sshd {
    dir: PathBuf,
    addresses: Vec<String>,
    port: u16,
    /// The network namespace sshd runs in (clients reach it through `ip netns exec`).
    netns: Option<String>,
    leases: Vec<AddressLease>,
    child: GroupChild,
}

impl Sshd {
    /// Starts sshd on `addresses` at one port (in 2200..=2299, 2222 if free)
    /// that is free on all of them, and waits until `ssh` logs in on each.
    pub async fn start(addresses: &[String]) -> Result<Sshd> {
        if addresses.is_empty() {
            bail!("Sshd::start needs at least one address");
        }
        for a in addresses {
            a.parse::<std::net::Ipv4Addr>()
                .with_context(|| format!("invalid address {a:?}"))?;
        }
        let dir = run_dir()?.join(format!("sshd-{}-{}", std::process::id(), next_counter()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let result = Self::start_in(&dir, addresses, None).await;
        if result.is_err() && !keep_dirs() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    /// Starts sshd inside the network namespace `netns` on `address:22`. Its
    /// `ssh_config` reaches it with `ProxyCommand ip netns exec NETNS socat …`, so
    /// OpenSSH clients in the test's own namespace (and nines's) log in as to any host.
    pub async fn start_in_netns(netns: &str, address: &str) -> Result<Sshd> {
        address
            .parse::<std::net::Ipv4Addr>()
            .with_context(|| format!("invalid address {address:?}"))?;
        let dir = run_dir()?.join(format!("sshd-{}-{}", std::process::id(), next_counter()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let result = Self::start_in(&dir, &[address.to_string()], Some(netns)).await;
        if result.is_err() && !keep_dirs() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    async fn start_in(dir: &Path, addresses: &[String], netns: Option<&str>) -> Result<Sshd> {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", dir.display()))?;
        // Privilege separation directory, normally made by systemd.
        let privsep = Path::new("/run/sshd");
        if !privsep.exists() {
            std::fs::create_dir_all(privsep).context("creating /run/sshd")?;
            std::fs::set_permissions(privsep, std::fs::Permissions::from_mode(0o755))
                .context("chmod /run/sshd")?;
        }

        let host_key = dir.join("ssh_host_ed25519_key");
        let client_key = dir.join("id_ed25519");
        keygen(&host_key, "nines-testkit-host").await?;
        keygen(&client_key, "nines-testkit-client").await?;
        let client_pub = read_pub(&client_key)?;
        let host_pub = read_pub(&host_key)?;
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(&authorized_keys, format!("{client_pub}\n"))
            .with_context(|| format!("writing {}", authorized_keys.display()))?;

        let port = match netns {
            // A namespace of the test's own: port 22 is free.
            Some(_) => 22,
            None => pick_port(addresses)?,
        };
        let config = dir.join("sshd_config");
        let mut cfg = String::from("# Written by nines-testkit.\n");
        for a in addresses {
            let _ = writeln!(cfg, "ListenAddress {a}:{port}");
        }
        let _ = write!(
            cfg,
            "HostKey {host_key}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {ak}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             StrictModes no\n\
             UsePAM no\n\
             PrintMotd no\n\
             MaxStartups 100:30:200\n\
             MaxSessions 100\n\
             LogLevel VERBOSE\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n",
            host_key = host_key.display(),
            pid = dir.join("sshd.pid").display(),
            ak = authorized_keys.display(),
        );
        std::fs::write(&config, cfg).with_context(|| format!("writing {}", config.display()))?;

        let known_hosts = dir.join("known_hosts");
        let kh: String = addresses
            .iter()
            .map(|a| {
                // ssh looks port 22 up by the bare address.
                if port == 22 {
                    format!("{a} {host_pub}\n")
                } else {
                    format!("[{a}]:{port} {host_pub}\n")
                }
            })
            .collect();
        std::fs::write(&known_hosts, kh)
            .with_context(|| format!("writing {}", known_hosts.display()))?;

        let ssh_config = dir.join("ssh_config");
        let sc = format!(
            "# Written by nines-testkit.\n\
             Host {hosts}\n\
             \x20   Port {port}\n\
             \x20   User root\n\
             \x20   IdentityFile {id}\n\
             \x20   IdentitiesOnly yes\n\
             \x20   UserKnownHostsFile {kh}\n\
             \x20   GlobalKnownHostsFile /dev/null\n\
             \x20   StrictHostKeyChecking yes\n\
             \x20   BatchMode yes\n\
             \x20   ConnectTimeout 5\n\
             \x20   LogLevel ERROR\n\
             {proxy}",
            hosts = addresses.join(" "),
            id = client_key.display(),
            kh = known_hosts.display(),
            proxy = netns
                .map(|n| format!("    ProxyCommand ip netns exec {n} socat - TCP:%h:%p\n"))
                .unwrap_or_default(),
        );
        std::fs::write(&ssh_config, sc)
            .with_context(|| format!("writing {}", ssh_config.display()))?;

        let log_path = dir.join("sshd.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let log2 = log.try_clone().context("dup sshd log")?;
        let mut cmd = match netns {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n, SSHD]);
                c
            }
            None => Command::new(SSHD),
        };
        cmd.args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = GroupChild::spawn(cmd)?;
        let leases: Vec<AddressLease> = addresses
            .iter()
            .filter_map(|a| AddressLease::find(a))
            .collect();
        for l in &leases {
            l.register_pid(child.pid(), "sshd");
        }
        let mut sshd = Sshd {
            dir: dir.to_path_buf(),
            addresses: addresses.to_vec(),
            port,
            netns: netns.map(str::to_string),
            leases,
            child,
        };
        sshd.wait_ready().await?;
        Ok(sshd)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<String> = self.addresses.clone();
        while !pending.is_empty() {
            if let Some(status) = self.child.try_exited() {
                bail!(
                    "sshd exited during startup ({status})\n--- sshd.log ---\n{}",
                    tail_file(&self.dir.join("sshd.log"), 30)
                );
            }
            let addr = pending[0].clone();
            let last_err = match self.try_login(&addr).await {
                Ok(()) => {
                    pending.remove(0);
                    continue;
                }
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "sshd on {addr}:{} not ready within {READY_TIMEOUT:?}: {last_err}\n--- sshd.log ---\n{}",
                    self.port,
                    tail_file(&self.dir.join("sshd.log"), 30)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Ok(())
    }

    async fn try_login(&self, addr: &str) -> Result<()> {
        let (a, port) = (addr.to_owned(), self.port);
        let open = self.netns.is_some()
            || tokio::task::spawn_blocking(move || port_is_open(&a, port))
                .await
                .context("join port probe")?;
        if !open {
            bail!("{addr}:{port} not accepting connections yet");
        }
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::process::Command::from(self.ssh_command(addr))
                .arg("true")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| anyhow!("ssh to {addr} timed out"))?
        .context("running ssh")?;
        if !out.status.success() {
            bail!(
                "ssh to {addr} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// The port sshd listens on (the same on every address).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login user: `root`.
    pub fn user(&self) -> &str {
        "root"
    }

    /// The addresses sshd listens on.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The client private key (its public half is `<path>.pub`).
    pub fn private_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The client public key file.
    pub fn public_key(&self) -> PathBuf {
        self.dir.join("id_ed25519.pub")
    }

    /// `known_hosts` with the host key for `[addr]:port` of every address.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// An `ssh_config` for the addresses (use with `ssh -F`).
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// The server's directory (keys, configs, `sshd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Pid of sshd.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// `ssh -F <ssh_config> -p <port> root@<addr>`, ready for the remote
    /// command to be appended.
    pub fn ssh_command(&self, addr: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(self.ssh_config())
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("root@{addr}"));
        cmd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.child.kill_group_and_reap();
        for l in &self.leases {
            l.unregister_pid(self.child.pid());
        }
        if !keep_dirs() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn keygen(path: &Path, comment: &str) -> Result<()> {
    let out = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running ssh-keygen")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen for {} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `"<type> <base64>"` of the public key next to `private`.
fn read_pub(private: &Path) -> Result<String> {
    let path = PathBuf::from(format!("{}.pub", private.display()));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let fields: Vec<&str> = text.split_whitespace().take(2).collect();
    if fields.len() != 2 {
        bail!("malformed public key in {}", path.display());
    }
    Ok(fields.join(" "))
}

fn pick_port(addresses: &[String]) -> Result<u16> {
    let free_everywhere = |port: u16| {
        addresses.iter().all(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| TcpListener::bind((ip, port)).is_ok())
        })
    };
    std::iter::once(PREFERRED_PORT)
        .chain(SSHD_PORTS)
        .find(|&p| free_everywhere(p))
        .ok_or_else(|| anyhow!("no port in {SSHD_PORTS:?} is free on all of {addresses:?}"))
}
