//! The web page of `dht serve` in a real browser: Debian's headless
//! Chromium driven over WebDriver (chromedriver, through fantoccini). Each
//! test signs in with tokens `dht user add` printed, acts on the page as a
//! person would, checks what is drawn against what the command line says,
//! and saves a screenshot under the test target directory
//! (`CARGO_TARGET_TMPDIR/screenshots`).
//!
//! Without chromium and chromedriver the tests say SKIPPED and pass, unless
//! `CI` is set (`.ci/run` installs both), where a missing browser fails.

mod browser;
#[path = "../common/served.rs"]
mod served;

use browser::Browser;
use serde_json::Value;
use served::{Ring, Served, ok as dht};
use std::path::Path;

/// A ring of 32 nodes holding the items, and a token per role.
fn ring() -> Ring {
    served::ring(Some(32))
}

/// `dht serve` on `bind`.
fn serve(state: &Path, bind: &str) -> Served {
    served::serve(state, &["--bind", bind])
}

/// The arrows a lookup draws: node to node along its path, then dashed
/// from the key's predecessor to its successor.
fn expected_hops(report: &Value) -> Vec<(String, String)> {
    let names: Vec<String> = report["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect();
    let mut hops: Vec<(String, String)> = names
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    let succ = report["successor"]["name"].as_str().unwrap();
    let last = names.last().unwrap();
    if last != succ {
        hops.push((last.clone(), succ.to_owned()));
    }
    hops
}

/// Looks `key` up on the page and waits until its path is drawn: the
/// arrows, as (from, to) node names.
async fn look_up(page: &browser::Page, key: &str) -> Vec<(String, String)> {
    page.type_into("#lookup-key", key).await;
    page.click("#lookup-form button").await;
    page.wait_for("#lookup[data-done=\"true\"]").await;
    serde_json::from_value(
        page.eval(
            "return [...document.querySelectorAll('#lookup line.hop')].map(l => [l.dataset.from, l.dataset.to])",
        )
        .await,
    )
    .unwrap()
}

/// A start node and key whose lookup takes at least two hops, found with
/// the command line (which the page must then agree with).
fn long_lookup(state: &Path) -> (String, String, Value) {
    let ring: Value = serde_json::from_str(&dht(state, &["ring", "--json"])).unwrap();
    let from = ring[0]["node"].as_str().unwrap().to_owned();
    let csv = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/items.csv"))
        .unwrap();
    for line in csv.lines().skip(1) {
        let key = line.split(',').next().unwrap();
        let got: Value =
            serde_json::from_str(&dht(state, &["get", key, "--from", &from, "--json"])).unwrap();
        if got["hops"].as_u64().unwrap() >= 2 {
            return (from, key.to_owned(), got);
        }
    }
    panic!("no lookup from {from} takes two hops");
}

#[tokio::test]
async fn a_lookup_is_drawn_through_the_nodes_it_asked() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let ring = ring();
    let (from, key, cli) = long_lookup(&ring.state);
    let served = serve(&ring.state, "127.0.0.1:0");
    let page = browser.page().await;
    page.open(&served.url()).await;
    page.sign_in(&ring.reader).await;
    assert_eq!(page.count("#ring circle.node").await, 32);
    page.click(&format!("#ring circle.node[data-name=\"{from}\"]"))
        .await;
    page.wait_for(&format!("#node-panel[data-name=\"{from}\"]"))
        .await;
    let drawn = look_up(&page, &key).await;
    assert_eq!(drawn, expected_hops(&cli), "lookup of {key:?} from {from}");
    let summary = page.text("#lookup-summary").await;
    assert!(
        summary.contains(&format!("{} hops", cli["hops"])),
        "{summary}"
    );
    page.screenshot("lookup").await;

    // The same lookup drawn by `dht ring --svg` renders in the browser
    // with the same arrows.
    let svg = ring.state.with_file_name("ring.svg");
    dht(
        &ring.state,
        &["ring", "--svg", svg.to_str().unwrap(), "--path", &key],
    );
    page.open(&format!("file://{}", svg.display())).await;
    assert_eq!(page.count("circle.node").await, 32);
    let hops = page.count("line.hop").await;
    assert!(hops >= 1, "the svg draws the path's arrows");
    page.screenshot("ring-svg").await;
    page.close().await;
}

