//! Every answer frees what it holds: for each status the server or a
//! handler gives, over HTTP and HTTPS, the connection's slot is free within
//! one `io_timeout` of the answer though the client never closes; the cap
//! on connections refuses without plaintext on HTTPS; a trickling client
//! holds its own connection only until `request_timeout` and little of the
//! body budget. Memory under a pipelining client is `memory.rs`'s; what
//! each head is answered is `framing.rs`'s.

mod common;

use common::{connect, connect_tls, limits, show, tls, Answer, Client, TestServer, Tls};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// What the machine may add to a deadline (2 cores, shared).
const SLACK: Duration = Duration::from_millis(500);

/// How a case makes the server answer `status`.
struct Case {
    status: u16,
    send: Vec<u8>,
    /// Sends `send`, then one more byte of the head every half second, so
    /// only `request_timeout` can end it.
    trickle: bool,
}

fn case(status: u16, send: &[u8]) -> Case {
    Case {
        status,
        send: send.to_vec(),
        trickle: false,
    }
}

fn cases() -> Vec<Case> {
    let handler = |status: u16| {
        case(
            status,
            format!("GET /status/{status} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
    };
    let many_fields: Vec<u8> = (0..100)
        .flat_map(|i| format!("X-{i}: v\r\n").into_bytes())
        .collect();
    vec![
        case(200, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        case(400, b"GET / HTTP/1.1\r\n\r\n"),
        case(
            400,
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ),
        handler(404),
        handler(405),
        Case {
            trickle: true,
            ..case(408, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        },
        case(
            413,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
        ),
        case(
            413,
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFF\r\n",
        ),
        case(414, &[&b"GET /"[..], &[b'a'; 9000]].concat()),
        handler(415),
        handler(429),
        case(
            431,
            &[&b"GET / HTTP/1.1\r\nHost: x\r\n"[..], &many_fields, b"\r\n"].concat(),
        ),
        case(
            501,
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
        handler(503),
        case(505, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
    ]
}

/// Sends the case, reads its answer, then keeps the socket open (neither
/// reading nor closing) until the slot is free or the deadline passes.
fn frees_its_slot<S: Read + Write>(
    server: &TestServer,
    case: &Case,
    mut client: Client<S>,
) -> Result<(), String> {
    server
        .wait_open(1, Duration::from_secs(2))
        .map_err(|e| format!("never counted: {e}"))?;
    let sent = Instant::now();
    let answer = match case.trickle {
        false => {
            client.send(&case.send).map_err(|e| format!("send: {e}"))?;
            client.answer(Duration::from_secs(5), false)?
        }
        true => trickle_head(&mut client, &case.send)?,
    };
    if answer.status != case.status {
        return Err(format!(
            "expected {}, got {}",
            case.status,
            answer.describe()
        ));
    }
    if case.trickle {
        let took = sent.elapsed();
        let request_timeout = limits().request_timeout;
        if took + SLACK < request_timeout || took > request_timeout + SLACK * 2 {
            return Err(format!(
                "408 after {took:?}, expected about request_timeout {request_timeout:?}"
            ));
        }
    }
    if answer.status >= 400 {
        answer.check_error_json()?;
    }
    let within = limits().io_timeout + SLACK;
    server
        .wait_open(0, within)
        .map_err(|e| format!("{e} (answered: {})", answer.describe()))?;
    drop(client);
    Ok(())
}

/// Sends `head`, then a byte every half second until an answer comes.
fn trickle_head<S: Read + Write>(client: &mut Client<S>, head: &[u8]) -> Result<Answer, String> {
    client.send(head).map_err(|e| format!("send: {e}"))?;
    let give_up = Instant::now() + Duration::from_secs(10);
    while !client.bytes_within(Duration::from_millis(500))? {
        if Instant::now() > give_up {
            return Err("no answer to a trickled head within 10 s".into());
        }
        // Once the server has answered, a write may fail; the read tells.
        let _ = client.send(b"a");
    }
    client.answer(Duration::from_secs(5), false)
}

/// Each case on its own server, all at once; fails listing every case that
/// failed.
fn every_case_frees_its_slot(tls: Option<&Tls>) {
    let cases = cases();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|case| {
                scope.spawn(move || {
                    let server = TestServer::start(limits(), tls.map(|t| t.server.clone()));
                    match tls {
                        None => frees_its_slot(&server, case, connect(server.addr)),
                        Some(t) => match connect_tls(server.addr, &t.client) {
                            Ok(client) => frees_its_slot(&server, case, client),
                            Err(e) => Err(format!("TLS handshake: {e}")),
                        },
                    }
                })
            })
            .collect();
        let results = runs
            .into_iter()
            .map(|run| run.join().expect("a case's thread does not panic"));
        let failed = cases.iter().zip(results).filter_map(|(case, result)| {
            let e = result.err()?;
            Some(format!(
                "- {} (sent {}): {e}",
                case.status,
                show(&case.send)
            ))
        });
        failed.collect()
    });
    assert!(
        failures.is_empty(),
        "slots not freed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_answer_frees_its_slot_over_http() {
    every_case_frees_its_slot(None);
}

#[test]
fn every_answer_frees_its_slot_over_https() {
    every_case_frees_its_slot(Some(&tls()));
}

#[test]
fn an_http2_preface_from_a_client_that_hangs_up_frees_its_slot() {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let within = limits().io_timeout + SLACK;
    let tls = tls();
    let mut failures = Vec::new();
    for (what, half) in [("hangs up", false), ("half-closes, never reads", true)] {
        let plain = TestServer::start(limits(), None);
        let mut client = connect(plain.addr);
        plain
            .wait_open(1, Duration::from_secs(2))
            .expect("the connection is counted");
        let _ = client.send(PREFACE);
        match half {
            true => {
                let _ = client.tcp.shutdown(std::net::Shutdown::Write);
            }
            false => client.hang_up(),
        }
        if let Err(e) = plain.wait_open(0, within) {
            failures.push(format!("- HTTP, client {what}: {e}"));
        }

        let https = TestServer::start(limits(), Some(tls.server.clone()));
        let mut client = connect_tls(https.addr, &tls.client).expect("a TLS handshake");
        https
            .wait_open(1, Duration::from_secs(2))
            .expect("the connection is counted");
        let _ = client.send(PREFACE);
        match half {
            true => {
                let _ = client.tcp.shutdown(std::net::Shutdown::Write);
            }
            false => client.hang_up(),
        }
        if let Err(e) = https.wait_open(0, within) {
            failures.push(format!("- HTTPS, client {what}: {e}"));
        }
        drop(client);
    }
    assert!(
        failures.is_empty(),
        "slots held after an HTTP/2 preface:\n{}",
        failures.join("\n")
    );
}

/// Limits for the cap tests: two connections, and timeouts long enough
/// that the two held open cannot time out during the test.
fn capped() -> tiny_http::Limits {
    tiny_http::Limits {
        max_connections: 2,
        io_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        ..limits()
    }
}

#[test]
fn at_max_connections_plain_http_gets_a_json_503() {
    let server = TestServer::start(capped(), None);
    let held = [connect(server.addr), connect(server.addr)];
    server
        .wait_open(2, Duration::from_secs(2))
        .expect("both connections are counted");
    for send_first in [false, true] {
        let mut extra = connect(server.addr);
        if send_first {
            let _ = extra.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        let answer = extra
            .answer(Duration::from_secs(2), false)
            .expect("an answer at the cap");
        assert_eq!(answer.status, 503, "{}", answer.describe());
        answer.check_error_json().expect("a JSON 503");
        answer
            .check_date_and_length()
            .expect("Date and Content-Length");
        assert!(
            answer.header("retry-after").is_some(),
            "Retry-After: {}",
            answer.describe()
        );
        assert!(answer.closes(), "{}", answer.describe());
        extra
            .closed(Duration::from_secs(1))
            .expect("closed after the 503");
        assert_eq!(server.open(), 2, "a refused connection is not counted");
    }
    drop(held);
    server
        .wait_open(0, Duration::from_secs(2))
        .expect("closed clients free their slots");
    let mut client = connect(server.addr);
    client
        .send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("the server reads");
    let answer = client
        .answer(Duration::from_secs(2), false)
        .expect("served below the cap again");
    assert_eq!(answer.status, 200, "{}", answer.describe());
}

#[test]
fn at_max_connections_https_is_closed_never_answered_in_plaintext() {
    let tls = tls();
    let server = TestServer::start(capped(), Some(tls.server.clone()));
    let held = [connect(server.addr), connect(server.addr)];
    server
        .wait_open(2, Duration::from_secs(2))
        .expect("both connections are counted");

    // A client speaking plaintext to the HTTPS port, as a 503 would.
    let mut raw = connect(server.addr);
    let _ = raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (got, closed) = raw.read_all(Duration::from_secs(2));
    assert!(
        !got.starts_with(b"HTTP/"),
        "a plaintext answer on HTTPS: {}",
        show(&got)
    );
    assert!(
        closed,
        "a connection over the cap is closed at once; got {}",
        show(&got)
    );

    // A TLS client: no handshake, or a 503 inside TLS.
    if let Ok(mut client) = connect_tls(server.addr, &tls.client) {
        let _ = client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        if let Ok(answer) = client.answer(Duration::from_secs(2), false) {
            assert_eq!(answer.status, 503, "over the cap: {}", answer.describe());
        }
    }
    assert_eq!(server.open(), 2, "refused connections are not counted");
    drop(held);
    server
        .wait_open(0, Duration::from_secs(2))
        .expect("closed clients free their slots");
    let mut client = connect_tls(server.addr, &tls.client).expect("a handshake below the cap");
    client
        .send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("the server reads");
    let answer = client
        .answer(Duration::from_secs(2), false)
        .expect("served below the cap again");
    assert_eq!(answer.status, 200, "{}", answer.describe());
}

/// Tricklers send a chunked body a byte per 700 ms (io_timeout 1 s): each
/// must get 408 at request_timeout (3 s), while bodies of 134 KiB from
/// another client keep getting 200 at once. A trickler declares a chunk of
/// 255 KiB; the budget (1 MiB) holds 4 of those, not 20, so the tricklers
/// must hold what has arrived (or a small step), not what they declare.
#[test]
fn tricklers_get_408_at_request_timeout_and_never_starve_other_bodies() {
    const TRICKLERS: usize = 20;
    const BIG: usize = 134 * 1024;
    let limits = tiny_http::Limits {
        max_body: 256 * 1024,
        body_budget: 1 << 20,
        ..limits()
    };
    let server = TestServer::start(limits, None);
    let big = [
        format!("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {BIG}\r\n\r\n").as_bytes(),
        &[b'b'; BIG],
    ]
    .concat();
    let started = Instant::now();
    let (tricklers, bigs) = std::thread::scope(|scope| {
        let tricklers: Vec<_> = (0..TRICKLERS)
            .map(|_| scope.spawn(|| trickle_body(&server)))
            .collect();
        server
            .wait_open(TRICKLERS, Duration::from_secs(2))
            .expect("every trickler is connected");
        let mut bigs = Vec::new();
        // Until just before the tricklers' deadline, while each holds what it sent.
        while started.elapsed() < limits.request_timeout - SLACK {
            let at = started.elapsed();
            let mut client = connect(server.addr);
            let sent = Instant::now();
            let answer = client
                .send(&big)
                .map_err(|e| format!("send: {e}"))
                .and_then(|()| client.answer(Duration::from_secs(5), false));
            bigs.push((at, sent.elapsed(), answer));
            std::thread::sleep(Duration::from_millis(200));
        }
        let tricklers: Vec<_> = tricklers
            .into_iter()
            .map(|t| t.join().expect("a trickler does not panic"))
            .collect();
        (tricklers, bigs)
    });
    let mut failures = Vec::new();
    for (at, took, answer) in &bigs {
        let ok = answer
            .as_ref()
            .is_ok_and(|a| a.status == 200 && a.header("x-body") == Some("137216"));
        if !ok || *took > Duration::from_secs(1) {
            let got = answer.as_ref().map_or_else(String::clone, Answer::describe);
            failures.push(format!(
                "- a {BIG}-byte body sent at {at:?}: took {took:?}, got {got}"
            ));
        }
    }
    if bigs.len() < 5
        || bigs
            .last()
            .is_none_or(|(at, _, _)| *at < Duration::from_secs(2))
    {
        failures.push(format!(
            "- only {} big bodies were sent while the tricklers trickled",
            bigs.len()
        ));
    }
    let timeout = limits.request_timeout;
    for (i, trickled) in tricklers.iter().enumerate() {
        match trickled {
            Ok(took) if *took + SLACK >= timeout && *took <= timeout + SLACK * 2 => {}
            Ok(took) => failures.push(format!(
                "- trickler {i}: 408 after {took:?}, expected about {timeout:?}"
            )),
            Err(e) => failures.push(format!("- trickler {i}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server
        .wait_open(0, limits.io_timeout + SLACK)
        .expect("every slot freed");
}

/// One trickler: its 408's time from its first byte, once it is closed.
fn trickle_body(server: &TestServer) -> Result<Duration, String> {
    let mut client = connect(server.addr);
    let head = b"POST /trickle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3FC00\r\nt";
    let sent = Instant::now();
    client.send(head).map_err(|e| format!("send: {e}"))?;
    let give_up = sent + Duration::from_secs(10);
    while !client.bytes_within(Duration::from_millis(700))? {
        if Instant::now() > give_up {
            return Err("still trickling after 10 s".into());
        }
        let _ = client.send(b"t");
    }
    let took = sent.elapsed();
    let answer = client.answer(Duration::from_secs(5), false)?;
    if answer.status != 408 {
        return Err(format!("expected 408, got {}", answer.describe()));
    }
    answer.check_error_json()?;
    client.closed(Duration::from_secs(1))?;
    Ok(took)
}
