//! A small HTTP/1.1 client for the web tests: requests written byte for
//! byte (so that tests can send malformed, pipelined or partial requests),
//! responses read by their framing (Content-Length, or to the end for a
//! response that closes). `curl` judges the ordinary cases; this one does
//! what curl cannot (pipelining, raw bytes) and thousands of requests on
//! one connection without a process each.

use anyhow::{bail, ensure, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// A connection to the server.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: &str) -> Result<Client> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Client { reader: BufReader::new(stream) })
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.reader.get_mut().write_all(bytes).context("sending a request")
    }

    /// `GET path` with keep-alive.
    pub fn get(&mut self, path: &str) -> Result<Response> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: node\r\n\r\n").as_bytes())?;
        self.response(false)
    }

    /// Reads one response; `head` if it answers a HEAD (no body whatever
    /// Content-Length says).
    pub fn response(&mut self, head: bool) -> Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("the server closed the connection before a response");
        }
        let mut parts = line.trim_end().splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        ensure!(version.starts_with("HTTP/1."), "not an HTTP/1.x status line: {line:?}");
        let status: u16 = parts.next().unwrap_or("").parse().with_context(|| format!("status line {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            ensure!(self.reader.read_line(&mut line)? > 0, "the server closed the connection in a header");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').with_context(|| format!("header line {line:?}"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut response = Response { status, headers, body: Vec::new() };
        let no_body = head || status == 304 || status == 204 || (100..200).contains(&status);
        if !no_body {
            match response.header("content-length") {
                Some(len) => {
                    let len: usize = len.parse().with_context(|| format!("Content-Length {len:?}"))?;
                    response.body.resize(len, 0);
                    self.reader.read_exact(&mut response.body).context("reading a body")?;
                }
                None => {
                    self.reader.read_to_end(&mut response.body)?;
                }
            }
        }
        Ok(response)
    }

    /// Whether the server has closed the connection (reads EOF within
    /// `wait`).
    pub fn is_closed(&mut self, wait: Duration) -> Result<bool> {
        self.reader.get_ref().set_read_timeout(Some(wait))?;
        let mut byte = [0u8; 1];
        let closed = match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => bail!("unexpected bytes from the server"),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => false,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
            Err(e) => return Err(e.into()),
        };
        self.reader.get_ref().set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(closed)
    }
}
