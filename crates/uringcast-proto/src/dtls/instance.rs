//! One DTLS connection on OpenSSL, sans-IO for str0m: datagrams come in
//! through `handle_packet`, records leave through `poll_output`, and
//! OpenSSL's retransmission timer is reported against str0m's `now`.
//!
//! OpenSSL reads and writes through an in-memory [`Datagrams`] pair (one
//! `read` is one datagram, one `write` is one record to send). The timer is
//! OpenSSL's own (`DTLSv1_get_timeout`, counted on its wall clock): after
//! every step the instance asks how long is left and reports
//! `now + left`; `handle_timeout` at or after that instant lets OpenSSL
//! retransmit its flight.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslStream};
use str0m::crypto::dtls::{DtlsImplError, DtlsInstance, DtlsOutput, KeyingMaterial};
use str0m::crypto::dtls::{ProtocolVersion, SrtpProfile};

use super::handshake_failed;

/// `DTLSv1_get_timeout` and `DTLSv1_handle_timeout` are C macros over
/// `SSL_ctrl` (openssl/ssl.h), so openssl-sys has no function for them.
const DTLS_CTRL_GET_TIMEOUT: libc::c_int = 73;
const DTLS_CTRL_HANDLE_TIMEOUT: libc::c_int = 74;

/// When no timer runs: far enough never to fire, near enough not to
/// overflow an `Instant`.
const NO_TIMER: Duration = Duration::from_secs(24 * 3600);

/// Datagrams waiting either way. A handshake flight is a handful of
/// records and str0m drains after every input, so these caps only bound
/// a misbehaving peer (the oldest are dropped).
const MAX_QUEUED: usize = 64;

/// The memory "socket" OpenSSL reads from and writes to.
#[derive(Debug, Default)]
struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // A datagram longer than OpenSSL's read buffer (it sizes that for
        // the largest record) is cut, and so fails its MAC: as on a socket.
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.outgoing.len() == MAX_QUEUED {
            self.outgoing.pop_front();
        }
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What str0m is told next, after the queued datagrams.
enum Pending {
    PeerCert(Vec<u8>),
    Keying(KeyingMaterial, SrtpProfile),
    Connected,
    Data(Vec<u8>),
    CloseNotify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The role is not known yet (str0m calls `set_active` once the SDP
    /// says who is the DTLS client).
    Idle,
    Handshaking,
    Connected,
    Closed,
    Failed,
}

pub(super) struct Instance {
    ctx: SslContext,
    mtu: Option<usize>,
    stream: Option<SslStream<Datagrams>>,
    active: Option<bool>,
    state: State,
    negotiated: bool,
    pending: VecDeque<Pending>,
    timer: Option<Instant>,
    now: Instant,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpensslDtlsInstance")
            .field("active", &self.active)
            .field("state", &self.state)
            .finish()
    }
}

fn wants_io(e: &openssl::ssl::Error) -> bool {
    e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE
}

fn srtp_profile(id: SrtpProfileId) -> Option<SrtpProfile> {
    match id {
        SrtpProfileId::SRTP_AEAD_AES_128_GCM => Some(SrtpProfile::AEAD_AES_128_GCM),
        SrtpProfileId::SRTP_AEAD_AES_256_GCM => Some(SrtpProfile::AEAD_AES_256_GCM),
        SrtpProfileId::SRTP_AES128_CM_SHA1_80 => Some(SrtpProfile::AES128_CM_SHA1_80),
        _ => None,
    }
}

impl Instance {
    /// An instance of `ctx` with no role yet: its `Ssl` is made at
    /// `set_active`, when str0m knows who is the DTLS client.
    pub(super) fn new(ctx: &SslContext, now: Instant, mtu: Option<usize>) -> Self {
        Self {
            ctx: ctx.clone(),
            mtu,
            stream: None,
            active: None,
            state: State::Idle,
            negotiated: false,
            pending: VecDeque::new(),
            timer: None,
            now,
        }
    }

    fn start(&mut self, active: bool) -> Result<(), ErrorStack> {
        let mut ssl = Ssl::new(&self.ctx)?;
        if let Some(mtu) = self.mtu {
            ssl.set_mtu(u32::try_from(mtu).unwrap_or(u32::MAX))?;
        }
        if active {
            ssl.set_connect_state();
        } else {
            ssl.set_accept_state();
        }
        self.stream = Some(SslStream::new(ssl, Datagrams::default())?);
        self.state = State::Handshaking;
        Ok(())
    }

