//! A minimal HTTP/1.1 client over one tokio TCP connection: POST a JSON body, read one
//! response (Content-Length or chunked), keep the connection alive. One request is in flight
//! per connection, so a reply always belongs to the request just sent. Errors say whether
//! the request can have reached the server: that decides `fail` versus `info`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response header and body accepted (a longer one is a protocol error).
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub enum HttpError {
    /// No connection: nothing was sent, the request certainly had no effect.
    NotSent(String),
    /// The request was (at least partly) written; it may have taken effect.
    InDoubt(String),
}

pub struct HttpConnection {
    address: SocketAddr,
    stream: Option<TcpStream>,
    connect_timeout: Duration,
}

impl HttpConnection {
    pub fn new(address: SocketAddr, connect_timeout: Duration) -> HttpConnection {
        HttpConnection {
            address,
            stream: None,
            connect_timeout,
        }
    }

    /// Drops the connection (after an error or a timeout: a late reply must never be read
    /// as the answer to the next request).
    pub fn reset(&mut self) {
        self.stream = None;
    }

    /// POSTs `body` to `path`; returns the status and the body.
    pub async fn post(&mut self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
        if self.stream.is_none() {
            let stream =
                tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.address))
                    .await
                    .map_err(|_| {
                        HttpError::NotSent(format!("connect to {} timed out", self.address))
                    })?
                    .map_err(|error| {
                        HttpError::NotSent(format!("connect to {}: {error}", self.address))
                    })?;
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
        }
        let result = self.exchange(path, body).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
        let address = self.address;
        let stream = self.stream.as_mut().expect("connected above");
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        stream
            .write_all(&request)
            .await
            .map_err(|error| HttpError::InDoubt(format!("sending to {address}: {error}")))?;
        read_response(stream)
            .await
            .map_err(|error| HttpError::InDoubt(format!("reply from {address}: {error}")))
    }
}

async fn read_response(stream: &mut TcpStream) -> Result<(u16, Vec<u8>), String> {
    let mut buffer = Vec::with_capacity(1024);
    let header_end = loop {
        if let Some(position) = find(&buffer, b"\r\n\r\n") {
            break position;
        }
        if buffer.len() > MAX_HEADER_BYTES {
            return Err("response header too long".to_string());
        }
        read_more(stream, &mut buffer).await?;
    };
    let header = std::str::from_utf8(&buffer[..header_end])
        .map_err(|_| "response header is not UTF-8".to_string())?
        .to_string();
    let mut lines = header.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad content-length {value:?}"))?,
            );
        } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let mut rest = buffer.split_off(header_end + 4);
    if chunked {
        return Ok((status, read_chunked(stream, rest).await?));
    }
    let length = content_length.ok_or("response has neither content-length nor chunks")?;
    if length > MAX_BODY_BYTES {
        return Err(format!("response body of {length} bytes is too long"));
    }
    while rest.len() < length {
        read_more(stream, &mut rest).await?;
    }
    if rest.len() > length {
        return Err("bytes after the response body (a reply to no request)".to_string());
    }
    Ok((status, rest))
}

async fn read_chunked(stream: &mut TcpStream, mut buffer: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(position) = find(&buffer, b"\r\n") {
                break position;
            }
            if buffer.len() > 1024 {
                return Err("chunk size line too long".to_string());
            }
            read_more(stream, &mut buffer).await?;
        };
        let size_text = std::str::from_utf8(&buffer[..line_end]).unwrap_or("");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err("chunked response body too long".to_string());
        }
        buffer.drain(..line_end + 2);
        while buffer.len() < size + 2 {
            read_more(stream, &mut buffer).await?;
        }
        if size == 0 {
            // The final CRLF (no trailers expected from the servers we talk to).
            return Ok(body);
        }
        body.extend_from_slice(&buffer[..size]);
        buffer.drain(..size + 2);
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 8192];
    let read = stream
        .read(&mut chunk)
        .await
        .map_err(|error| error.to_string())?;
    if read == 0 {
        return Err("connection closed before the reply was complete".to_string());
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Standard base64 (RFC 4648, with padding), as etcd's JSON gateway encodes bytes.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let value = chunk.iter().enumerate().fold(0u32, |acc, (i, byte)| {
            acc | u32::from(*byte) << (16 - 8 * i)
        });
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(ALPHABET[(value >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    text
}

pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return Err(format!("bad base64 character {:?}", c as char)),
        } as u32)
    };
    let trimmed = text.trim_end_matches('=');
    let mut bytes = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return Err("truncated base64".to_string());
        }
        let mut value = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            value |= digit(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            bytes.push((value >> (16 - 8 * i)) as u8);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for text in ["", "k", "k1", "k12", "hello world", "12345"] {
            let encoded = base64_encode(text.as_bytes());
            assert_eq!(base64_decode(&encoded).unwrap(), text.as_bytes());
        }
        assert_eq!(base64_encode(b"k1"), "azE=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert!(base64_decode("a*==").is_err());
    }
}
