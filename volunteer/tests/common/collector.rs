//! A fake collector for tests: plain HTTP on 127.0.0.1:0, answering scripted statuses and
//! recording every request (path, headers, body).
//!
//! It speaks just enough HTTP/1.1 for one POST per connection. It does not validate reports;
//! the real collector and its end-to-end test do that.

use std::collections::VecDeque;
use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

/// One request as the collector saw it.
#[derive(Debug, Clone)]
pub struct Posted {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Posted {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "posted body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A scripted answer: status and body. When the script is empty the answer is 204.
pub type Answer = (u16, String);

struct State {
    script: VecDeque<Answer>,
    posted: Vec<Posted>,
}

pub struct Collector {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Collector {
    pub fn start(script: Vec<Answer>) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            posted: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        Collector {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    pub fn posted(&self) -> Vec<Posted> {
        lock(&self.state).posted.clone()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn serve(stream: std::net::TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request = read_request(&mut reader)?;
    if request.method == "CONNECT" {
        // Acting as a forward proxy: record the tunnel, then serve the request inside it.
        lock(state).posted.push(request);
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        request = read_request(&mut reader)?;
    }
    let (status, answer) = {
        let mut s = lock(state);
        s.posted.push(request);
        s.script.pop_front().unwrap_or((204, String::new()))
    };
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    stream.flush()
}

fn read_request(reader: &mut BufReader<std::net::TcpStream>) -> std::io::Result<Posted> {
    let (method, path, headers) = super::read_head(reader)?;
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Posted {
        method,
        path,
        headers,
        body,
    })
}
