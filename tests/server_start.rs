//! `Server::start` in this process: a start that fails after it spawned its
//! shard threads (here the HTTP bind, on an address already taken) stops and
//! joins every thread it started before it returns the error. Threads are
//! observed by name in `/proc/self/task/*/comm`, so nothing else in this test
//! binary may start a server at the same time: it holds one test.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use clap::Parser;
use uringcast::config::Config;
use uringcast::server::Server;

/// The names of this process's threads started by a server, with how many
/// carry each: `shard-N` and the signaling threads.
fn server_threads() -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    for task in tasks.map_while(Result::ok) {
        // A thread that just ended may be gone between the listing and the read.
        let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        let name = comm.trim_end().to_owned();
        if name.starts_with("shard-") || name.starts_with("signaling") {
            *names.entry(name).or_insert(0) += 1;
        }
    }
    names
}

/// Polls [`server_threads`] until `done` holds or `limit` passes; the last look.
fn threads_until(
    limit: Duration,
    done: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + limit;
    loop {
        let threads = server_threads();
        if done(&threads) || Instant::now() >= deadline {
            return threads;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn config(http_addr: &str) -> Config {
    Config::try_parse_from([
        "uringcast",
        "--http-addr",
        http_addr,
        "--udp-addr",
        "127.0.0.1:0",
        "--shards",
        "2",
    ])
    .expect("a valid command line")
}

#[test]
fn a_start_whose_http_bind_fails_leaves_no_thread_running() {
    assert_eq!(server_threads(), BTreeMap::new(), "no server threads yet");

    // The observation works: a server that starts shows its shard threads,
    // and a shutdown takes them away.
    let server = Server::start(&config("127.0.0.1:0")).expect("start on free ports");
    let running = threads_until(Duration::from_secs(2), |t| {
        t.contains_key("shard-0") && t.contains_key("shard-1")
    });
    assert!(
        running.contains_key("shard-0") && running.contains_key("shard-1"),
        "a running server's shard threads are seen: {running:?}"
    );
    server.shutdown(Duration::from_secs(2));
    let after_shutdown = threads_until(Duration::from_secs(2), BTreeMap::is_empty);
    assert_eq!(after_shutdown, BTreeMap::new(), "threads left by shutdown");

    // The HTTP address is taken: start fails after the shards were spawned.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a listener");
    let addr = taken.local_addr().expect("its address").to_string();
    let error = match Server::start(&config(&addr)) {
        Ok(server) => {
            server.shutdown(Duration::from_secs(2));
            panic!("start succeeded on the taken address {addr}");
        }
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains(&addr) && error.contains("HTTP"),
        "the error names the HTTP address {addr}: {error}"
    );
    let left = threads_until(Duration::from_secs(2), BTreeMap::is_empty);
    assert_eq!(left, BTreeMap::new(), "threads left by the failed start");
    drop(taken);
}
