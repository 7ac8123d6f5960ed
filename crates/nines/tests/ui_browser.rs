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
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("ann")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PW)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let healthy = eventually(Duration::from_secs(20), || async {
        c.refresh().await.ok();
        text(&c, "td[data-cluster-state=shop]")
            .await
            .contains("healthy")
    })
    .await;
    assert!(healthy, "{}", c.source().await.unwrap_or_default());
    assert!(text(&c, "header .who").await.contains("ann (operator)"));

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
    assert!(
        text(&c, &card).await.contains("online"),
        "{}",
        c.source().await.unwrap()
    );
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
    phone.goto(&format!("{}/login", ctl.url)).await.unwrap();
    phone
        .find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("ann")
        .await
        .unwrap();
    phone
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PW)
        .await
        .unwrap();
    phone
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    phone
        .goto(&format!("{}/clusters/shop", ctl.url))
        .await
        .unwrap();
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
