//! The ingest benchmark's floor: a bare webhook receiver that only checks the HMAC.
//!
//! It stands in for what issue 4 calls "a bare C receiver that only checks the HMAC" (about
//! 47,000/s on the reference machine), written with what auger already builds with: tokio
//! sockets on two worker threads, the same `hmac`/`sha2` crates, HTTP/1.1 keep-alive parsed by
//! hand (just enough for wrk's requests). No JSON, no disk, no routing. `benches/ingest/run.sh`
//! runs it, and the C one beside it (`benches/ingest/bare_receiver.c`), before `auger serve`, so
//! that auger's ingest rate is read as a ratio to them, measured in the same session (the
//! machines here are noisy).
//!
//! Usage: `AUGER_WEBHOOK_SECRET=... bare_receiver` prints `bare receiver listening on
//! http://ADDR` and serves until killed.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ACCEPTED: &[u8] = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
const REFUSED: &[u8] = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n";

fn main() -> std::io::Result<()> {
    let secret = std::env::var("AUGER_WEBHOOK_SECRET").unwrap_or_default();
    let key = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(std::io::Error::other)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            println!("bare receiver listening on http://{}", listener.local_addr()?);
            loop {
                let (socket, _) = listener.accept().await?;
                let key = key.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, key).await;
                });
            }
        })
}

async fn serve(mut socket: TcpStream, key: Hmac<Sha256>) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Headers: read until the blank line.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buf[..head_end]).map_err(std::io::Error::other)?;
        let mut length = 0usize;
        let mut signature = None;
        for line in head.split("\r\n") {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().map_err(std::io::Error::other)?;
                } else if name.eq_ignore_ascii_case("x-hub-signature-256") {
                    signature = value.strip_prefix("sha256=").and_then(|h| hex::decode(h).ok());
                }
            }
        }
        while buf.len() < head_end + length {
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = &buf[head_end..head_end + length];
        let mut mac = key.clone();
        mac.update(body);
        let ok = signature.is_some_and(|s| mac.verify_slice(&s).is_ok());
        socket.write_all(if ok { ACCEPTED } else { REFUSED }).await?;
        buf.drain(..head_end + length);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
