//! How answers travel: HTTPS with a certificate made by the test, and gzip
//! for clients that ask.

use crate::{dht, ring, serve};

/// HTTPS with a certificate made here: the API answers over TLS, a plain
/// HTTP request to the same port gets no HTTP answer, and plain HTTP on an
/// address that is not loopback is refused, naming --tls-cert.
#[test]
fn tls_serves_the_api_and_plain_http_does_not_reach_it() {
    use std::io::{Read, Write};
    let r = ring();
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let tls_args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let s = serve(&r.state, &tls_args);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = std::net::TcpStream::connect(s.addr).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(
        tls,
        "GET /api/v1/keys/apple HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        r.reader
    )
    .unwrap();
    let mut answer = Vec::new();
    // The server may close without a TLS close_notify: what arrived counts.
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"found\":true"), "{answer}");
    // Plain HTTP to the TLS port: no HTTP answer.
    let mut plain = std::net::TcpStream::connect(s.addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /api/v1/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(!raw.starts_with(b"HTTP/1.1 200"), "plain HTTP was answered");
    drop(s);
    // Not loopback: TLS is enough (users exist), plain HTTP is not.
    let o = dht(&r.state, &["serve", "--bind", "0.0.0.0:0"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--tls-cert"));
    // (That TLS suffices there is checked without listening beyond
    // loopback: `serve::bind_policy`'s unit test.)
}

/// Answers are gzip-compressed for clients that ask, and plain otherwise.
#[test]
fn answers_are_compressed_when_asked() {
    use std::io::{Read, Write};
    let r = ring();
    let s = serve(&r.state, &[]);
    let ask = |encoding: &str| {
        let mut c = std::net::TcpStream::connect(s.addr).unwrap();
        write!(
            c,
            "GET /api/v1/ring?limit=50 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{encoding}Connection: close\r\n\r\n",
            r.reader
        )
        .unwrap();
        let mut raw = Vec::new();
        c.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase()
    };
    let zipped = ask("Accept-Encoding: gzip\r\n");
    assert!(zipped.starts_with("http/1.1 200"), "{zipped}");
    assert!(zipped.contains("content-encoding: gzip"), "{zipped}");
    assert!(!ask("").contains("content-encoding"));
}