#[tokio::test]
async fn a_put_on_one_page_or_the_command_line_appears_on_another() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let ring = ring();
    let served = serve(&ring.state, "127.0.0.1:0");
    let writer = browser.page().await;
    let reader = browser.page().await;
    for (page, token) in [(&writer, &ring.writer), (&reader, &ring.reader)] {
        page.open(&served.url()).await;
        page.sign_in(token).await;
        page.wait_for("#live.on").await;
    }
    reader.type_into("#filter", "browser").await;
    reader.click("#filter-form button").await;

    writer.type_into("#put-key", "from a browser").await;
    writer.type_into("#put-value", "{\"a\": [1, 2]}").await;
    writer.click("#put-form button").await;
    reader
        .wait_for("#keys tr[data-key=\"from a browser\"]")
        .await;
    reader
        .wait_for("#activity li[data-op=\"put\"][data-target=\"from a browser\"]")
        .await;
    let row = reader.text("#keys tr[data-key=\"from a browser\"]").await;
    assert!(row.contains("{\"a\":[1,2]}"), "{row}");

    // A change made on the command line reaches the page too.
    dht(&ring.state, &["put", "browser, said the shell", "42"]);
    reader
        .wait_for("#keys tr[data-key=\"browser, said the shell\"]")
        .await;
    reader.screenshot("live-put").await;
    let stored = dht(&ring.state, &["get", "from a browser"]);
    assert_eq!(stored.trim(), "{\"a\":[1,2]}");

    // A file uploaded on the writer's page loads, with its summary.
    let file = ring.state.with_file_name("browser-upload.csv");
    std::fs::write(&file, "name,price\nbrowser berry,9.5\nbrowser plum,0.5\n").unwrap();
    writer
        .type_into("#upload-file", file.to_str().unwrap())
        .await;
    writer.click("#upload-form button").await;
    writer.wait_for("#write-result.okay").await;
    let said = writer.text("#write-result").await;
    assert!(said.contains("2 records, 2 new"), "{said}");
    reader.wait_for("#keys tr[data-key=\"browser plum\"]").await;
    assert_eq!(dht(&ring.state, &["get", "browser berry"]).trim(), "9.5");
    // Deleting from the writer's table removes the key everywhere.
    writer.type_into("#filter", "browser plum").await;
    writer.click("#filter-form button").await;
    writer
        .click("#keys tr[data-key=\"browser plum\"] button")
        .await;
    reader
        .wait_for("#activity li[data-op=\"delete\"][data-target=\"browser plum\"]")
        .await;
    reader
        .wait_gone("#keys tr[data-key=\"browser plum\"]")
        .await;
    writer.close().await;
    reader.close().await;
}

#[tokio::test]
async fn a_failed_node_is_marked_on_every_page() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let ring = ring();
    let served = serve(&ring.state, "127.0.0.1:0");
    let admin = browser.page().await;
    let reader = browser.page().await;
    for (page, token) in [(&admin, &ring.admin), (&reader, &ring.reader)] {
        page.open(&served.url()).await;
        page.sign_in(token).await;
        page.wait_for("#live.on").await;
    }
    let victim = "node-5";
    admin
        .click(&format!("#ring circle.node[data-name=\"{victim}\"]"))
        .await;
    admin
        .wait_for(&format!("#node-panel[data-name=\"{victim}\"]"))
        .await;
    admin.click("#fail-btn").await;
    reader
        .wait_for(&format!("#marks g.departed.fail[data-name=\"{victim}\"]"))
        .await;
    assert_eq!(
        reader
            .count(&format!("#ring circle.node[data-name=\"{victim}\"]"))
            .await,
        0
    );
    assert_eq!(reader.count("#ring circle.node").await, 31);
    // Before maintenance repairs the pointers, check marks the nodes that
    // still point at the dead one.
    reader.click("#check-btn").await;
    reader.wait_for("#marks circle.problem").await;
    reader.screenshot("failed-node").await;
    let ring_now = dht(&ring.state, &["ring", "--json"]);
    assert!(!ring_now.contains(&format!("\"{victim}\"")));
    // Maintenance from the admin's page repairs what check found, and a
    // node joined there appears on the reader's circle.
    admin.click("#maintain-btn").await;
    admin.wait_for("#admin-result.okay").await;
    admin.type_into("#join-name", "newcomer").await;
    admin.click("#join-form button").await;
    reader
        .wait_for("#ring circle.node[data-name=\"newcomer\"]")
        .await;
    admin.click("#maintain-btn").await;
    reader
        .wait_for("#activity li[data-op=\"maintain\"]:nth-child(1)")
        .await;
    reader.click("#check-btn").await;
    reader.wait_for("#check-result p.okay").await;
    assert_eq!(reader.count("#marks circle.problem").await, 0);
    admin.close().await;
    reader.close().await;
}