    fn role(&self) -> &'static str {
        if self.active == Some(true) {
            "client"
        } else {
            "server"
        }
    }

    /// Lets OpenSSL take what has arrived: the handshake, then records.
    fn drive(&mut self) -> Result<(), DtlsImplError> {
        let result = self.step();
        if result.is_err() {
            self.state = State::Failed;
        }
        self.refresh_timer();
        result
    }

    fn step(&mut self) -> Result<(), DtlsImplError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        if self.state == State::Handshaking {
            match stream.do_handshake() {
                Ok(()) => self.handshake_done()?,
                Err(e) if wants_io(&e) => return Ok(()),
                Err(e) => {
                    tracing::warn!(role = self.role(), error = %e, "DTLS handshake failed");
                    return Err(handshake_failed());
                }
            }
        }
        if self.state == State::Connected {
            self.read_records()?;
        }
        Ok(())
    }

    fn handshake_done(&mut self) -> Result<(), DtlsImplError> {
        let Some(stream) = self.stream.as_ref() else {
            return Ok(());
        };
        let ssl = stream.ssl();
        let no_cert = if self.active == Some(true) {
            dimpl::CertificateError::NoServerCertificateReceived
        } else {
            dimpl::CertificateError::NoClientCertificateReceived
        };
        let cert = ssl
            .peer_certificate()
            .and_then(|c| c.to_der().ok())
            .ok_or(DtlsImplError::CertificateError(no_cert))?;
        let Some(profile) = ssl
            .selected_srtp_profile()
            .and_then(|p| srtp_profile(p.id()))
        else {
            tracing::warn!(role = self.role(), "DTLS peer negotiated no SRTP profile");
            return Err(handshake_failed());
        };
        let mut material = vec![0; profile.keying_material_len()];
        if let Err(e) = ssl.export_keying_material(&mut material, "EXTRACTOR-dtls_srtp", None) {
            tracing::warn!(error = %e, "DTLS-SRTP keying material export failed");
            return Err(handshake_failed());
        }
        tracing::debug!(role = self.role(), cipher = ?ssl.current_cipher().map(|c| c.name()),
            srtp = ?profile, "DTLS connected");
        self.pending.push_back(Pending::PeerCert(cert));
        self.pending
            .push_back(Pending::Keying(KeyingMaterial::new(&material), profile));
        self.pending.push_back(Pending::Connected);
        self.state = State::Connected;
        self.negotiated = true;
        Ok(())
    }

    /// Application data (str0m's SCTP) and alerts after the handshake.
    fn read_records(&mut self) -> Result<(), DtlsImplError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 2048];
        // Bounded: every record read consumed a queued datagram or a
        // record of one, and at most MAX_QUEUED are queued.
        for _ in 0..4 * MAX_QUEUED {
            match stream.ssl_read(&mut buf) {
                Ok(n) => self.pending.push_back(Pending::Data(buf[..n].to_vec())),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.pending.push_back(Pending::CloseNotify);
                    self.state = State::Closed;
                    return Ok(());
                }
                Err(e) if wants_io(&e) => return Ok(()),
                Err(e) => {
                    tracing::debug!(error = %e, "DTLS connection failed");
                    return Err(handshake_failed());
                }
            }
        }
        Ok(())
    }

    fn refresh_timer(&mut self) {
        let Some(stream) = self.stream.as_ref() else {
            self.timer = None;
            return;
        };
        // Once connected, DTLS 1.2 runs no timer (a lost last flight is
        // answered when the peer repeats its own), and str0m calls
        // handle_timeout on every turn of a busy peer: skip the query.
        if matches!(self.state, State::Connected | State::Closed | State::Failed) {
            self.timer = None;
            return;
        }
        let mut left = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: `ssl` is a live SSL owned by `stream`; DTLS_CTRL_GET_TIMEOUT
        // writes one `struct timeval` through `parg`, which points at `left`.
        let running = unsafe {
            openssl_sys::SSL_ctrl(
                stream.ssl().as_ptr(),
                DTLS_CTRL_GET_TIMEOUT,
                0,
                (&mut left as *mut libc::timeval).cast(),
            )
        } == 1;
        self.timer = running.then(|| {
            let secs = u64::try_from(left.tv_sec).unwrap_or(0);
            let micros = u64::try_from(left.tv_usec).unwrap_or(0);
            self.now + Duration::from_secs(secs) + Duration::from_micros(micros)
        });
    }
}

