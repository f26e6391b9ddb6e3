//! A minimal HTTP/1.1 client for loopback: one request per connection (`Connection: close`),
//! `Content-Length` or chunked bodies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `http://host:port/path` → (`host:port`, `/path`).
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url:?}: only http:// URLs"))?;
    match rest.find('/') {
        Some(i) => Ok((rest[..i].to_string(), rest[i..].to_string())),
        None => Ok((rest.to_string(), "/".to_string())),
    }
}

/// One request; returns the status and the body.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let (host, path) = split_url(url)?;
    let e = |e: std::io::Error| format!("{method} {url}: {e}");
    let mut s = TcpStream::connect(&host).map_err(e)?;
    s.set_read_timeout(Some(timeout)).map_err(e)?;
    s.set_write_timeout(Some(timeout)).map_err(e)?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match body {
        Some((ct, b)) => head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n", b.len())),
        None => head.push_str("\r\n"),
    }
    s.write_all(head.as_bytes()).map_err(e)?;
    if let Some((_, b)) = body {
        s.write_all(b).map_err(e)?;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(e)?;
    parse_response(&raw).map_err(|m| format!("{method} {url}: {m}"))
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no complete HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = &raw[split + 4..];
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    let lower = head.to_ascii_lowercase();
    let body = if lower.contains("transfer-encoding: chunked") { dechunk(body)? } else { body.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn responses_parse() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(super::parse_response(r).unwrap(), (200, "{}".to_string()));
        let r = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(super::parse_response(r).unwrap(), (201, "abcde".to_string()));
        assert_eq!(
            super::split_url("http://127.0.0.1:8088/janus/1").unwrap(),
            ("127.0.0.1:8088".to_string(), "/janus/1".to_string())
        );
    }
}
