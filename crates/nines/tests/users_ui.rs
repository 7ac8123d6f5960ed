//! Users, roles, tokens, the audit log, the web UI's sign-in and overview, and HTTPS
//! (issue 12), against a running controller with a real imported server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Controller, password_file, stderr, stdout, wait_until};
use nines_testkit::MariaDbServer;
use serde_json::Value;

const PW: &str = "a-long-enough-password";

/// A request with a bearer token; status and JSON body.
async fn call(ctl: &Controller, token: &str, method: &str, path: &str) -> (u16, Value) {
    let client = reqwest::Client::new();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = client
        .request(m, format!("{}{path}", ctl.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn token_of(ctl: &Controller, user: &str, label: &str) -> String {
    let v = ctl.json(&["token", "create", "--user", user, "--name", label]);
    v["token"].as_str().expect("token").to_string()
}

/// What a refused request must leave as it was.
async fn footprint(ctl: &Controller) -> Vec<Value> {
    let mut out = Vec::new();
    for p in [
        "/api/v1/jobs",
        "/api/v1/clusters",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/notify-channels",
        "/api/v1/backup-repos",
        "/api/v1/alarm-silences",
    ] {
        let mut v = ctl.get(p).await.1;
        // Using a token is not a change of it.
        if let Some(a) = v.as_array_mut() {
            for t in a {
                if let Some(o) = t.as_object_mut() {
                    o.remove("last_used_at");
                }
            }
        }
        out.push(v);
    }
    out.push(Value::from(
        ctl.get("/api/v1/events?limit=10000")
            .await
            .1
            .as_array()
            .map_or(0, Vec::len),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_on_every_route_and_every_change_is_audited() {
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), PW);
    let pws = pw.display().to_string();
    for (name, role) in [("ann", "operator"), ("vic", "viewer"), ("ada", "admin")] {
        let out = ctl.cli(&["user", "add", name, "--role", role, "--password-file", &pws]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    // Bad input is refused, naming the field.
    let short = password_file(ctl.data_dir(), "short");
    let out = ctl.cli(&[
        "user",
        "add",
        "bob",
        "--role",
        "admin",
        "--password-file",
        &short.display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("password"), "{}", stderr(&out));
    let out = ctl.cli(&[
        "user",
        "add",
        "bob",
        "--role",
        "root",
        "--password-file",
        &pws,
    ]);
    assert!(
        stderr(&out).contains("admin, operator, viewer"),
        "{}",
        stderr(&out)
    );
    let out = ctl.cli(&[
        "user",
        "add",
        "ann",
        "--role",
        "viewer",
        "--password-file",
        &pws,
    ]);
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));

    let users = ctl.json(&["user", "list"]);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "ann", "vic"]);
    assert!(!users.to_string().contains("argon2"), "{users}");

    // A token is shown once; the list never shows it.
    let created = ctl.json(&["token", "create", "--user", "vic", "--name", "grafana"]);
    let viewer = created["token"].as_str().unwrap().to_string();
    assert_eq!(viewer.len(), 64);
    assert_eq!(created["user"], "vic");
    assert_eq!(created["role"], "viewer");
    assert!(!ctl.json(&["token", "list"]).to_string().contains(&viewer));
    let operator = token_of(&ctl, "ann", "ops");

    // A viewer: every POST, PUT and DELETE under /api/v1/ is 403 and changes nothing.
    let before = footprint(&ctl).await;
    let (_, doc) = ctl.get("/api/openapi.json").await;
    let mut changes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let concrete = path
            .replace("{name}", "shop")
            .replace("{id}", "1")
            .replace("{host}", "127.0.0.9")
            .replace("{address}", "127.0.0.9:3306")
            .replace("{node}", "127.0.0.9:3306")
            .replace("{rule}", "r1");
        assert!(!concrete.contains('{'), "a path parameter left in {path}");
        for method in ["post", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            changes += 1;
            let (s, body) = call(&ctl, &viewer, &method.to_uppercase(), &concrete).await;
            assert_eq!(s, 403, "{method} {concrete} as a viewer: {body}");
            assert!(
                body["error"].as_str().unwrap_or("").contains("viewer"),
                "{body}"
            );
        }
        if item.get("get").is_some() && !path.contains('{') {
            let (s, body) = call(&ctl, &viewer, "GET", &concrete).await;
            assert_eq!(s, 200, "GET {concrete} as a viewer: {body}");
        }
    }
    assert!(changes >= 46, "only {changes} changing routes found");
    assert_eq!(
        footprint(&ctl).await,
        before,
        "a viewer's request changed something"
    );

    // An operator changes clusters, not users or tokens.
    let (s, body) = call(&ctl, &operator, "POST", "/api/v1/users").await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("only an admin"),
        "{body}"
    );
    let (s, _) = call(&ctl, &operator, "POST", "/api/v1/tokens").await;
    assert_eq!(s, 403);
    let (s, body) = call(&ctl, &operator, "POST", "/api/v1/clusters/shop/start").await;
    assert_eq!(s, 404, "an operator's change passes the role check: {body}");
    // An admin user manages users.
    let admin = token_of(&ctl, "ada", "laptop");
    let (s, body) = call(&ctl, &admin, "POST", "/api/v1/users").await;
    assert_eq!(
        s, 422,
        "an admin's request reaches the body's checks: {body}"
    );

    // A deleted user's token stops at once.
    let out = ctl.cli(&["user", "delete", "ann"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (s, _) = call(&ctl, &operator, "GET", "/api/v1/clusters").await;
    assert_eq!(s, 401);

    // The audit log has every change: who, what, from where, how it ended.
    let audit = ctl.json(&["audit", "list", "--limit", "1000"]);
    let lines = audit.as_array().unwrap();
    for l in lines {
        for f in ["at", "who", "action", "target", "from", "outcome"] {
            assert!(l[f].is_string(), "{f} missing: {l}");
        }
        assert_eq!(l["from"], "127.0.0.1", "{l}");
    }
    let viewer_refusals = lines
        .iter()
        .filter(|l| l["who"] == "vic" && l["outcome"] == "403 Forbidden")
        .count();
    assert_eq!(
        viewer_refusals, changes,
        "every refused change is in the log"
    );
    assert!(lines.iter().any(|l| l["who"] == "admin"
        && l["action"] == "POST /api/v1/users"
        && l["outcome"] == "201 Created"));
    assert!(lines.iter().any(|l| l["who"] == "admin"
        && l["action"] == "DELETE /api/v1/users/{name}"
        && l["target"] == "/api/v1/users/ann"));
    assert!(lines.iter().any(|l| l["who"] == "ann"
        && l["action"] == "POST /api/v1/clusters/{name}/start"
        && l["outcome"] == "404 Not Found"));
    assert!(
        !audit.to_string().contains(PW),
        "a password reached the audit log"
    );
    assert!(
        !ctl.log().contains(PW),
        "a password reached the controller's log"
    );
    assert!(
        !ctl.log().contains(&viewer),
        "a token reached the controller's log"
    );
}

/// A browser: no redirects followed, cookies kept by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("csrf_token input")
        + 25;
    html[at..].split('"').next().unwrap().to_string()
}

async fn login(ctl: &Controller, user: &str, pw: &str) -> reqwest::Response {
    let c = browser();
    let page = c
        .get(format!("{}/login", ctl.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("type=\"hidden\" name=\"csrf_token\""),
        "{page}"
    );
    c.post(format!("{}/login", ctl.url))
        .form(&[
            ("username", user),
            ("password", pw),
            ("csrf_token", &csrf_of(&page)),
        ])
        .send()
        .await
        .unwrap()
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("nines_session=") && !v.starts_with("nines_session=;"))
        .map(|v| v.split(';').next().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_needs_a_session_and_shows_every_cluster_with_its_state() {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    let ctl = Controller::start().await;
    let dbpw = password_file(ctl.data_dir(), server.password());
    let out = ctl.import(
        "shop",
        &server.endpoint(),
        server.user(),
        &dbpw,
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let pwf = password_file(ctl.data_dir(), PW);
    let out = ctl.cli(&[
        "user",
        "add",
        "ann",
        "--role",
        "operator",
        "--password-file",
        &pwf.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Without a session: to the login page.
    let r = browser().get(format!("{}/", ctl.url)).send().await.unwrap();
    assert!(matches!(r.status().as_u16(), 302 | 303), "{}", r.status());
    assert_eq!(r.headers()["location"], "/login");

    // The right password: a session cookie (HttpOnly, SameSite) and a redirect.
    let r = login(&ctl, "ann", PW).await;
    assert!(matches!(r.status().as_u16(), 302 | 303), "{}", r.status());
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite="),
        "{set}"
    );
    let cookie = session_cookie(&r).expect("session cookie");
    let healthy = wait_until(Duration::from_secs(20), || {
        let c = cookie.clone();
        let url = ctl.url.clone();
        async move {
            let html = browser()
                .get(format!("{url}/"))
                .header("cookie", c)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            html.contains(">shop</a>") && html.contains("healthy</span></td>")
        }
    })
    .await;
    let html = browser()
        .get(format!("{}/", ctl.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(healthy, "{html}");
    assert!(html.contains("ann (operator)"), "{html}");
    // Filtering by state leaves it out.
    let failed_only = browser()
        .get(format!("{}/?state=failed", ctl.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!failed_only.contains(">shop</a>"), "{failed_only}");

    // The API with the session: reads work, a change without the CSRF header does not.
    let r = browser()
        .get(format!("{}/api/v1/clusters", ctl.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = browser()
        .post(format!("{}/api/v1/clusters/shop/rolling-restart", ctl.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A forged or missing form token: no session.
    let r = browser()
        .post(format!("{}/login", ctl.url))
        .form(&[
            ("username", "ann"),
            ("password", PW),
            ("csrf_token", "1.2.3"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(session_cookie(&r).is_none());
    // Another site's form: refused.
    let page = browser()
        .get(format!("{}/login", ctl.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser()
        .post(format!("{}/login", ctl.url))
        .header("origin", "https://evil.example")
        .form(&[
            ("username", "ann"),
            ("password", PW),
            ("csrf_token", &csrf_of(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Sign-ins are rate limited: five wrong passwords, then even the right one waits.
    for _ in 0..5 {
        let r = login(&ctl, "ann", "wrong-password-123").await;
        assert_eq!(r.status(), 401);
        assert!(session_cookie(&r).is_none());
    }
    let r = login(&ctl, "ann", PW).await;
    assert_eq!(r.status(), 429);
    let body = r.text().await.unwrap();
    assert!(body.contains("try again in"), "{body}");

    // Signing out ends the session.
    let csrf = csrf_of(&html);
    let r = browser()
        .post(format!("{}/logout", ctl.url))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = browser()
        .get(format!("{}/", ctl.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // The sign-ins are in the audit log, and no password is.
    let audit = ctl.json(&["audit", "list"]);
    let logins: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] == "POST /login")
        .collect();
    assert!(
        logins
            .iter()
            .any(|l| l["who"] == "ann" && l["outcome"] == "303 See Other")
    );
    assert!(logins.iter().any(|l| l["outcome"] == "401 Unauthorized"));
    assert!(
        logins
            .iter()
            .any(|l| l["outcome"] == "429 Too Many Requests")
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["action"] == "POST /logout" && l["via"] == "ui")
    );
    assert!(!audit.to_string().contains(PW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (ca, ca_key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
    let csr = dir.path().join("srv.csr");
    let ext = dir.path().join("ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    // A small CA, and the server's certificate signed by it.
    openssl(
        &[
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-days",
                "2",
                "-subj",
                "/CN=nines-test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ][..],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec[..],
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "srv.csr",
            ][..],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "cert.pem",
    ]);
    let _ = (&ca_key, &csr);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = dir.path().join("data");
    /// Ends the HTTPS controller when the test ends, passed or not (one outlived a
    /// failed run).
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Killed(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("https://127.0.0.1:{port}");
    let cli = |extra: &[&str]| {
        Command::new(BIN)
            .args(["--server", &url, "--data-dir"])
            .arg(&data)
            .args(extra)
            .output()
            .unwrap()
    };
    let ca = ca.display().to_string();
    let up = wait_until(Duration::from_secs(30), || async {
        cli(&["--ca-cert", &ca, "cluster", "list"]).status.success()
    })
    .await;
    assert!(
        up,
        "{}",
        stderr(&cli(&["--ca-cert", &ca, "cluster", "list"]))
    );
    // Without the CA the certificate is not trusted, and the error says why.
    let out = cli(&["cluster", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("certificate"),
        "{}",
        stderr(&out)
    );
    // Plain HTTP on the TLS port gets nothing useful; curl over HTTPS gets the login page.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            &ca,
        ])
        .arg(format!("{url}/login"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&out.stdout), "200");
    // A bad key file stops the start with its flag named.
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("other"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--tls-key"), "{}", stderr(&out));
}

async fn page(ctl: &Controller, cookie: &str, path: &str) -> (u16, String, Option<String>) {
    let r = browser()
        .get(format!("{}{path}", ctl.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.text().await.unwrap(), location)
}

/// A controller with one real server imported as cluster `shop` and two people signed
/// up: ann (operator) and vic (viewer), both with password PW (its file's path returned).
async fn shop_with_ann_and_vic() -> (MariaDbServer, Controller, String) {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    let ctl = Controller::start().await;
    let dbpw = password_file(ctl.data_dir(), server.password());
    let out = ctl.import(
        "shop",
        &server.endpoint(),
        server.user(),
        &dbpw,
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let pwf = password_file(ctl.data_dir(), PW).display().to_string();
    for (n, r) in [("ann", "operator"), ("vic", "viewer")] {
        let out = ctl.cli(&["user", "add", n, "--role", r, "--password-file", &pwf]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    (server, ctl, pwf)
}

async fn act(ctl: &Controller, cookie: &str, csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut form = vec![("csrf_token", csrf)];
    form.extend_from_slice(fields);
    let r = browser()
        .post(format!("{}/clusters/shop/actions", ctl.url))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{fields:?}");
    r.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_page_shows_its_nodes_and_its_actions_start_the_same_jobs_as_the_cli() {
    let (server, ctl, pwf) = shop_with_ann_and_vic().await;
    let ann = session_cookie(&login(&ctl, "ann", PW).await).unwrap();
    let addr = server.endpoint();
    let shown = wait_until(Duration::from_secs(20), || async {
        let (_, html, _) = page(&ctl, &ann, "/clusters/shop").await;
        html.contains(&format!("data-address=\"{addr}\"")) && html.contains("online")
    })
    .await;
    let (status, html, _) = page(&ctl, &ann, "/clusters/shop").await;
    assert!(shown && status == 200, "{html}");
    assert!(
        html.contains("Topology") && html.contains("Rolling restart"),
        "{html}"
    );
    let csrf = csrf_of(&html);

    // Maintenance from the page: the same window the CLI shows.
    let to = act(&ctl, &ann, &csrf, &[("action", "maintenance_on")]).await;
    assert_eq!(to, "/clusters/shop");
    let (_, html, _) = page(&ctl, &ann, "/clusters/shop").await;
    assert!(html.contains("set from the web UI by ann"), "{html}");
    let detail = ctl.json(&["cluster", "show", "--name", "shop"]);
    assert!(
        detail.to_string().contains("set from the web UI by ann"),
        "{detail}"
    );
    act(&ctl, &ann, &csrf, &[("action", "maintenance_off")]).await;

    // A refused action comes back with the API's own reason, escaped.
    let to = act(&ctl, &ann, &csrf, &[("action", "switchover")]).await;
    assert!(to.starts_with("/clusters/shop?error="), "{to}");
    let (_, html, _) = page(&ctl, &ann, &to).await;
    assert!(
        html.contains("role=\"alert\"") && html.contains("replication"),
        "{html}"
    );
    let to = act(&ctl, &ann, &csrf, &[("action", "<script>")]).await;
    let (_, html, _) = page(&ctl, &ann, &to).await;
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("`<script>`"),
        "{html}"
    );

    // A job: its page follows it, and the CLI sees the same job, asked by ann.
    let to = act(&ctl, &ann, &csrf, &[("action", "backup")]).await;
    let id: i64 = to
        .strip_prefix("/jobs/")
        .expect("a job page")
        .parse()
        .unwrap();
    let (_, html, _) = page(&ctl, &ann, &to).await;
    assert!(
        html.contains(&format!("Job {id}: backup")) && html.contains("id=\"job-log\""),
        "{html}"
    );
    let job = ctl.json(&["job", "show", &id.to_string()]);
    assert_eq!(job["requested_by"], "ann", "{job}");
    // Its live stream carries its log and state.
    let mut r = browser()
        .get(format!("{}/ui/jobs/{id}/events", ctl.url))
        .header("cookie", &ann)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    let chunk = tokio::time::timeout(Duration::from_secs(30), r.chunk())
        .await
        .expect("an event within 30 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains("event: job") && text.contains("\"lines\""),
        "{text}"
    );
    // The states stream names the cluster and its node.
    let mut r = browser()
        .get(format!("{}/ui/stream", ctl.url))
        .header("cookie", &ann)
        .send()
        .await
        .unwrap();
    let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
        .await
        .expect("states within 10 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains("event: states") && text.contains("\"shop\""),
        "{text}"
    );
    // A second page open at once gets every state too, from the same shared feed.
    let mut second = browser()
        .get(format!("{}/ui/stream", ctl.url))
        .header("cookie", &ann)
        .send()
        .await
        .unwrap();
    let chunk = tokio::time::timeout(Duration::from_secs(10), second.chunk())
        .await
        .expect("states within 10 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains("event: states") && text.contains("\"shop\"") && text.contains(&addr),
        "{text}"
    );
    drop((r, second));

    // A failover needs the cluster's name typed; without it nothing is queued.
    let jobs_before = ctl.json(&["job", "list"]).as_array().unwrap().len();
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[("action", "failover"), ("confirm", "")],
    )
    .await;
    assert!(to.contains("error="), "{to}");
    assert_eq!(
        ctl.json(&["job", "list"]).as_array().unwrap().len(),
        jobs_before
    );

    // A viewer sees the page without actions, and a forged action is refused.
    let vic = session_cookie(&login(&ctl, "vic", PW).await).unwrap();
    let (_, html, _) = page(&ctl, &vic, "/clusters/shop").await;
    assert!(!html.contains("Rolling restart"), "{html}");
    let vcsrf = csrf_of(&html);
    let to = act(&ctl, &vic, &vcsrf, &[("action", "rolling_restart")]).await;
    assert!(to.contains("error=") && to.contains("viewer"), "{to}");
    assert_eq!(
        ctl.json(&["job", "list"]).as_array().unwrap().len(),
        jobs_before
    );
    // Another session's token does not work.
    let r = browser()
        .post(format!("{}/clusters/shop/actions", ctl.url))
        .header("cookie", &ann)
        .form(&[
            ("csrf_token", vcsrf.as_str()),
            ("action", "rolling_restart"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Every other page answers for the cluster, and shows what the API has.
    for (path, want) in [
        ("/clusters/shop/charts?since=15m", "<svg"),
        ("/clusters/shop/backups", "Restorable window"),
        ("/clusters/shop/advisors", "Check now"),
        ("/clusters/shop/failovers", "None in the last year"),
        ("/alarms?all=true", "Alarms"),
        ("/audit", "POST /clusters/{name}/actions"),
        ("/users", "vic"),
    ] {
        let (status, html, _) = page(&ctl, &ann, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.contains(want), "{path} lacks {want:?}: {html}");
    }
    let (_, html, _) = page(&ctl, &ann, "/clusters/shop/backups").await;
    let listed = ctl.json(&["backup", "list", "--cluster", "shop"]);
    let bid = listed[0]["id"]
        .as_i64()
        .expect("the backup the page asked for");
    assert!(
        html.contains(&format!("<td>{bid}</td>")) && html.contains(&addr),
        "{html}"
    );
    // A server without performance_schema: the page says so, as the API does.
    let (status, html, _) = page(&ctl, &ann, "/clusters/shop/queries").await;
    assert_eq!(status, 409);
    assert!(
        html.contains("performance_schema is off") && html.contains("Top queries"),
        "{html}"
    );
    let (_, html, _) = page(&ctl, &ann, "/clusters/nowhere/charts").await;
    assert!(html.contains("not found"), "{html}");
    // An operator sees users but cannot add one; an admin can, and gets a token once.
    let (_, html, _) = page(&ctl, &ann, "/users").await;
    assert!(!html.contains("Add a user"), "{html}");
    let r = browser()
        .post(format!("{}/users/add", ctl.url))
        .header("cookie", &ann)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "eve"),
            ("role", "admin"),
            ("password", PW),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error="));
    assert!(!ctl.json(&["user", "list"]).to_string().contains("\"eve\""));
    let out = ctl.cli(&[
        "user",
        "add",
        "ada",
        "--role",
        "admin",
        "--password-file",
        &pwf,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ada = session_cookie(&login(&ctl, "ada", PW).await).unwrap();
    let (_, html, _) = page(&ctl, &ada, "/users").await;
    let acsrf = csrf_of(&html);
    let r = browser()
        .post(format!("{}/users/add", ctl.url))
        .header("cookie", &ada)
        .form(&[
            ("csrf_token", acsrf.as_str()),
            ("name", "eve"),
            ("role", "viewer"),
            ("password", PW),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/users");
    assert!(ctl.json(&["user", "list"]).to_string().contains("\"eve\""));
    let r = browser()
        .post(format!("{}/users/token", ctl.url))
        .header("cookie", &ada)
        .form(&[
            ("csrf_token", acsrf.as_str()),
            ("user", "eve"),
            ("name", "grafana"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the token is shown in the answer, not a redirect"
    );
    let html = r.text().await.unwrap();
    let at = html.find("id=\"new-token\">").expect("the new token") + 15;
    let token = &html[at..at + 64];
    let (s, _) = call(&ctl, token, "GET", "/api/v1/clusters").await;
    assert_eq!(s, 200, "the token from the page works");

    // A backup schedule from the backups page; a bad cron expression comes back named.
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[
            ("action", "schedule_create"),
            ("cron", "0 3 * * *"),
            ("tz", "Europe/Berlin"),
            ("method", "full"),
            ("retention", "14d"),
        ],
    )
    .await;
    assert_eq!(to, "/clusters/shop/backups");
    let schedules = ctl.json(&["backup", "schedule", "list"]);
    assert_eq!(schedules[0]["tz"], "Europe/Berlin", "{schedules}");
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[("action", "schedule_create"), ("cron", "every day")],
    )
    .await;
    assert!(to.contains("error="), "{to}");
    let sid = schedules[0]["id"].as_i64().unwrap().to_string();
    act(
        &ctl,
        &ann,
        &csrf,
        &[("action", "schedule_delete"), ("schedule", sid.as_str())],
    )
    .await;
    assert!(
        ctl.json(&["backup", "schedule", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A repository from the backups page (a directory on the controller), then a backup
    // into it from the same page. A repository with no place is refused, the field named,
    // and nothing is added.
    let repo_path = ctl.data_dir().join("offsite").display().to_string();
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[
            ("action", "repo_add"),
            ("repo", "offsite"),
            ("path", repo_path.as_str()),
        ],
    )
    .await;
    assert!(to.starts_with("/clusters/shop/backups?done="), "{to}");
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[("action", "repo_add"), ("repo", "nowhere")],
    )
    .await;
    assert!(
        to.starts_with("/clusters/shop/backups?error=") && to.contains("path"),
        "{to}"
    );
    let repos = ctl.json(&["backup", "repo", "list"]).to_string();
    assert!(
        repos.contains("\"offsite\"") && !repos.contains("nowhere"),
        "{repos}"
    );
    let (_, html, _) = page(&ctl, &ann, "/clusters/shop/backups").await;
    assert!(
        html.contains("<option value=\"offsite\">") && html.contains(&repo_path),
        "{html}"
    );
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[
            ("action", "backup"),
            ("method", "logical"),
            ("repo", "offsite"),
        ],
    )
    .await;
    let job = to.strip_prefix("/jobs/").expect("a job page").to_string();
    let ended = common::wait_until(Duration::from_secs(120), || async {
        let j = ctl.json(&["job", "show", &job]);
        j["state"] != "queued" && j["state"] != "running"
    })
    .await;
    assert!(ended, "{}", ctl.json(&["job", "show", &job]));
    assert_eq!(ctl.json(&["job", "show", &job])["state"], "succeeded");
    let listed = ctl.json(&["backup", "list", "--cluster", "shop"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["repo"] == "offsite" && b["method"] == "logical"),
        "{listed}"
    );
    // The audit says what each form asked and how it ended: the job it started, or the
    // refusal the page showed.
    let audit = ctl.json(&["audit", "list"]);
    let line = |action: &str| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["action"] == format!("POST /clusters/{{name}}/actions: {action}"))
            .cloned()
            .unwrap_or_else(|| panic!("no audit line for {action}: {audit}"))
    };
    assert_eq!(
        line("backup method logical repo offsite")["outcome"],
        format!("303 See Other: job {job}")
    );
    let refused = line("repo_add repo nowhere");
    assert!(
        refused["outcome"]
            .as_str()
            .unwrap()
            .starts_with("303 See Other: refused: nothing was added: give a path"),
        "{refused}"
    );
    assert_eq!(refused["who"], "ann");

    // Silences from the alarms page: a kind silenced, listed, ended; a bad kind named.
    let post_alarm = |fields: Vec<(&'static str, String)>| {
        let url = format!("{}/alarms/silences", ctl.url);
        let ann = ann.clone();
        async move {
            let r = browser()
                .post(url)
                .header("cookie", &ann)
                .form(&fields)
                .send()
                .await
                .unwrap();
            r.headers()["location"].to_str().unwrap().to_string()
        }
    };
    let to = post_alarm(vec![
        ("csrf_token", csrf.clone()),
        ("kind", "node_down".into()),
        ("cluster", "shop".into()),
        ("duration", "2h".into()),
    ])
    .await;
    assert_eq!(to, "/alarms");
    let silences = ctl.json(&["alarm", "silences"]);
    assert_eq!(silences[0]["created_by"], "ann", "{silences}");
    let to = post_alarm(vec![
        ("csrf_token", csrf.clone()),
        ("kind", "node_dwn".into()),
        ("duration", "2h".into()),
    ])
    .await;
    assert!(to.contains("error=") && to.contains("node_down"), "{to}");
    let sid = silences[0]["id"].as_i64().unwrap().to_string();
    post_alarm(vec![("csrf_token", csrf.clone()), ("end", sid)]).await;
    assert!(
        ctl.json(&["alarm", "silences"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Everything done through the pages is in the audit log, as the UI's.
    let audit = ctl.json(&["audit", "list"]);
    assert!(
        audit.as_array().unwrap().iter().any(|l| l["who"] == "ann"
            && l["action"] == "POST /clusters/{name}/actions: maintenance_on"
            && l["via"] == "ui"),
        "{audit}"
    );
}

/// The role each operation of the API needs, one row per operation of the OpenAPI
/// document: a route added without its row here fails `every_route_has_its_role`.
const ROLES: &[(&str, &str, &str)] = &[
    ("get", "/api/openapi.json", "viewer"),
    ("get", "/api/v1/alarm-silences", "viewer"),
    ("post", "/api/v1/alarm-silences", "operator"),
    ("delete", "/api/v1/alarm-silences/{id}", "operator"),
    ("get", "/api/v1/alarms", "viewer"),
    ("post", "/api/v1/alarms/{id}/ack", "operator"),
    ("get", "/api/v1/audit", "viewer"),
    ("get", "/api/v1/backup-repos", "viewer"),
    ("post", "/api/v1/backup-repos", "operator"),
    ("get", "/api/v1/backup-schedules", "viewer"),
    ("delete", "/api/v1/backup-schedules/{id}", "operator"),
    ("get", "/api/v1/backups/{id}", "viewer"),
    ("post", "/api/v1/backups/{id}/restore", "operator"),
    ("post", "/api/v1/backups/{id}/verify", "operator"),
    ("get", "/api/v1/clusters", "viewer"),
    ("post", "/api/v1/clusters", "operator"),
    ("post", "/api/v1/clusters/import", "operator"),
    ("get", "/api/v1/clusters/{name}", "viewer"),
    ("delete", "/api/v1/clusters/{name}", "operator"),
    ("get", "/api/v1/clusters/{name}/advisor-rules", "viewer"),
    ("post", "/api/v1/clusters/{name}/advisor-rules", "operator"),
    (
        "delete",
        "/api/v1/clusters/{name}/advisor-rules/{rule}",
        "operator",
    ),
    ("get", "/api/v1/clusters/{name}/advisors", "viewer"),
    ("get", "/api/v1/clusters/{name}/advisors/history", "viewer"),
    ("post", "/api/v1/clusters/{name}/advisors/run", "operator"),
    (
        "post",
        "/api/v1/clusters/{name}/backup-schedules",
        "operator",
    ),
    ("get", "/api/v1/clusters/{name}/backup-window", "viewer"),
    ("get", "/api/v1/clusters/{name}/backups", "viewer"),
    ("post", "/api/v1/clusters/{name}/backups", "operator"),
    ("post", "/api/v1/clusters/{name}/failover", "operator"),
    ("get", "/api/v1/clusters/{name}/failovers", "viewer"),
    (
        "post",
        "/api/v1/clusters/{name}/failovers/acknowledge",
        "operator",
    ),
    ("get", "/api/v1/clusters/{name}/ha-policy", "viewer"),
    ("put", "/api/v1/clusters/{name}/ha-policy", "operator"),
    ("delete", "/api/v1/clusters/{name}/ha-policy", "operator"),
    ("get", "/api/v1/clusters/{name}/load-balancers", "viewer"),
    ("post", "/api/v1/clusters/{name}/load-balancers", "operator"),
    (
        "put",
        "/api/v1/clusters/{name}/load-balancers/{host}",
        "operator",
    ),
    (
        "delete",
        "/api/v1/clusters/{name}/load-balancers/{host}",
        "operator",
    ),
    (
        "post",
        "/api/v1/clusters/{name}/load-balancers/{host}/restart",
        "operator",
    ),
    ("put", "/api/v1/clusters/{name}/maintenance", "operator"),
    ("delete", "/api/v1/clusters/{name}/maintenance", "operator"),
    ("get", "/api/v1/clusters/{name}/metrics", "viewer"),
    ("post", "/api/v1/clusters/{name}/nodes", "operator"),
    (
        "delete",
        "/api/v1/clusters/{name}/nodes/{address}",
        "operator",
    ),
    (
        "get",
        "/api/v1/clusters/{name}/nodes/{address}/metrics",
        "viewer",
    ),
    (
        "post",
        "/api/v1/clusters/{name}/nodes/{address}/rejoin",
        "operator",
    ),
    (
        "post",
        "/api/v1/clusters/{name}/nodes/{address}/restart",
        "operator",
    ),
    (
        "post",
        "/api/v1/clusters/{name}/nodes/{address}/start",
        "operator",
    ),
    (
        "post",
        "/api/v1/clusters/{name}/nodes/{address}/stop",
        "operator",
    ),
    ("get", "/api/v1/clusters/{name}/queries/top", "viewer"),
    ("post", "/api/v1/clusters/{name}/recover", "operator"),
    ("put", "/api/v1/clusters/{name}/recovery", "operator"),
    (
        "post",
        "/api/v1/clusters/{name}/rolling-restart",
        "operator",
    ),
    ("post", "/api/v1/clusters/{name}/start", "operator"),
    ("post", "/api/v1/clusters/{name}/stop", "operator"),
    ("post", "/api/v1/clusters/{name}/switchover", "operator"),
    ("get", "/api/v1/events", "viewer"),
    ("get", "/api/v1/jobs", "viewer"),
    ("get", "/api/v1/jobs/{id}", "viewer"),
    ("post", "/api/v1/jobs/{id}/cancel", "operator"),
    ("get", "/api/v1/jobs/{id}/logs", "viewer"),
    ("get", "/api/v1/nodes", "viewer"),
    ("get", "/api/v1/notify-channels", "viewer"),
    ("post", "/api/v1/notify-channels", "operator"),
    ("delete", "/api/v1/notify-channels/{name}", "operator"),
    ("get", "/api/v1/notify-channels/{name}/deliveries", "viewer"),
    ("post", "/api/v1/notify-channels/{name}/test", "operator"),
    ("get", "/api/v1/tokens", "viewer"),
    ("post", "/api/v1/tokens", "admin"),
    ("delete", "/api/v1/tokens/{id}", "admin"),
    ("get", "/api/v1/users", "viewer"),
    ("post", "/api/v1/users", "admin"),
    ("delete", "/api/v1/users/{name}", "admin"),
    ("put", "/api/v1/users/{name}/password", "admin"),
    ("get", "/metrics", "viewer"),
];

/// The role an operation needs, from its row; None when it has none.
fn needed(method: &str, path: &str) -> Option<&'static str> {
    ROLES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|r| r.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_has_its_role() {
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), PW).display().to_string();
    for (name, role) in [("vic", "viewer"), ("ann", "operator"), ("ada", "admin")] {
        let out = ctl.cli(&["user", "add", name, "--role", role, "--password-file", &pw]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let tokens: std::collections::HashMap<&str, String> = [
        ("viewer", token_of(&ctl, "vic", "t")),
        ("operator", token_of(&ctl, "ann", "t")),
        ("admin", token_of(&ctl, "ada", "t")),
    ]
    .into_iter()
    .collect();
    let order = ["viewer", "operator", "admin"];
    let (_, doc) = ctl.get("/api/openapi.json").await;
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete"].contains(&method.as_str()) {
                continue;
            }
            seen += 1;
            let concrete = path
                .replace("{name}", "nowhere")
                .replace("{id}", "999")
                .replace("{host}", "127.0.0.9")
                .replace("{address}", "127.0.0.9:3306")
                .replace("{node}", "127.0.0.9:3306")
                .replace("{rule}", "r1");
            let need = needed(method, path).unwrap_or_else(|| {
                panic!("{method} {path} has no row in ROLES: say which role it needs")
            });
            let rank = order.iter().position(|r| *r == need).unwrap();
            for (i, role) in order.iter().enumerate() {
                let (s, body) = call(&ctl, &tokens[role], &method.to_uppercase(), &concrete).await;
                if i < rank {
                    assert_eq!(s, 403, "{method} {path} as {role} (needs {need}): {body}");
                } else {
                    assert_ne!(s, 403, "{method} {path} as {role} (needs {need}): {body}");
                    assert_ne!(s, 401, "{method} {path} as {role}: {body}");
                }
            }
        }
    }
    assert!(seen >= 60, "only {seen} operations in the document");
    // Every row of the table names a real operation (no stale rows).
    for (m, p, _) in ROLES {
        assert!(
            doc["paths"][*p][*m].is_object(),
            "the table names {m} {p}, which the API does not have"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_session_ends_after_the_idle_time() {
    let ctl = Controller::start_with(&["--session-idle", "2s"]).await;
    let pwf = password_file(ctl.data_dir(), PW).display().to_string();
    let out = ctl.cli(&[
        "user",
        "add",
        "ann",
        "--role",
        "viewer",
        "--password-file",
        &pwf,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cookie = session_cookie(&login(&ctl, "ann", PW).await).unwrap();
    // In use, it stays beyond the idle time (every request renews it).
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let (status, _, _) = page(&ctl, &cookie, "/").await;
        assert_eq!(status, 200, "a session in use ended");
    }
    // Left alone, it ends. Each request would renew it, so nothing polls: the condition
    // is the idle time itself, passed once (3 s for a 2 s limit).
    let last_use = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(last_use.elapsed() >= Duration::from_secs(3));
    let (status, _, to) = page(&ctl, &cookie, "/alarms").await;
    assert_eq!((status, to.as_deref()), (303, Some("/login?next=/alarms")));
    let r = browser()
        .get(format!("{}/api/v1/clusters", ctl.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_come_in_through_the_forms_and_bad_values_come_back_named() {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    let ctl = Controller::start().await;
    let pwf = password_file(ctl.data_dir(), PW).display().to_string();
    let out = ctl.cli(&[
        "user",
        "add",
        "ann",
        "--role",
        "operator",
        "--password-file",
        &pwf,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ann = session_cookie(&login(&ctl, "ann", PW).await).unwrap();
    let (_, html, _) = page(&ctl, &ann, "/clusters/new").await;
    assert!(html.contains("Import an existing cluster"), "{html}");
    let csrf = csrf_of(&html);
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let url = format!("{}{path}", ctl.url);
        let ann = ann.clone();
        async move {
            let r = browser()
                .post(url)
                .header("cookie", &ann)
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            r.headers()["location"].to_str().unwrap().to_string()
        }
    };
    // A seed that is no address: back to the form with the field named, nothing queued.
    let to = post(
        "/clusters/new/import",
        vec![
            ("csrf_token", csrf.clone()),
            ("name", "legacy".into()),
            ("seed", "..".into()),
            ("db_user", server.user().into()),
            ("db_password", server.password().into()),
            ("access", "local".into()),
        ],
    )
    .await;
    assert!(
        to.starts_with("/clusters/new?error=") && to.contains("seed"),
        "{to}"
    );
    assert!(ctl.json(&["job", "list"]).as_array().unwrap().is_empty());
    // The real seed: an import job, followed on its page, and the cluster is there.
    let to = post(
        "/clusters/new/import",
        vec![
            ("csrf_token", csrf.clone()),
            ("name", "legacy".into()),
            ("seed", server.endpoint()),
            ("db_user", server.user().into()),
            ("db_password", server.password().into()),
            ("access", "local".into()),
        ],
    )
    .await;
    let id = to.strip_prefix("/jobs/").expect("a job page");
    let done = wait_until(Duration::from_secs(30), || async {
        ctl.json(&["job", "show", id])["state"] == "succeeded"
    })
    .await;
    assert!(done, "{}", ctl.json(&["job", "show", id]));
    assert_eq!(ctl.json(&["job", "show", id])["requested_by"], "ann");
    let (_, html, _) = page(&ctl, &ann, "/").await;
    assert!(html.contains(">legacy</a>"), "{html}");
    // The password typed in the form reached no log and no answer.
    assert!(!ctl.log().contains(server.password()));
    // A node removal needs its address typed; a load balancer on `..` is refused, named.
    let node = server.endpoint();
    let to = post(
        "/clusters/legacy/members",
        vec![
            ("csrf_token", csrf.clone()),
            ("op", "node_remove".into()),
            ("node", node.clone()),
            ("confirm", "yes".into()),
        ],
    )
    .await;
    assert!(to.contains("error="), "{to}");
    let to = post(
        "/clusters/legacy/members",
        vec![
            ("csrf_token", csrf.clone()),
            ("op", "lb_add".into()),
            ("host", "..".into()),
            ("access", "local".into()),
        ],
    )
    .await;
    assert!(to.contains("error="), "{to}");
    let (_, html, _) = page(&ctl, &ann, &to).await;
    assert!(html.contains("role=\"alert\""), "{html}");
    assert_eq!(ctl.json(&["job", "list"]).as_array().unwrap().len(), 1);
}

/// POSTs a form to `path` with the session's cookie; the redirect's target.
async fn post_form(ctl: &Controller, cookie: &str, path: &str, form: &[(&str, &str)]) -> String {
    let r = browser()
        .post(format!("{}{path}", ctl.url))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{path} {form:?}");
    r.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_rules_channels_passwords_and_deletion_are_managed_from_the_pages() {
    let (_server, ctl, _) = shop_with_ann_and_vic().await;
    let ann = session_cookie(&login(&ctl, "ann", PW).await).unwrap();
    let vic = session_cookie(&login(&ctl, "vic", PW).await).unwrap();
    let (status, html, _) = page(&ctl, &ann, "/clusters/shop/settings").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("name=\"failover_block_window\" value=\"5m\"")
            && html.contains("controller default"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let (_, vhtml, _) = page(&ctl, &vic, "/clusters/shop/settings").await;
    let vcsrf = csrf_of(&vhtml);
    assert!(!vhtml.contains("Save the policy"), "{vhtml}");

    // The HA policy from the page: every setting posted back, one changed; the CLI sees it.
    let policy_form = |html: &str| -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(at) = rest.find("<input id=\"p-") {
            rest = &rest[at..];
            let name = rest
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = rest
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            out.push((name.to_string(), value.to_string()));
            rest = &rest[1..];
        }
        out
    };
    let mut fields = policy_form(&html);
    assert!(fields.len() >= 10, "{fields:?}");
    for (k, v) in fields.iter_mut() {
        if k == "failover_block_window" {
            *v = "10m".into();
        }
    }
    let send = |fields: Vec<(String, String)>, cookie: String, token: String| {
        let url = format!("{}/clusters/shop/policy", ctl.url);
        async move {
            let mut form = vec![("csrf_token".to_string(), token)];
            form.extend(fields);
            let r = browser()
                .post(url)
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            r.headers()["location"].to_str().unwrap().to_string()
        }
    };
    let to = send(fields.clone(), ann.clone(), csrf.clone()).await;
    assert!(to.contains("saved="), "{to}");
    let (_, shown, _) = page(&ctl, &ann, &to).await;
    assert!(shown.contains("failover_block_window: 5m → 10m"), "{shown}");
    let p = ctl.json(&["cluster", "ha-policy", "--name", "shop"]);
    assert_eq!(p["policy"]["failover_block_window"], 600_000, "{p}");
    assert_eq!(p["source"], "cluster", "{p}");
    let events = ctl.json(&["events", "--cluster", "shop"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "ha_policy" && e["message"].as_str().unwrap().contains("ann")),
        "{events}"
    );
    // A bad value is named and nothing is saved; a viewer changes nothing.
    let bad: Vec<(String, String)> = vec![
        ("failover_block_window".into(), "20m".into()),
        ("daily_failover_budget".into(), "three".into()),
    ];
    let to = send(bad.clone(), ann.clone(), csrf.clone()).await;
    assert!(
        to.contains("error=") && to.contains("daily_failover_budget"),
        "{to}"
    );
    let to = send(bad, vic.clone(), vcsrf.clone()).await;
    assert!(to.contains("viewer"), "{to}");
    let p = ctl.json(&["cluster", "ha-policy", "--name", "shop"]);
    assert_eq!(p["policy"]["failover_block_window"], 600_000, "{p}");
    // Back to the default.
    let to = send(
        vec![("reset".into(), "1".into())],
        ann.clone(),
        csrf.clone(),
    )
    .await;
    assert!(to.contains("saved="), "{to}");
    let p = ctl.json(&["cluster", "ha-policy", "--name", "shop"]);
    assert_eq!(p["source"], "controller default", "{p}");

    // A user advisor rule added and deleted from the advisors page; a bad threshold named.
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[
            ("action", "rule_add"),
            ("rule", "threads"),
            ("sql", "SELECT COUNT(*) FROM information_schema.PROCESSLIST"),
            ("warning", "ten"),
            ("message", "{value} threads"),
        ],
    )
    .await;
    assert!(to.contains("error=") && to.contains("warning"), "{to}");
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[
            ("action", "rule_add"),
            ("rule", "threads"),
            ("sql", "SELECT COUNT(*) FROM information_schema.PROCESSLIST"),
            ("warning", "1000"),
            ("critical", "2000"),
            ("message", "{value} threads"),
            ("every", "30s"),
            ("nodes", "all"),
        ],
    )
    .await;
    assert_eq!(to, "/clusters/shop/advisors");
    let rules = ctl.json(&["advisor", "rule", "list", "--cluster", "shop"]);
    assert_eq!(rules[0]["name"], "threads", "{rules}");
    assert_eq!(rules[0]["every_seconds"], 30, "{rules}");
    let (_, html, _) = page(&ctl, &ann, "/clusters/shop/advisors").await;
    assert!(html.contains("information_schema.PROCESSLIST"), "{html}");
    act(
        &ctl,
        &ann,
        &csrf,
        &[("action", "rule_delete"), ("rule", "threads")],
    )
    .await;
    let rules = ctl.json(&["advisor", "rule", "list", "--cluster", "shop"]);
    assert!(rules.as_array().unwrap().is_empty(), "{rules}");

    // A notification channel added and deleted from the alarms page; its HMAC key is
    // never shown back.
    let to = post_form(
        &ctl,
        &ann,
        "/alarms/channels",
        &[
            ("csrf_token", &csrf),
            ("name", "oncall"),
            ("kind", "webhook"),
            ("target", "http://127.0.0.1:9/hook"),
            ("hmac_key", "sekrit-hmac-key-123"),
            ("min_severity", "critical"),
        ],
    )
    .await;
    assert_eq!(to, "/alarms");
    let channels = ctl.json(&["notify", "list"]);
    assert_eq!(channels[0]["name"], "oncall", "{channels}");
    assert_eq!(channels[0]["min_severity"], "critical", "{channels}");
    let (_, html, _) = page(&ctl, &ann, "/alarms").await;
    assert!(
        html.contains("oncall") && !html.contains("sekrit-hmac-key-123"),
        "{html}"
    );
    let to = post_form(
        &ctl,
        &ann,
        "/alarms/channels",
        &[
            ("csrf_token", &csrf),
            ("name", "bad"),
            ("kind", "webhook"),
            ("target", "ftp://x"),
        ],
    )
    .await;
    assert!(to.contains("error="), "{to}");
    post_form(
        &ctl,
        &ann,
        "/alarms/channels",
        &[("csrf_token", &csrf), ("delete", "oncall")],
    )
    .await;
    assert!(ctl.json(&["notify", "list"]).as_array().unwrap().is_empty());

    // Passwords: a viewer changes their own, not another's.
    let new_pw = "another-long-password";
    let to = post_form(
        &ctl,
        &vic,
        "/users/password",
        &[
            ("csrf_token", &vcsrf),
            ("name", "ann"),
            ("password", new_pw),
        ],
    )
    .await;
    assert!(to.contains("error="), "{to}");
    let to = post_form(
        &ctl,
        &vic,
        "/users/password",
        &[
            ("csrf_token", &vcsrf),
            ("name", "vic"),
            ("password", new_pw),
        ],
    )
    .await;
    // Their sessions ended with the old password: back to the login page.
    assert_eq!(to, "/login");
    let (_, _, gone) = page(&ctl, &vic, "/users").await;
    assert!(gone.is_some_and(|l| l.starts_with("/login")));
    let vic = session_cookie(&login(&ctl, "vic", new_pw).await).expect("the new password");
    let (_, vhtml, _) = page(&ctl, &vic, "/users").await;
    let vcsrf = csrf_of(&vhtml);
    assert!(session_cookie(&login(&ctl, "ann", new_pw).await).is_none());

    // Actions the cluster cannot take come back with the API's reason, naming what is
    // wrong: no load balancer on that host; Galera recovery of a standalone server; a
    // forced recovery without the name typed.
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[("action", "lb_restart"), ("host", "127.0.0.9")],
    )
    .await;
    let (_, html, _) = page(&ctl, &ann, &to).await;
    assert!(html.contains("127.0.0.9"), "{html}");
    let to = act(&ctl, &ann, &csrf, &[("action", "recover")]).await;
    let (_, html, _) = page(&ctl, &ann, &to).await;
    assert!(
        html.contains("role=\"alert\"") && html.contains("Galera"),
        "{html}"
    );
    let to = act(&ctl, &ann, &csrf, &[("action", "recover"), ("force", "on")]).await;
    assert!(to.contains("cluster%27s%20name%20to%20confirm"), "{to}");

    // A job cancelled from its page (a viewer may not); the cluster deleted with its name
    // typed, not without.
    let to = act(&ctl, &ann, &csrf, &[("action", "backup")]).await;
    let id = to.strip_prefix("/jobs/").expect("a job page").to_string();
    let r = browser()
        .post(format!("{}/jobs/{id}/cancel", ctl.url))
        .header("cookie", &vic)
        .form(&[("csrf_token", vcsrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("viewer"));
    let to = post_form(
        &ctl,
        &ann,
        &format!("/jobs/{id}/cancel"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(to, format!("/jobs/{id}"));
    let ended = wait_until(Duration::from_secs(60), || async {
        let j = ctl.json(&["job", "show", &id]);
        j["state"] == "cancelled" || j["state"] == "succeeded"
    })
    .await;
    assert!(ended, "{}", ctl.json(&["job", "show", &id]));
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[("action", "delete"), ("confirm", "sho")],
    )
    .await;
    assert!(to.contains("error="), "{to}");
    assert_eq!(ctl.json(&["cluster", "list"]).as_array().unwrap().len(), 1);
    let to = act(
        &ctl,
        &ann,
        &csrf,
        &[("action", "delete"), ("confirm", "shop")],
    )
    .await;
    assert!(to.starts_with("/jobs/"), "{to}");
    let gone = wait_until(Duration::from_secs(60), || async {
        ctl.json(&["cluster", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
    assert!(gone, "{}", ctl.json(&["cluster", "list"]));
}
