//! Two DTLS instances talking in memory, driven as str0m drives one: for
//! the handshake tests and the `dtls` bench. No sockets, no threads.

use std::time::Instant;

use str0m::crypto::CryptoError;
use str0m::crypto::dtls::{DtlsCert, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion};

/// What one side saw by the end of a handshake.
#[derive(Debug, Default)]
pub struct Seen {
    pub connected: bool,
    pub peer_cert: Option<Vec<u8>>,
    pub keying: Option<(Vec<u8>, String)>,
    pub data: Vec<Vec<u8>>,
    pub close_notify: bool,
    pub error: Option<String>,
}

/// One end: an instance and what it has output so far.
pub struct Endpoint {
    pub dtls: Box<dyn DtlsInstance>,
    pub seen: Seen,
}

impl Endpoint {
    /// A DTLS 1.2 instance of `provider` presenting `cert` (MTU 1150).
    pub fn new(
        provider: &dyn DtlsProvider,
        cert: &DtlsCert,
        now: Instant,
    ) -> Result<Self, CryptoError> {
        let dtls = provider.new_dtls(cert, now, DtlsVersion::Dtls12, Some(1150))?;
        Ok(Self {
            dtls,
            seen: Seen::default(),
        })
    }

    /// Drains outputs (at most 1,000); returns the datagrams to send and
    /// the timer (`now` if it never reached one, noted in `seen.error`).
    pub fn drain(&mut self) -> (Vec<Vec<u8>>, Instant) {
        let mut out = Vec::new();
        let mut buf = vec![0; 2000];
        for _ in 0..1000 {
            match self.dtls.poll_output(&mut buf) {
                DtlsOutput::Packet(p) => out.push(p.to_vec()),
                DtlsOutput::Timeout(t) => return (out, t),
                DtlsOutput::Connected => self.seen.connected = true,
                DtlsOutput::PeerCert(c) => self.seen.peer_cert = Some(c.to_vec()),
                DtlsOutput::KeyingMaterial(k, p) => {
                    self.seen.keying = Some((k.to_vec(), format!("{p:?}")))
                }
                DtlsOutput::ApplicationData(d) => self.seen.data.push(d.to_vec()),
                DtlsOutput::CloseNotify => self.seen.close_notify = true,
                DtlsOutput::BufferTooSmall { needed } => buf.resize(needed, 0),
                _ => {}
            }
        }
        self.seen.error = Some("poll_output never reached Timeout".into());
        (out, Instant::now())
    }

    /// Hands `datagrams` in; the last error is kept in `seen.error`.
    pub fn receive(&mut self, datagrams: Vec<Vec<u8>>) {
        for d in datagrams {
            if let Err(e) = self.dtls.handle_packet(&d) {
                self.seen.error = Some(e.to_string());
            }
        }
    }
}

/// Runs a handshake in memory (at most 20 round trips), `client` active,
/// started as str0m starts one; returns both ends, connected or with the
/// error in `seen.error`.
pub fn handshake(
    client: (&dyn DtlsProvider, &DtlsCert),
    server: (&dyn DtlsProvider, &DtlsCert),
) -> Result<(Endpoint, Endpoint), CryptoError> {
    let now = Instant::now();
    let mut c = Endpoint::new(client.0, client.1, now)?;
    let mut s = Endpoint::new(server.0, server.1, now)?;
    s.dtls.set_active(false);
    c.dtls.set_active(true);
    // As str0m starts a client: a timeout, then an empty datagram.
    let started = c.dtls.handle_timeout(now).and(c.dtls.handle_packet(&[]));
    if let Err(e) = started {
        c.seen.error = Some(format!("starting the client: {e}"));
    }
    for _ in 0..20 {
        for end in [&mut c, &mut s] {
            if let Err(e) = end.dtls.handle_timeout(now) {
                end.seen.error = Some(e.to_string());
            }
        }
        let (to_server, _) = c.drain();
        s.receive(to_server);
        let (to_client, _) = s.drain();
        c.receive(to_client);
        let done = c.seen.connected && s.seen.connected;
        if done || c.seen.error.is_some() || s.seen.error.is_some() {
            break;
        }
    }
    c.drain();
    s.drain();
    Ok((c, s))
}
