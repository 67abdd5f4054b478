//! A whole shard forwarding in virtual time, for instruction counts that do
//! not depend on a noisy machine: one publisher and `VIEWERS` viewers (WHEP)
//! on one socket-free shard (`shard::sim::ShardWorld`, the real
//! `ShardState`), connected and past the start hold, then `PACKETS` video
//! packets of 1100 bytes, each delivered to every viewer's str0m client.
//!
//! ```sh
//! cargo build --release --example shard_fanout
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/shard_fanout 100 0      # setup only
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/shard_fanout 100 1000   # setup + 1000 packets
//! ```
//!
//! The difference of the two `Collected` counts over `VIEWERS × PACKETS`
//! is the instructions per egress packet, server and clients together (the
//! clients decrypt what the server encrypts, so a change on the server's
//! side moves it by about half its own size).

use std::net::SocketAddr;
use std::time::Duration;

use uringcast::directory::Limits;
use uringcast::sfu::{Role, sim};
use uringcast::shard::sim::ShardWorld;

fn main() {
    let mut args = std::env::args().skip(1);
    let viewers: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100);
    let packets: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let mut world = ShardWorld::new(1, Limits::default(), sim::setup());
    let addr = |port: u16| -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], port)) };
    let publisher = world
        .post("bench", Role::Publisher, addr(20000))
        .expect("publisher");
    for i in 0..viewers {
        world
            .post("bench", Role::Viewer, addr(21000 + i as u16))
            .expect("viewer");
    }
    for _ in 0..300 {
        world.advance(Duration::from_millis(10));
    }
    // Past the start hold (50 ms): the stream is forwarded as it comes.
    for _ in 0..100 {
        world.publish(publisher, 1100);
        world.advance(Duration::from_millis(1));
    }
    for _ in 0..packets {
        world.publish(publisher, 1100);
        world.advance(Duration::from_millis(1));
    }
    let received: u64 = world.clients.iter().map(|c| c.rtp_received).sum();
    let connected = world.clients.iter().filter(|c| c.connected).count();
    world.check().expect("consistent shard tables");
    println!(
        "{viewers} viewers, {packets} packets: {connected} clients connected, {received} RTP packets received"
    );
}