#[tokio::test]
async fn each_role_is_offered_only_what_it_may_do() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let ring = ring();
    let served = serve(&ring.state, "127.0.0.1:0");
    let page = browser.page().await;
    let forms = [
        "#put-form",
        "#delete-form",
        "#upload-form",
        "#join-form",
        "#maintain-btn",
    ];
    for (token, offered) in [
        (&ring.reader, [false, false, false, false, false]),
        (&ring.writer, [true, true, true, false, false]),
        (&ring.admin, [true, true, true, true, true]),
    ] {
        page.open(&served.url()).await;
        page.sign_in(token).await;
        for (form, expect) in forms.iter().zip(offered) {
            assert_eq!(page.count(form).await == 1, expect, "{form}");
        }
        if token == &ring.reader {
            page.screenshot("reader").await;
        }
        page.click("#signout").await;
        page.wait_for("#signin:not([hidden])").await;
    }
    // A token nobody knows is refused on the sign-in form.
    page.sign_in_as("not a token").await;
    page.wait_for("#signin:not([hidden])").await;
    let said = page.text("#signin-error").await;
    assert!(said.contains("not known"), "{said}");
    page.close().await;
}

#[tokio::test]
async fn the_page_reconnects_when_the_server_restarts() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let ring = ring();
    let served = serve(&ring.state, "127.0.0.1:0");
    let addr = served.addr.to_string();
    let page = browser.page().await;
    page.open(&served.url()).await;
    page.sign_in(&ring.reader).await;
    page.wait_for("#live.on").await;
    drop(served);
    page.wait_for("#live.off").await;
    let again = serve(&ring.state, &addr);
    page.wait_for("#live.on").await;
    dht(&ring.state, &["put", "after the restart", "1"]);
    page.type_into("#filter", "restart").await;
    page.click("#filter-form button").await;
    page.wait_for("#keys tr[data-key=\"after the restart\"]")
        .await;
    page.wait_for("#activity li[data-target=\"after the restart\"]")
        .await;
    page.screenshot("reconnected").await;
    drop(again);
    page.close().await;
}

#[tokio::test]
async fn ten_thousand_nodes_draw_as_one_path_and_answer_the_pointer() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("big.db");
    dht(&state, &["init", "--nodes", "10000"]);
    dht(&state, &["put", "apple", "1"]);
    dht(&state, &["user", "add", "rita", "--role", "reader"]);
    let served = serve(&state, "127.0.0.1:0");
    let page = browser.page().await;
    page.open(&served.url()).await;
    let token = dht(&state, &["user", "add", "reed", "--role", "reader"]);
    page.sign_in(token.trim()).await;
    assert_eq!(page.eval("return $('#ring').dataset.nodes").await, "10000");
    // Aggregated: one path for all the nodes, no element per node.
    assert_eq!(page.count("#ring circle.node").await, 0);
    assert_eq!(page.count("#ring path.node-dots").await, 1);
    // The pointer finds the node under it by its angle: at this density
    // nodes lie a fifth of a pixel apart, so the node found is the one
    // nearest the whole pixel the pointer is on.
    let found = page
        .eval(
            "const n = state.circle.nodes[1234]; const [x, y] = point(n.at, RADIUS); \
             const box = $('#ring').getBoundingClientRect(); const s = box.width / SIZE; \
             const at = {clientX: Math.round(box.left + x * s), clientY: Math.round(box.top + y * s), bubbles: true}; \
             $('#ring').dispatchEvent(new MouseEvent('mousemove', at)); \
             const tip = $('#tip').textContent; const name = tip.split(' · ')[0]; \
             const got = state.byName.get(name); \
             $('#ring').dispatchEvent(new MouseEvent('click', at)); \
             const gap = Math.min(Math.abs(got.at - n.at), 1 - Math.abs(got.at - n.at)); \
             return [name, gap * 2 * Math.PI * RADIUS * s];",
        )
        .await;
    let name = found[0].as_str().unwrap().to_owned();
    let pixels = found[1].as_f64().unwrap();
    assert!(
        pixels <= 1.5,
        "{found}: the node found is {pixels} px from the one pointed at"
    );
    page.wait_for(&format!("#node-panel[data-name=\"{name}\"]"))
        .await;
    // How long a full redraw takes, for the README (not asserted).
    let ms = page
        .eval("const t = performance.now(); for (let i = 0; i < 10; i++) draw(); return (performance.now() - t) / 10")
        .await;
    eprintln!("10,000 nodes: one redraw takes {ms} ms");
    page.type_into("#lookup-key", "apple").await;
    page.click("#lookup-form button").await;
    page.wait_for("#lookup[data-done=\"true\"]").await;
    assert!(page.count("#lookup line.hop").await >= 3);
    page.screenshot("ten-thousand").await;
    page.close().await;
}

