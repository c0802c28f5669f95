//! What the web page needs from the server: the page's own files with a
//! strict content policy, who the caller is, the circle, a node's keys,
//! filtered key pages, and the nodes a check marks.

use super::client::call;
use super::{ring, serve};

#[test]
fn the_page_and_the_endpoints_it_draws_from() {
    let r = ring();
    let s = serve(&r.state, &[]);
    // The page needs no token; everything on it comes from the API.
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let a = call(s.addr, "GET", path, None, "");
        assert_eq!(a.status, 200, "{path}");
        let head = a.head.to_lowercase();
        assert!(
            head.contains(&format!("content-type: {kind}")),
            "{path}: {head}"
        );
        assert!(
            head.contains("content-security-policy: default-src 'self'"),
            "{head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"));
    }
    let html = String::from_utf8(call(s.addr, "GET", "/", None, "").body).unwrap();
    assert!(html.contains("<script src=\"/app.js\""));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );

    // Who is asking, and what they may do.
    let me = |token: Option<&str>| call(s.addr, "GET", "/api/v1/me", token, "").json();
    let anon = me(None);
    assert_eq!(anon["name"], "anonymous");
    assert_eq!(anon["may_read"], false);
    let reader = me(Some(&r.reader));
    assert_eq!(
        (
            reader["role"].as_str(),
            reader["may_read"].as_bool(),
            reader["may_write"].as_bool()
        ),
        (Some("reader"), Some(true), Some(false))
    );
    let writer = me(Some(&r.writer));
    assert_eq!(
        (writer["may_write"].as_bool(), writer["may_admin"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(me(Some(&r.admin))["may_admin"], true);
    assert_eq!(
        call(s.addr, "GET", "/api/v1/me", Some("nonsense"), "").status,
        401
    );

    // The circle: 8 nodes in ring order, every item counted once.
    let token = Some(r.reader.as_str());
    assert_eq!(call(s.addr, "GET", "/api/v1/circle", None, "").status, 401);
    let c = call(s.addr, "GET", "/api/v1/circle", token, "").json();
    let nodes = c["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 8);
    let ats: Vec<f64> = nodes.iter().map(|n| n["at"].as_f64().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] < w[1]) && ats.iter().all(|a| (0.0..1.0).contains(a)));
    let keys = c["keys"].as_u64().unwrap();
    assert_eq!(keys, 35);
    assert_eq!(
        nodes
            .iter()
            .map(|n| n["keys"].as_u64().unwrap())
            .sum::<u64>(),
        keys
    );
    assert_eq!(
        c["key_bins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap())
            .sum::<u64>(),
        keys
    );

    // A ring bigger than the page asks to list comes as counts alone, the
    // same counts; the node under a pointer and named nodes come apart.
    assert_eq!(c["node_count"], 8);
    let bins = |c: &serde_json::Value, f: &str| -> u64 {
        c[f].as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap())
            .sum()
    };
    assert_eq!(bins(&c, "node_bins"), 8);
    let small = call(s.addr, "GET", "/api/v1/circle?max_nodes=7", token, "").json();
    assert_eq!(small["nodes"].as_array().unwrap().len(), 0);
    assert_eq!(
        (small["node_count"].clone(), small["keys"].clone()),
        (8.into(), keys.into())
    );
    assert_eq!(
        (small["node_bins"].clone(), small["key_bins"].clone()),
        (c["node_bins"].clone(), c["key_bins"].clone())
    );
    let whole = call(s.addr, "GET", "/api/v1/circle?max_nodes=8", token, "").json();
    assert_eq!(whole, c);
    for n in nodes {
        let at = n["at"].as_f64().unwrap();
        let near = call(
            s.addr,
            "GET",
            &format!("/api/v1/circle/near?at={at}"),
            token,
            "",
        )
        .json();
        assert_eq!(&near, n);
    }
    for bad in ["at=1", "at=-0.5", "at=x", ""] {
        let said = call(
            s.addr,
            "GET",
            &format!("/api/v1/circle/near?{bad}"),
            token,
            "",
        );
        assert_eq!(said.status, 400, "{bad}");
    }
    let asked = format!(
        "/api/v1/circle/nodes?names={}%0Anobody%0A{}",
        nodes[3]["name"].as_str().unwrap(),
        nodes[1]["name"].as_str().unwrap()
    );
    let named = call(s.addr, "GET", &asked, token, "").json();
    assert_eq!(named, serde_json::json!([nodes[3], nodes[1]]));
    let many = format!("/api/v1/circle/nodes?names={}", vec!["n"; 1001].join("%0A"));
    assert_eq!(call(s.addr, "GET", &many, token, "").status, 400);
    assert_eq!(
        call(s.addr, "GET", "/api/v1/circle/near?at=0.5", None, "").status,
        401
    );

    // A node's keys: as many as the circle counts, each a get served there.
    let name = nodes
        .iter()
        .find(|n| n["keys"].as_u64().unwrap() >= 2)
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = call(
        s.addr,
        "GET",
        &format!("/api/v1/ring/{name}/keys?limit=1"),
        token,
        "",
    )
    .json();
    let count = nodes.iter().find(|n| n["name"] == name.as_str()).unwrap()["keys"].clone();
    assert_eq!(own["total"], count);
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    let key = own["items"][0]["key"].as_str().unwrap();
    let got = call(
        s.addr,
        "GET",
        &format!("/api/v1/keys/{}", key.replace(' ', "%20")),
        token,
        "",
    )
    .json();
    assert_eq!(got["node"], name.as_str());
    assert!(got["key_id"].is_string());
    assert_eq!(
        call(s.addr, "GET", "/api/v1/ring/nobody/keys", token, "").status,
        404
    );

    // Keys containing a text, ignoring case, over several pages.
    let mut found = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = call(
            s.addr,
            "GET",
            &format!("/api/v1/keys?contains=BERRY&limit=2{cursor}"),
            token,
            "",
        )
        .json();
        for item in page["items"].as_array().unwrap() {
            found.push(item["key"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={}", next.replace(' ', "%20")),
            None => break,
        }
    }
    found.sort();
    assert_eq!(
        found,
        ["blackberry", "blueberry", "raspberry", "strawberry"]
    );

    // A crash without maintenance: check marks the nodes pointing at it.
    let a = Some(r.admin.as_str());
    let victim = nodes[3]["name"].as_str().unwrap();
    assert_eq!(
        call(
            s.addr,
            "POST",
            &format!("/api/v1/nodes/{victim}/fail"),
            a,
            ""
        )
        .status,
        200
    );
    let check = call(s.addr, "GET", "/api/v1/check", token, "").json();
    assert_eq!(check["ok"], false);
    let marked: Vec<&str> = check["marked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(!marked.is_empty());
    let pred = nodes[2]["name"].as_str().unwrap();
    assert!(
        marked.contains(&pred),
        "{pred} points at {victim}: {marked:?}"
    );
    let after = call(s.addr, "GET", "/api/v1/circle", token, "").json();
    assert_eq!(after["nodes"].as_array().unwrap().len(), 7);
    assert_eq!(
        after["keys"].as_u64().unwrap(),
        keys,
        "no key is lost or counted twice after a crash"
    );

    // The circle is drawn once per change of the ring, and every change,
    // the server's own or another process's, draws it again.
    let circle = || call(s.addr, "GET", "/api/v1/circle", token, "");
    let again = circle();
    assert!(
        again
            .head
            .to_lowercase()
            .contains("content-type: application/json")
    );
    assert_eq!(again.json(), after);
    let w = Some(r.writer.as_str());
    assert_eq!(
        call(s.addr, "PUT", "/api/v1/keys/fresh-key", w, "1").status,
        200
    );
    assert_eq!(circle().json()["keys"].as_u64().unwrap(), keys + 1);
    crate::ok(&r.state, &["put", "cli-key", "2"]);
    assert_eq!(circle().json()["keys"].as_u64().unwrap(), keys + 2);
    crate::ok(&r.state, &["join", "late-node"]);
    assert_eq!(circle().json()["nodes"].as_array().unwrap().len(), 8);
}
