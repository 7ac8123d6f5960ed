//! Where a node's files live, from a directory template such as `/srv/db/{host}_{port}`.
//!
//! The template names the data directory itself. Everything else nines keeps for the node
//! (configuration, socket, pid file, error log) sits in a sibling directory
//! `<datadir>.nines`, outside the datadir on purpose: Galera's state transfer empties the
//! joiner's datadir, and the configuration must survive that.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::endpoint::Endpoint;

/// Default data directory template: one directory per node, so several nodes can share a host.
pub const DEFAULT_DATADIR_TEMPLATE: &str = "/var/lib/nines/{host}_{port}";

/// Longest directory template.
pub const MAX_TEMPLATE_LEN: usize = 256;

/// Unix socket paths longer than this do not fit in `sun_path` (108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A node's files on its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeLayout {
    pub datadir: String,
    /// `<datadir>.nines`: configuration, socket, pid file, logs.
    pub node_dir: String,
    pub config_file: String,
    pub socket: String,
    pub pid_file: String,
    pub error_log: String,
    /// Name of the node's service (systemd unit, or the name of the supervised process).
    pub service: String,
}

/// A template that cannot give a usable layout; messages name the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("directory template `{0}` must be an absolute path")]
    NotAbsolute(String),
    #[error(
        "directory template `{template}` has an unknown placeholder `{{{name}}}` (known: {{host}}, {{port}})"
    )]
    UnknownPlaceholder { template: String, name: String },
    #[error(
        "directory template `{0}` may hold only letters, digits, `/`, `_`, `-`, `.` and the placeholders {{host}} and {{port}} (no `..` or `//`, at most 256 characters)"
    )]
    BadCharacters(String),
    #[error("directory template `{template}` gives {path}, which has an empty, `.` or `..` part")]
    Escapes { template: String, path: String },
    #[error(
        "directory template `{0}` gives `/` or a top-level directory; use something like /srv/db/{{host}}_{{port}}"
    )]
    TooShallow(String),
    #[error(
        "directory template `{template}` gives the same directory {path} for {a} and {b}: add {{host}} and {{port}}"
    )]
    Collision {
        template: String,
        path: String,
        a: String,
        b: String,
    },
    #[error(
        "socket path {path} from template `{template}` is longer than {MAX_SOCKET_PATH} bytes; use a shorter template"
    )]
    SocketTooLong { template: String, path: String },
}

