//! Real browsers: the demo pages and `/uringcast.js` as the binary serves
//! them, and a Chromium end-to-end run (tests/browser/e2e.mjs, driven by
//! npm `playwright-core` with Debian's `/usr/bin/chromium`): fake camera and
//! microphone published through the publish page, watched through the watch
//! page in another browser context, for each of VP8, H264, VP9 and AV1 (all
//! required), from another origin.
//! The server under test signals over HTTPS (`--tls-cert`, a certificate
//! made for the run, which Chromium is told to accept and Node trusts
//! through NODE_EXTRA_CA_CERTS); the demo pages come from a plain-HTTP
//! server, as the README's first command serves them.
//!
//! `scripts/test.sh` installs chromium and `npm ci`s tests/browser when they
//! are missing; here a missing one is a failure, never a skip.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::ServerProc;

/// The longest the whole browser run may take.
const BROWSER_LIMIT: Duration = Duration::from_secs(110);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[test]
fn browser_demo_pages_and_client_are_served() {
    let server = ServerProc::start(&["--shards", "1"]);
    let agent = agent();
    let files = [
        ("/", "text/html", "<title>uringcast</title>"),
        ("/publish", "text/html", "/demo/publish.js"),
        ("/watch", "text/html", "/demo/watch.js"),
        (
            "/uringcast.js",
            "text/javascript",
            "export async function publish(",
        ),
        (
            "/uringcast.d.ts",
            "text/plain",
            "export declare function watch(",
        ),
        ("/demo/style.css", "text/css", ".stage"),
        ("/demo/ui.js", "text/javascript", "export"),
        ("/demo/home.js", "text/javascript", "import"),
        ("/demo/publish.js", "text/javascript", "import"),
        ("/demo/watch.js", "text/javascript", "import"),
    ];
    for (path, mime, needle) in files {
        let url = format!("{}{path}", server.base);
        let mut response = agent
            .get(&url)
            .header("Origin", "http://127.0.0.1:1")
            .call()
            .expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        let content_type = header(&response, "content-type");
        assert!(
            content_type.starts_with(mime) && content_type.contains("charset=utf-8"),
            "{path}: {content_type}"
        );
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        // A page on another origin may import the module and read the files.
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            "*",
            "{path}"
        );
        let etag = header(&response, "etag");
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
            "{path}: strong ETag {etag:?}"
        );
        let body = response.body_mut().read_to_string().expect("body");
        assert!(body.contains(needle), "{path} has {needle:?}");

        let again = agent
            .get(&url)
            .header("If-None-Match", &etag)
            .call()
            .expect("GET");
        assert_eq!(again.status(), 304, "{path}: If-None-Match");
        assert_eq!(header(&again, "etag"), etag);
        let changed = agent
            .get(&url)
            .header("If-None-Match", "\"something-else\"")
            .call()
            .expect("GET");
        assert_eq!(changed.status(), 200, "{path}: another ETag");

        let head = agent.head(&url).call().expect("HEAD");
        assert_eq!(head.status(), 200, "{path}: HEAD");
        assert!(header(&head, "content-type").starts_with(mime));
    }
    // Not a file: a problem, as for every unknown path.
    let (status, headers, _) = common::http(&server.base, "GET", "/demo/nope.js", None, "");
    assert_eq!(status, 404);
    assert_eq!(
        common::header(&headers, "content-type"),
        Some("application/problem+json")
    );
}

/// The target directory (where `cargo` put the binary): screenshots go
/// under `target/browser/`.
fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_uringcast"));
    bin.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// What the browser run needs, or why it cannot run (a failure).
fn prerequisites(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if !chromium.exists() {
        return Err(format!(
            "{} is missing: run scripts/test.sh (it installs Debian's chromium) or apt-get install chromium",
            chromium.display()
        ));
    }
    let node = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|p| p.join("node"))
        .find(|p| p.is_file())
        .ok_or("node is not on PATH: install Node.js (20 or later)")?;
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Err(format!(
            "{}/node_modules has no playwright-core: run scripts/test.sh (it runs npm ci there)",
            dir.display()
        ));
    }
    Ok((chromium, node))
}

#[test]
fn browser_chromium_publishes_and_watches_every_codec() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let (chromium, node) = match prerequisites(&dir) {
        Ok(found) => found,
        Err(why) => panic!("the browser test cannot run: {why}"),
    };
    let (cert, key, der) = common::certificate("browser");
    let (cert_path, key_path) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let server = ServerProc::start_trusting(&["--tls-cert", cert_path, "--tls-key", key_path], der);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    // Another origin: the same binary on other ports serves the demo pages,
    // which talk to `server` through ?server=.
    let pages = ServerProc::start(&["--shards", "1"]);
    let out = target_dir().join("browser");

    let result = run_node(
        &node,
        &dir,
        "e2e.mjs",
        &[
            ("SERVER", server.base.clone()),
            ("PAGES", pages.base.clone()),
            ("OUT", out.display().to_string()),
            ("CHROMIUM", chromium.display().to_string()),
            ("NODE_EXTRA_CA_CERTS", cert.display().to_string()),
            ("EXTRA_ARGS", "--ignore-certificate-errors".into()),
        ],
    );

    let codecs = result["codecs"].as_array().expect("codecs");
    println!(
        "codec  frames/6s  first frame  60 frames   audio pkts  screenshot   (Chromium {})",
        result["chromium"].as_str().unwrap_or("?")
    );
    for run in codecs {
        let number = |key: &str| run[key].as_u64().unwrap_or(0);
        println!(
            "{:<6} {:>9}  {:>8} ms  {:>6} ms  {:>10}  {}",
            run["codec"].as_str().unwrap_or("?"),
            number("frames_decoded_6s"),
            number("first_frame_ms"),
            number("ms_to_60_frames"),
            number("audio_packets"),
            run["screenshot"].as_str().unwrap_or("?"),
        );
        assert!(run["frames_decoded_6s"].as_u64().unwrap_or(0) >= 60);
        assert!(run["audio_packets"].as_u64().unwrap_or(0) > 0);
        let shot = run["screenshot"].as_str().expect("screenshot path");
        assert!(Path::new(shot).is_file(), "{shot} was written");
    }
    // The README offers these four: each must have run, none skipped.
    for required in ["VP8", "H264", "VP9", "AV1"] {
        assert!(
            codecs.iter().any(|r| r["codec"] == required),
            "{required} was tested (Chromium offers {})",
            result["offered"]
        );
    }
    // Every page stopped its session with DELETE.
    assert!(
        server.wait_for(Duration::from_secs(3), |s| s["sessions"] == 0),
        "sessions left: {}",
        server.stats()["sessions"]
    );
}

