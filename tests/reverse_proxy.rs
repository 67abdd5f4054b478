//! Behind a real reverse proxy (Debian's nginx, started by the test on
//! loopback): with `--trust-proxy`, the per-IP session cap counts the
//! client that nginx names in `X-Forwarded-For`, not nginx itself, and a
//! client cannot escape it by sending its own `X-Forwarded-For`; without
//! it, or from a peer that is not the proxy, those headers are ignored.
//! Clients connect from their own loopback addresses (127.0.0.2, …).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ServerProc, publish_offer};

/// nginx in front of `upstream`, killed on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Nginx {
    fn start(name: &str, upstream: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("uringcast-nginx-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let d = dir.display();
        let upstream = upstream.trim_start_matches("http://");
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
                 proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_set_header Host $host;\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let binary = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|b| std::path::Path::new(b).exists())
            .unwrap_or("nginx");
        let child = Command::new(binary)
            .args(["-p", &d.to_string(), "-e", &format!("{d}/error.log"), "-c"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx runs (scripts/test.sh installs Debian's nginx)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx listens on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, addr, dir }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A WHIP POST to `to` from the local address `from`, with `extra` header
/// lines → the status.
fn post_from(from: &str, to: SocketAddr, room: &str, extra: &str) -> u16 {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("from");
    socket
        .bind(&local.into())
        .expect("bind the client's address");
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .expect("connect");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = publish_offer();
    let request = format!(
        "POST /whip/{room} HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

fn http_addr(server: &ServerProc) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr")
}

#[test]
fn behind_a_trusted_nginx_the_per_ip_cap_counts_the_forwarded_client() {
    let server = ServerProc::start(&["--max-sessions-per-ip", "1", "--trust-proxy", "127.0.0.1"]);
    let nginx = Nginx::start("trusted", &server.base);
    assert_eq!(post_from("127.0.0.2", nginx.addr, "a", ""), 201);
    assert_eq!(
        post_from("127.0.0.2", nginx.addr, "b", ""),
        429,
        "the same client, capped"
    );
    assert_eq!(
        post_from("127.0.0.3", nginx.addr, "c", ""),
        201,
        "another client behind nginx"
    );
    // A forged first hop: nginx appends the real address, which wins.
    let forged = "X-Forwarded-For: 127.0.0.99\r\n";
    assert_eq!(post_from("127.0.0.2", nginx.addr, "d", forged), 429);

    // Straight to the server from a peer that is not the proxy: its
    // header is ignored and its own address counts.
    let direct = http_addr(&server);
    let claims = |n: u8| format!("X-Forwarded-For: 127.0.1.{n}\r\n");
    assert_eq!(post_from("127.0.0.4", direct, "e", &claims(1)), 201);
    assert_eq!(post_from("127.0.0.4", direct, "f", &claims(2)), 429);
    assert_eq!(server.stats()["signaling"]["per_ip_refused"], 3);
}

#[test]
fn behind_an_untrusted_nginx_every_client_is_the_proxy() {
    let server = ServerProc::start(&["--max-sessions-per-ip", "1"]);
    let nginx = Nginx::start("untrusted", &server.base);
    assert_eq!(post_from("127.0.0.2", nginx.addr, "a", ""), 201);
    assert_eq!(
        post_from("127.0.0.3", nginx.addr, "b", ""),
        429,
        "without --trust-proxy both clients are nginx's 127.0.0.1"
    );
}
