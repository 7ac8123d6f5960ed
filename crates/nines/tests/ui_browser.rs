//! The web UI in a real headless Chromium (the system's chromedriver, driven over W3C
//! WebDriver): sign in through the form, the overview and its filter, a cluster's page
//! updated live by server-sent events when its server is killed, an action with its
//! confirmation, and the phone-sized layout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Controller, password_file, stderr, stdout};
use fantoccini::{Client, ClientBuilder, Locator};
use nines_testkit::{Chromedriver, MariaDbServer};

const PW: &str = "a-long-enough-password";

async fn browser(driver: &Chromedriver, width: u32, height: u32) -> Client {
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(Chromedriver::capabilities(width, height))
        .connect(&driver.url())
        .await
        .expect("a Chromium session")
}

/// Polls `f` every 200 ms for up to `within`.
async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_watches_a_node_die_live_and_acts_from_the_page() {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    // Automatic recovery would restart the killed server before the page could show it
    // offline for long; the page shows what is, either way.
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
    let out = ctl.cli(&["cluster", "recovery", "disable", "--name", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
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

    let driver = Chromedriver::start().await.expect("chromedriver");
    let c = browser(&driver, 1280, 900).await;

    // The overview needs a session: the browser lands on the sign-in form.
    c.goto(&format!("{}/", ctl.url)).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    fill_login(&c, "ann", PW).await;
    let healthy = eventually(Duration::from_secs(20), || async {
        c.refresh().await.ok();
        text(&c, "td[data-cluster-state=shop]")
            .await
            .contains("healthy")
    })
    .await;
    assert!(healthy, "{}", c.source().await.unwrap_or_default());
    assert!(text(&c, "header .who").await.contains("ann (operator)"));
    // The page says it is live (the stream's events arrive).
    let live = eventually(Duration::from_secs(10), || async {
        text(&c, "#updated").await.starts_with("live, updated")
    })
    .await;
    assert!(live, "{}", text(&c, "#updated").await);

    // The name filter hides rows as one types (the page's own script).
    let filter = c.find(Locator::Css("input[name=q]")).await.unwrap();
    filter.send_keys("zzz").await.unwrap();
    let row = c.find(Locator::Css("tr[data-name=shop]")).await.unwrap();
    assert!(!row.is_displayed().await.unwrap(), "the row is still shown");
    filter.clear().await.unwrap();
    filter.send_keys("sh").await.unwrap();
    assert!(row.is_displayed().await.unwrap());

    // The cluster's page; the server dies; the page says so without a reload.
    c.find(Locator::LinkText("shop"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let card = format!(
        "article.node[data-address=\"{}\"] [data-node-state]",
        server.endpoint()
    );
    let shown = eventually(Duration::from_secs(10), || async {
        text(&c, &card).await.contains("online")
    })
    .await;
    assert!(shown, "{}", c.source().await.unwrap());
    server.kill_9().unwrap();
    let killed = tokio::time::Instant::now();
    let live = eventually(Duration::from_secs(15), || async {
        text(&c, &card).await.contains("offline")
    })
    .await;
    assert!(
        live,
        "the page still says online: {}",
        text(&c, &card).await
    );
    eprintln!(
        "the page showed the killed server offline {:?} after the kill, without a reload",
        killed.elapsed()
    );
    let failed = eventually(Duration::from_secs(15), || async {
        text(&c, "h1 [data-cluster-state=shop]")
            .await
            .contains("failed")
    })
    .await;
    assert!(failed, "{}", text(&c, "h1").await);

    // An action with a confirmation: dismissed, nothing happens; accepted, it runs.
    let jobs_before = ctl.json(&["job", "list"]).as_array().unwrap().len();
    let rolling = c
        .find(Locator::XPath("//button[text()='Rolling restart']"))
        .await
        .unwrap();
    rolling.click().await.unwrap();
    c.dismiss_alert().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ctl.json(&["job", "list"]).as_array().unwrap().len(),
        jobs_before
    );
    c.find(Locator::XPath("//button[text()='Maintenance (1 h)']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let noted = eventually(Duration::from_secs(10), || async {
        text(&c, "p.notice")
            .await
            .contains("set from the web UI by ann")
    })
    .await;
    assert!(noted, "{}", c.source().await.unwrap());
    let shown = ctl.json(&["cluster", "show", "--name", "shop"]);
    assert!(shown.to_string().contains("set from the web UI by ann"));
    c.close().await.unwrap();

    // On a phone-sized screen the list stacks and nothing is wider than the screen.
    let phone = browser(&driver, 390, 844).await;
    sign_in(&phone, &ctl.url, "ann", PW).await;
    phone
        .goto(&format!("{}/clusters/shop", ctl.url))
        .await
        .unwrap();
    assert!(
        phone
            .find(Locator::Css(".topology[data-cluster=shop]"))
            .await
            .is_ok(),
        "{}",
        phone.source().await.unwrap()
    );
    let widths = phone
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(
        scroll <= inner,
        "the page is {scroll}px wide on a {inner}px screen"
    );
    phone.close().await.unwrap();
}

/// Where the browser tests leave their screenshots (test artefacts, not committed).
fn shots_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn sign_in(c: &Client, url: &str, user: &str, pw: &str) {
    c.goto(&format!("{url}/login")).await.unwrap();
    fill_login(c, user, pw).await;
}

/// Fills and sends the sign-in form the browser shows, and waits until it is signed in.
async fn fill_login(c: &Client, user: &str, pw: &str) {
    for (field, value) in [("username", user), ("password", pw)] {
        c.find(Locator::Css(&format!("input[name={field}]")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_signed_in(c, user).await;
}

/// Signed in once the page that follows the login shows who is: the next navigation
/// must not race the login's answer (it would cancel it, and the browser stay signed out).
async fn wait_signed_in(c: &Client, user: &str) {
    let signed_in = eventually(Duration::from_secs(10), || async {
        text(c, "header.top .who span").await.starts_with(user)
    })
    .await;
    assert!(signed_in, "{}", c.source().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_from_the_page_redraws_the_topology_live_and_a_viewer_is_refused() {
    let leases = nines_testkit::lease_addresses(2).expect("leases");
    let nodes: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let ctl = Controller::start().await;
    let dir = common::DeployDir::new();
    let out = common::create_cluster(
        &ctl,
        "web",
        "replication",
        &nodes.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(common::wait_failover_armed(&ctl, "web").await);
    let pwf = password_file(ctl.data_dir(), PW).display().to_string();
    for (n, r) in [("ann", "operator"), ("vic", "viewer")] {
        let out = ctl.cli(&["user", "add", n, "--role", r, "--password-file", &pwf]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (p, r) = (format!("{}:3306", nodes[0]), format!("{}:3306", nodes[1]));
    let driver = Chromedriver::start().await.expect("chromedriver");
    let c = browser(&driver, 1280, 1000).await;
    sign_in(&c, &ctl.url, "ann", PW).await;
    shot(&c, "overview").await;
    c.goto(&format!("{}/clusters/web", ctl.url)).await.unwrap();
    let primary_box = |addr: &str| format!(".topology .box.primary[data-address=\"{addr}\"]");
    assert!(
        c.find(Locator::Css(&primary_box(&p))).await.is_ok(),
        "{}",
        c.source().await.unwrap()
    );
    shot(&c, "cluster").await;

    // The switchover, confirmed in the dialog; its job page follows it to the end.
    c.find(Locator::XPath("//button[text()='Switchover']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert().await.unwrap();
    let ended = eventually(Duration::from_secs(60), || async {
        text(&c, "#job-state").await == "succeeded"
    })
    .await;
    shot(&c, "job").await;
    assert!(ended, "{}", text(&c, "#job-log").await);
    assert!(
        text(&c, "#job-log").await.contains("switchover"),
        "{}",
        text(&c, "#job-log").await
    );

    // A page opened before the roles change redraws its topology when the stream reports
    // them: a second switchover (back to the first node) while the page stays open.
    c.goto(&format!("{}/clusters/web", ctl.url)).await.unwrap();
    let drawn = eventually(Duration::from_secs(20), || async {
        c.refresh().await.ok();
        c.find(Locator::Css(&primary_box(&r))).await.is_ok()
    })
    .await;
    assert!(drawn, "{}", c.source().await.unwrap());
    // A switchover needs semi-sync active on the primary (the cluster's policy): the new
    // primary has it once its replica has reconnected and acknowledges, a moment after
    // the first switchover ended.
    let metric = format!("nines_node_semi_sync_primary_active{{cluster=\"web\",node=\"{r}\"}} 1");
    assert!(
        common::wait_until(Duration::from_secs(20), || async {
            ctl.get_text("/metrics").await.contains(&metric)
        })
        .await,
        "{metric} missing"
    );
    let out = ctl.cli(&["cluster", "switchover", "--name", "web", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let moved = eventually(Duration::from_secs(20), || async {
        c.find(Locator::Css(&primary_box(&p))).await.is_ok()
    })
    .await;
    assert!(
        moved,
        "the drawing did not follow: {}",
        c.source().await.unwrap()
    );
    shot(&c, "cluster-after-switchover").await;

    // An alarm, raised while the page is open (the replica killed, nines told not to
    // restart it), acknowledged there.
    let out = ctl.cli(&["cluster", "recovery", "disable", "--name", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    c.goto(&format!("{}/clusters/web", ctl.url)).await.unwrap();
    // (The second switchover made the first node primary again: the second is the replica.)
    common::kill_9_node(&dir, &nodes[1]);
    let raised = eventually(Duration::from_secs(30), || async {
        c.refresh().await.ok();
        c.find(Locator::XPath("//button[text()='Acknowledge']"))
            .await
            .is_ok()
    })
    .await;
    assert!(raised, "{}", c.source().await.unwrap());
    shot(&c, "alarm").await;
    c.find(Locator::XPath("//button[text()='Acknowledge']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let acked = eventually(Duration::from_secs(10), || async {
        ctl.json(&["alarm", "list", "--cluster", "web"])
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["acknowledged_by"] == "ann")
    })
    .await;
    assert!(
        acked,
        "{}",
        ctl.json(&["alarm", "list", "--cluster", "web"])
    );
    for page in [
        "charts",
        "backups",
        "advisors",
        "queries",
        "failovers",
        "settings",
    ] {
        c.goto(&format!("{}/clusters/web/{page}", ctl.url))
            .await
            .unwrap();
        shot(&c, page).await;
    }
    for page in ["alarms", "audit", "users"] {
        c.goto(&format!("{}/{page}", ctl.url)).await.unwrap();
        shot(&c, page).await;
    }
    // Times are shown in the browser's zone; the header's switch goes back to UTC, as
    // each time's title says it.
    assert_eq!(text(&c, "#tz-toggle").await, "times: local");
    c.find(Locator::Css("#tz-toggle"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text(&c, "#tz-toggle").await, "times: UTC");
    let first = c.find(Locator::Css("time[datetime]")).await.unwrap();
    let shown = first.text().await.unwrap();
    assert_eq!(
        Some(shown.clone()),
        first.attr("title").await.unwrap(),
        "{shown}"
    );
    assert!(shown.ends_with(" UTC"), "{shown}");
    c.close().await.unwrap();

    // A viewer: the page has no actions; an action posted anyway is refused, named.
    let v = browser(&driver, 1280, 900).await;
    sign_in(&v, &ctl.url, "vic", PW).await;
    v.goto(&format!("{}/clusters/web", ctl.url)).await.unwrap();
    assert!(
        v.find(Locator::Css(".topology[data-cluster=\"web\"]"))
            .await
            .is_ok(),
        "{}",
        v.source().await.unwrap()
    );
    assert!(
        v.find(Locator::XPath("//button[text()='Switchover']"))
            .await
            .is_err()
    );
    let jobs = ctl.json(&["job", "list"]).as_array().unwrap().len();
    v.execute(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/clusters/web/actions';
         for (const [k, val] of [['csrf_token', document.querySelector('input[name=csrf_token]').value], ['action', 'switchover']]) {
           const i = document.createElement('input'); i.name = k; i.value = val; f.append(i); }
         document.body.append(f); f.submit();",
        vec![],
    )
    .await
    .unwrap();
    let refused = eventually(Duration::from_secs(10), || async {
        text(&v, "p.error").await.contains("viewer")
    })
    .await;
    shot(&v, "viewer-refused").await;
    assert!(refused, "{}", v.source().await.unwrap());
    assert_eq!(ctl.json(&["job", "list"]).as_array().unwrap().len(), jobs);
    v.close().await.unwrap();
    drop(leases);
}