impl NodeLayout {
    /// The layout of the node at `ep` from `template`.
    pub fn from_template(template: &str, ep: &Endpoint) -> Result<Self, LayoutError> {
        let t = template.trim_end_matches('/');
        if t.is_empty() && template.starts_with('/') {
            return Err(LayoutError::TooShallow(template.to_string()));
        }
        if !t.starts_with('/') {
            return Err(LayoutError::NotAbsolute(template.to_string()));
        }
        // Letters, digits, `/ _ - .` and the placeholders' braces only: the path goes into
        // MariaDB option files (where `#` and `;` start comments), unit files and shell
        // commands, and the service layer accepts no more.
        if t.contains("..")
            || t.contains("//")
            || t.len() > MAX_TEMPLATE_LEN
            || !t.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.' | '{' | '}')
            })
        {
            return Err(LayoutError::BadCharacters(template.to_string()));
        }
        let mut out = String::new();
        let mut rest = t;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let Some(j) = after.find('}') else {
                return Err(LayoutError::BadCharacters(template.to_string()));
            };
            match &after[..j] {
                "host" => out.push_str(&ep.host.replace(':', "_")),
                "port" => out.push_str(&ep.port.to_string()),
                other => {
                    return Err(LayoutError::UnknownPlaceholder {
                        template: template.to_string(),
                        name: other.to_string(),
                    });
                }
            }
            rest = &after[j + 1..];
        }
        out.push_str(rest);
        if out.matches('/').count() < 2 || out.len() < 3 {
            return Err(LayoutError::TooShallow(template.to_string()));
        }
        // The path as rendered for this node, checked again: no `.` or `..` segment (a
        // host cannot make one, but this is what reaches the hosts).
        if out
            .split('/')
            .skip(1)
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(LayoutError::Escapes {
                template: template.to_string(),
                path: out,
            });
        }
        let node_dir = format!("{out}.nines");
        let layout = Self {
            config_file: format!("{node_dir}/my.cnf"),
            socket: format!("{node_dir}/mysqld.sock"),
            pid_file: format!("{node_dir}/mysqld.pid"),
            error_log: format!("{node_dir}/error.log"),
            service: format!(
                "nines-mariadb-{}-{}",
                ep.host.replace([':', '.'], "_"),
                ep.port
            ),
            datadir: out,
            node_dir,
        };
        if layout.socket.len() > MAX_SOCKET_PATH {
            return Err(LayoutError::SocketTooLong {
                template: template.to_string(),
                path: layout.socket.clone(),
            });
        }
        Ok(layout)
    }

    /// Layouts of all nodes, refusing a template under which two nodes of the same host
    /// would share a directory.
    pub fn for_nodes(template: &str, nodes: &[Endpoint]) -> Result<Vec<Self>, LayoutError> {
        let layouts: Vec<Self> = nodes
            .iter()
            .map(|ep| Self::from_template(template, ep))
            .collect::<Result<_, _>>()?;
        for (i, a) in nodes.iter().enumerate() {
            for (j, b) in nodes.iter().enumerate().skip(i + 1) {
                if a.host == b.host && layouts[i].datadir == layouts[j].datadir {
                    return Err(LayoutError::Collision {
                        template: template.to_string(),
                        path: layouts[i].datadir.clone(),
                        a: a.to_string(),
                        b: b.to_string(),
                    });
                }
            }
        }
        Ok(layouts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    #[test]
    fn renders_paths_beside_the_datadir() {
        let l = NodeLayout::from_template("/srv/db/{host}_{port}", &ep("127.0.0.11:3306")).unwrap();
        assert_eq!(l.datadir, "/srv/db/127.0.0.11_3306");
        assert_eq!(l.config_file, "/srv/db/127.0.0.11_3306.nines/my.cnf");
        assert_eq!(l.socket, "/srv/db/127.0.0.11_3306.nines/mysqld.sock");
        assert_eq!(l.service, "nines-mariadb-127_0_0_11-3306");
        let d = NodeLayout::from_template(DEFAULT_DATADIR_TEMPLATE, &ep("db1:3307")).unwrap();
        assert_eq!(d.datadir, "/var/lib/nines/db1_3307");
    }

    #[test]
    fn refuses_bad_templates() {
        let e = ep("127.0.0.11:3306");
        assert!(matches!(
            NodeLayout::from_template("srv/{host}", &e),
            Err(LayoutError::NotAbsolute(_))
        ));
        assert!(matches!(
            NodeLayout::from_template("/srv/{hots}", &e),
            Err(LayoutError::UnknownPlaceholder { .. })
        ));
        assert!(matches!(
            NodeLayout::from_template("/srv/../etc", &e),
            Err(LayoutError::BadCharacters(_))
        ));
        // Everything an option file, a unit file or a shell would read as syntax.
        for bad in [
            "/srv/a b",
            "/srv/x#y/{host}",
            "/srv/x;y/{host}",
            "/srv/x%y/{host}",
            "/srv/x\ny/{host}",
            "/srv/x|y",
            "/srv/x>y",
            "/srv/x&y",
            "/srv/x$y",
            "/srv/x'y",
            "/srv/x\"y",
            "/srv/x`y",
            "/srv/x\\y",
            "/srv/ä/{host}",
            "/srv//x",
        ] {
            assert!(
                matches!(
                    NodeLayout::from_template(bad, &e),
                    Err(LayoutError::BadCharacters(_))
                ),
                "{bad:?}"
            );
        }
        // A host of `.`/`..` is no host at all, and a rendered `..` never passes.
        let dots = Endpoint {
            host: "..".into(),
            port: 3399,
        };
        assert!(matches!(
            NodeLayout::from_template("/base/{host}/{port}", &dots),
            Err(LayoutError::Escapes { .. })
        ));
        assert!(matches!(
            NodeLayout::from_template("/", &e),
            Err(LayoutError::TooShallow(_))
        ));
        assert!(matches!(
            NodeLayout::from_template("/{port}", &e),
            Err(LayoutError::TooShallow(_))
        ));
        let long = format!("/srv/{}/{{host}}", "x".repeat(90));
        assert!(matches!(
            NodeLayout::from_template(&long, &e),
            Err(LayoutError::SocketTooLong { .. })
        ));
    }

    #[test]
    fn nodes_of_one_host_need_distinct_directories() {
        let nodes = [ep("10.0.0.1:3306"), ep("10.0.0.1:3307")];
        let err = NodeLayout::for_nodes("/srv/db/{host}", &nodes).unwrap_err();
        assert!(err.to_string().contains("10.0.0.1:3307"), "{err}");
        assert!(NodeLayout::for_nodes("/srv/db/{host}_{port}", &nodes).is_ok());
        // Different hosts may share a path.
        assert!(NodeLayout::for_nodes("/var/lib/mysql", &[ep("a:3306"), ep("b:3306")]).is_ok());
    }
}
