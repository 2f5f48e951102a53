//! Connection reuse: a rejected request must not leave the client holding a
//! keep-alive connection that the server is about to drop. Every MCP client
//! sends its first `initialize` without a token, gets 401, and goes on with
//! discovery on the same pooled connection.

use crate::harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read one HTTP/1.1 response with a `content-length` body; returns its head.
async fn read_response(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), sock.read(&mut chunk))
            .await
            .expect("the server answered within 10 s")
            .unwrap();
        assert!(n > 0, "the server closed the connection without a response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return head;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_with_a_late_body_keeps_the_connection_usable() {
    let app = spawn(Backend::Sqlite).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    sock.set_nodelay(true).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    // Headers first, the body only after the guard has had time to decide:
    // the rejection must wait for it rather than abandon the connection.
    sock.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    sock.write_all(body.as_bytes()).await.unwrap();
    let first = read_response(&mut sock).await;
    assert!(first.starts_with("http/1.1 401"), "{first}");
    assert!(!first.contains("connection: close"), "{first}");

    // Discovery on the same connection, as SDK clients do.
    let next =
        format!("GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    sock.write_all(next.as_bytes()).await.unwrap();
    let second = read_response(&mut sock).await;
    assert!(second.starts_with("http/1.1 200"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_whose_body_never_comes_says_connection_close() {
    let app = spawn(Backend::Sqlite).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    // A body is announced and never sent: the guard gives up waiting for it
    // and must tell the client that this connection is finished.
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: 100\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let first = read_response(&mut sock).await;
    assert!(first.starts_with("http/1.1 401"), "{first}");
    assert!(first.contains("connection: close"), "{first}");
}