/// Runs `script` (in `dir`) with `node` and `env`, echoing its output;
/// returns the JSON of its `RESULT` line. It must exit 0 within
/// [`BROWSER_LIMIT`].
fn run_node(node: &Path, dir: &Path, script: &str, env: &[(&str, String)]) -> serde_json::Value {
    let mut child = Command::new(node)
        .arg(dir.join(script))
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut result = None;
    let status = loop {
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            match line.strip_prefix("RESULT ") {
                Some(json) => result = Some(json.to_owned()),
                None => println!("{line}"),
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > BROWSER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} took over {BROWSER_LIMIT:?}");
        }
    };
    // Lines printed just before exit.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        match line.strip_prefix("RESULT ") {
            Some(json) => result = Some(json.to_owned()),
            None => println!("{line}"),
        }
    }
    assert!(status.success(), "{script} failed: {status}");
    serde_json::from_str(&result.unwrap_or_else(|| panic!("{script} printed its RESULT")))
        .expect("RESULT JSON")
}

/// Chromium in a conference room (tests/browser/room.mjs): three pages
/// decode each other, a screen share, a late joiner and a leaver, chat and
/// info, and an approval room that refuses a guest.
#[test]
fn browser_chromium_meets_in_a_room() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let (chromium, node) = match prerequisites(&dir) {
        Ok(found) => found,
        Err(why) => panic!("the browser test cannot run: {why}"),
    };
    let key = "cm9vbS1icm93c2VyLXRlc3Qta2V5LW9mLWF0LWxlYXN0LTMyLWJ5dGVz";
    let admin = "browser-admin-token-0123456789";
    let server = ServerProc::start(&["--shards", "2", "--auth-key", key, "--admin-token", admin]);
    let out = target_dir().join("browser");
    let result = run_node(
        &node,
        &dir,
        "room.mjs",
        &[
            ("SERVER", server.base.clone()),
            ("KEY", key.into()),
            ("ADMIN", admin.into()),
            ("OUT", out.display().to_string()),
            ("CHROMIUM", chromium.display().to_string()),
        ],
    );
    println!("room run: {result}");
    assert_eq!(result["approval"], "rejected");
    let shot = result["screenshot"].as_str().expect("screenshot path");
    assert!(Path::new(shot).is_file(), "{shot} was written");
    assert_eq!(result["page_errors"], serde_json::json!([]));
}

/// Chromium over ICE-TCP (tests/browser/tcp.mjs): UDP to the media port is
/// dropped (iptables, in this test's network namespace only), and a page
/// publishes and another watches through the TCP candidate.
#[test]
fn browser_chromium_falls_back_to_ice_tcp_when_udp_is_blocked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let (chromium, node) = match prerequisites(&dir) {
        Ok(found) => found,
        Err(why) => panic!("the browser test cannot run: {why}"),
    };
    let server = ServerProc::start(&["--shards", "2"]);
    let port = server.udp.port().to_string();
    let block = |op: &str| {
        let rule = ["-p", "udp", "--dport", port.as_str(), "-j", "DROP"];
        Command::new("iptables")
            .arg(op)
            .arg("INPUT")
            .args(rule)
            .status()
            .expect("iptables runs (scripts/test.sh installs it)")
    };
    assert!(
        block("-A").success(),
        "iptables can drop UDP here (root, in the test's own network namespace)"
    );
    let result = run_node(
        &node,
        &dir,
        "tcp.mjs",
        &[
            ("SERVER", server.base.clone()),
            ("CHROMIUM", chromium.display().to_string()),
        ],
    );
    let stats = server.stats();
    assert!(block("-D").success());
    println!("ICE-TCP run: {result}\nstats: {}", stats["ice_tcp"]);
    assert_eq!(result["failures"], serde_json::json!([]));
    assert!(
        stats["ice_tcp"]["accepted"].as_u64().unwrap_or(0) >= 2,
        "{stats}"
    );
    assert!(
        stats["ice_tcp"]["frames_in"].as_u64().unwrap_or(0) > 100,
        "{stats}"
    );
    assert!(
        stats["ice_tcp"]["frames_out"].as_u64().unwrap_or(0) > 100,
        "{stats}"
    );
    let over_tcp: u64 = (stats["shards"].as_array().into_iter().flatten())
        .map(|s| s["tcp_out"].as_u64().unwrap_or(0))
        .sum();
    assert!(over_tcp > 100, "the shards sent over TCP: {stats}");
}
