//! Where the paced benchmark's tail comes from: the same stream as `benches/ingest/paced.sh`
//! (the signed `status` fixture over 64 connections, each waiting a random 0.5–1.5 × 12.8 ms
//! between requests), but timing every request itself, so it can say *when* the slow ones
//! happened. wrk only gives percentiles.
//!
//! Prints the percentiles, then how many requests at or above the p99 fell in each 100 ms of
//! the run (a stall of the host shows as a cluster), then per 10 ms of the first 600 ms the
//! requests, the slow ones and the slowest (a fresh server's start shows there).
//!
//! Usage: `BODY=payload.json SIG=sha256=... paced_probe HOST:PORT SECONDS`
//! (`benches/ingest/probe.sh SECONDS` starts a fresh server and runs it.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: u64 = 64;
const PACE: Duration = Duration::from_micros(12_800);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, secs] = args.as_slice() else {
        bail!("usage: BODY=file SIG=sha256=... paced_probe HOST:PORT SECONDS");
    };
    let secs: f64 = secs.parse().context("SECONDS must be a number")?;
    let body_file = std::env::var("BODY").context("BODY (the payload file) is not set")?;
    let body = std::fs::read(&body_file).with_context(|| format!("reading {body_file}"))?;
    let sig = std::env::var("SIG").context("SIG (the payload's signature) is not set")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timings = runtime.block_on(run(addr, secs, &body, &sig))?;
    report(timings, secs);
    Ok(())
}

/// (seconds since the start when sent, latency in seconds) of every request.
async fn run(addr: &str, secs: f64, body: &[u8], sig: &str) -> anyhow::Result<Vec<(f64, f64)>> {
    let start = Instant::now();
    let unix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    println!("start (unix seconds) {unix:.3}");
    let mut tasks = Vec::new();
    for conn in 0..CONNECTIONS {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (body, sig) = (body.to_vec(), sig.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut rng = (conn + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut buf = vec![0u8; 4096];
            let mut n = 0u64;
            while start.elapsed().as_secs_f64() < secs {
                // xorshift: a jittered pause so the connections spread into an even stream.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                tokio::time::sleep(PACE.mul_f64(0.5 + (rng % 1000) as f64 / 1000.0)).await;
                n += 1;
                let mut request = format!(
                    "POST /webhooks/github HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
                     X-GitHub-Event: status\r\nX-Hub-Signature-256: {sig}\r\n\
                     X-GitHub-Delivery: probe-{unix}-{conn}-{n}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                request.extend_from_slice(&body);
                let sent = Instant::now();
                stream.write_all(&request).await?;
                read_response(&mut stream, &mut buf).await?;
                out.push(((sent - start).as_secs_f64(), sent.elapsed().as_secs_f64()));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// Reads one response (headers and a `content-length` body) and fails on anything but 2xx.
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> anyhow::Result<()> {
    let mut got = Vec::new();
    loop {
        let k = stream.read(buf).await?;
        if k == 0 {
            bail!("the server closed the connection");
        }
        got.extend_from_slice(&buf[..k]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 2") {
            bail!("not a 2xx: {}", head.lines().next().unwrap_or_default());
        }
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse())
            .transpose()?
            .unwrap_or(0);
        while got.len() < end + 4 + length {
            let k = stream.read(buf).await?;
            if k == 0 {
                bail!("the server closed the connection mid-body");
            }
            got.extend_from_slice(&buf[..k]);
        }
        return Ok(());
    }
}

fn report(all: Vec<(f64, f64)>, secs: f64) {
    if all.is_empty() {
        println!("no requests");
        return;
    }
    let mut lat: Vec<f64> = all.iter().map(|&(_, l)| l).collect();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let ms = |s: f64| s * 1e3;
    println!(
        "{} requests, {:.0}/s: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.2} ms",
        lat.len(),
        lat.len() as f64 / secs,
        ms(q(0.5)),
        ms(q(0.9)),
        ms(q(0.99)),
        ms(q(0.999)),
        ms(q(1.0))
    );
    let slow = q(0.99);
    let mut clusters: BTreeMap<u64, u32> = BTreeMap::new();
    let mut early: BTreeMap<u64, (u32, u32, f64)> = BTreeMap::new();
    for &(at, l) in &all {
        if l >= slow {
            *clusters.entry((at * 10.0) as u64).or_default() += 1;
        }
        if at < 0.6 {
            let e = early.entry((at * 100.0) as u64).or_default();
            e.0 += 1;
            e.1 += u32::from(l >= slow);
            e.2 = e.2.max(l);
        }
    }
    let line: Vec<String> = clusters
        .iter()
        .map(|(k, n)| format!("{:.1}s:{n}", *k as f64 / 10.0))
        .collect();
    println!("slow (>= p99) per 100 ms: {}", line.join(" "));
    let line: Vec<String> = early
        .iter()
        .map(|(k, (n, s, m))| format!("{}:{n}/{s}/{:.1}", k * 10, ms(*m)))
        .collect();
    println!(
        "first 600 ms per 10 ms (ms: requests/slow/max ms): {}",
        line.join(" ")
    );
}