/// Clicks the ring at the angle of the node with id `id` (as the ring
/// shows ids), as a person pointing at it would.
async fn click_at_id(page: &browser::Page, id: &str) {
    page.eval(&format!(
        "const [x, y] = point(fraction({id:?}), RADIUS); \
         const box = $('#ring').getBoundingClientRect(); const s = box.width / SIZE; \
         const at = {{clientX: box.left + x * s, clientY: box.top + y * s, bubbles: true}}; \
         $('#ring').dispatchEvent(new MouseEvent('mousemove', at)); \
         $('#ring').dispatchEvent(new MouseEvent('click', at)); return null;"
    ))
    .await;
}

#[tokio::test]
async fn a_ring_too_big_to_list_is_drawn_from_counts_and_asked_node_by_node() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let ring = ring();
    let (from, key, cli) = long_lookup(&ring.state);
    let nodes: Value = serde_json::from_str(&dht(&ring.state, &["ring", "--json"])).unwrap();
    let row = |name: &str| {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == name)
            .unwrap()
            .clone()
    };
    let served = serve(&ring.state, "127.0.0.1:0");
    // `?max_nodes=10`: the 32-node ring is sent as counts per arc, as a
    // ring of more than 20,000 nodes is by default.
    let url = format!("{}?max_nodes=10", served.url());
    let reader = browser.page().await;
    let admin = browser.page().await;
    for (page, token) in [(&reader, &ring.reader), (&admin, &ring.admin)] {
        page.open(&url).await;
        page.sign_in(token).await;
        page.wait_for("#live.on").await;
        assert_eq!(page.eval("return $('#ring').dataset.counted").await, "true");
        assert_eq!(page.eval("return $('#ring').dataset.nodes").await, "32");
        assert_eq!(page.count("#ring circle.node").await, 0);
        assert_eq!(page.count("#ring path.node-density").await, 1);
    }
    // Pointing at a node's angle selects it (the server finds the nearest)
    // and draws its fingers to the nodes the command line names.
    let start = row(&from);
    click_at_id(&reader, start["id"].as_str().unwrap()).await;
    reader
        .wait_for(&format!("#node-panel[data-name=\"{from}\"]"))
        .await;
    // Resting there, the tip names the nearest node under the arc's count.
    reader
        .wait_for(&format!("#tip[data-near=\"{from}\"]"))
        .await;
    let tip = reader.text("#tip").await;
    assert!(tip.contains(&format!("nearest {from} · id ")), "{tip}");
    reader.wait_for("#fingers line.finger").await;
    let mut drawn: Vec<String> = serde_json::from_value(
        reader
            .eval("return [...document.querySelectorAll('#fingers line.finger')].map(l => l.dataset.to)")
            .await,
    )
    .unwrap();
    drawn.sort();
    let mut fingers: Vec<String> = start["fingers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["node"].as_str().unwrap().to_owned())
        .filter(|n| n != &from)
        .collect();
    fingers.sort();
    fingers.dedup();
    assert_eq!(drawn, fingers);
    // A lookup from it is drawn through the nodes it asked.
    let hops = look_up(&reader, &key).await;
    assert_eq!(hops, expected_hops(&cli), "lookup of {key:?} from {from}");
    // The band shows no single node: the nodes asked get a dot each.
    let asked: std::collections::BTreeSet<&str> = hops
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    assert_eq!(reader.count("#lookup circle.known").await, asked.len());
    reader.screenshot("counted").await;

    // The admin fails a node the reader has selected: the reader's page
    // marks it and counts one node fewer; check marks the nodes that still
    // point at it, learned by name.
    let victim = start["successors"][0].as_str().unwrap().to_owned();
    click_at_id(&reader, row(&victim)["id"].as_str().unwrap()).await;
    reader
        .wait_for(&format!("#node-panel[data-name=\"{victim}\"]"))
        .await;
    click_at_id(&admin, row(&victim)["id"].as_str().unwrap()).await;
    admin
        .wait_for(&format!("#node-panel[data-name=\"{victim}\"]"))
        .await;
    admin.click("#fail-btn").await;
    reader
        .wait_for(&format!("#marks g.departed.fail[data-name=\"{victim}\"]"))
        .await;
    reader.wait_for("#ring[data-nodes=\"31\"]").await;
    reader.click("#check-btn").await;
    reader
        .wait_for(&format!("#marks circle.problem[data-name=\"{from}\"]"))
        .await;
    reader.close().await;
    admin.close().await;
}