impl DtlsInstance for Instance {
    fn set_active(&mut self, active: bool) {
        if self.active.is_some() {
            return;
        }
        self.active = Some(active);
        match self.start(active) {
            // A client sends its ClientHello now.
            Ok(()) => {
                let _ = self.drive();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start DTLS");
                self.state = State::Failed;
            }
        }
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        match self.state {
            State::Handshaking | State::Connected => {}
            State::Idle => return Ok(()),
            State::Closed => return Err(DtlsImplError::ConnectionClosed),
            State::Failed => return Err(handshake_failed()),
        }
        // str0m "drives" a new client with an empty datagram (a read of
        // zero bytes would be EOF to OpenSSL): only drive on those.
        if let Some(stream) = self.stream.as_mut().filter(|_| !packet.is_empty()) {
            let queue = &mut stream.get_mut().incoming;
            if queue.len() == MAX_QUEUED {
                queue.pop_front();
            }
            queue.push_back(packet.to_vec());
        }
        self.drive()
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        if let Some(stream) = self.stream.as_mut() {
            let outgoing = &mut stream.get_mut().outgoing;
            if let Some(next) = outgoing.front() {
                if next.len() > buf.len() {
                    return DtlsOutput::BufferTooSmall { needed: next.len() };
                }
                let n = next.len();
                buf[..n].copy_from_slice(next);
                outgoing.pop_front();
                return DtlsOutput::Packet(&buf[..n]);
            }
        }
        let needed = match self.pending.front() {
            Some(Pending::PeerCert(bytes) | Pending::Data(bytes)) => bytes.len(),
            _ => 0,
        };
        if needed > buf.len() {
            return DtlsOutput::BufferTooSmall { needed };
        }
        match self.pending.pop_front() {
            Some(Pending::PeerCert(der)) => {
                buf[..der.len()].copy_from_slice(&der);
                DtlsOutput::PeerCert(&buf[..der.len()])
            }
            Some(Pending::Data(data)) => {
                buf[..data.len()].copy_from_slice(&data);
                DtlsOutput::ApplicationData(&buf[..data.len()])
            }
            Some(Pending::Keying(material, profile)) => {
                DtlsOutput::KeyingMaterial(material, profile)
            }
            Some(Pending::Connected) => DtlsOutput::Connected,
            Some(Pending::CloseNotify) => DtlsOutput::CloseNotify,
            None => DtlsOutput::Timeout(self.timer.unwrap_or(self.now + NO_TIMER)),
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.now = now;
        let due = self.timer.is_some_and(|t| t <= now);
        if due && let Some(stream) = self.stream.as_ref() {
            // SAFETY: `ssl` is a live SSL owned by `stream`;
            // DTLS_CTRL_HANDLE_TIMEOUT takes no argument.
            let r = unsafe {
                openssl_sys::SSL_ctrl(
                    stream.ssl().as_ptr(),
                    DTLS_CTRL_HANDLE_TIMEOUT,
                    0,
                    std::ptr::null_mut(),
                )
            };
            if r < 0 {
                tracing::warn!(
                    role = self.role(),
                    "DTLS handshake: the peer never answered"
                );
                self.state = State::Failed;
                self.timer = None;
                return Err(DtlsImplError::Timeout(dimpl::TimeoutError::Handshake));
            }
        }
        self.refresh_timer();
        Ok(())
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        match self.state {
            State::Connected => {}
            State::Idle | State::Handshaking => return Ok(0),
            State::Closed => return Err(DtlsImplError::ConnectionClosed),
            State::Failed => return Err(handshake_failed()),
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(0);
        };
        match stream.ssl_write(data) {
            Ok(n) => Ok(n),
            Err(e) if wants_io(&e) => Ok(0),
            Err(e) => {
                tracing::debug!(error = %e, "DTLS write failed");
                Err(handshake_failed())
            }
        }
    }

    fn is_active(&self) -> bool {
        self.active == Some(true)
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.negotiated.then_some(ProtocolVersion::DTLS1_2)
    }

    fn is_closed(&self) -> bool {
        let flushed = self
            .stream
            .as_ref()
            .is_none_or(|s| s.get_ref().outgoing.is_empty());
        matches!(self.state, State::Closed | State::Failed) && flushed
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        if matches!(self.state, State::Handshaking | State::Connected)
            && let Some(stream) = self.stream.as_mut()
        {
            // Queues close_notify; the peer's answer is not awaited.
            let _ = stream.shutdown();
        }
        self.state = State::Closed;
        self.timer = None;
        Ok(())
    }
}
