//! Every knob of the server in one place: its flag, its environment variable
//! and its default. `uringcast --help` prints this file's doc comments.
//! `--config FILE` adds a TOML layer below flags and the environment
//! ([`file`]); `--print-config` prints the result.

mod file;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

use crate::net::IoKind;
use crate::sfu::CodecList;

pub use file::{ConfigError, Loaded, RELOADABLE, load, print_effective, reloadable_changes};
pub use uringcast_proto::parse_duration;

/// A WebRTC SFU: WHIP publish, WHEP watch, one UDP port, one event loop per core.
#[derive(Debug, Clone, Parser)]
#[command(name = "uringcast", version, about)]
pub struct Config {
    /// Read every option not given as a flag or in the environment from
    /// this TOML file (keys are the flags' names: `udp-addr = "..."`).
    /// SIGHUP reads it again for the reloadable keys.
    #[arg(long, env = "URINGCAST_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration as TOML (secrets masked) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Log lines as human-readable text or as one JSON object per line.
    #[arg(long, env = "URINGCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Whether log lines carry a timestamp (off under a supervisor that
    /// adds its own, as journald does).
    #[arg(long, env = "URINGCAST_LOG_TIMESTAMPS", action = ArgAction::Set, default_value_t = true)]
    pub log_timestamps: bool,

    /// Also export per-room series on /metrics (one series per room and
    /// metric: leave off with many rooms).
    #[arg(long, env = "URINGCAST_METRICS_PER_ROOM")]
    pub metrics_per_room: bool,

    /// Audio codecs sessions may negotiate, in order of preference.
    #[arg(
        long,
        env = "URINGCAST_AUDIO_CODECS",
        value_enum,
        value_delimiter = ',',
        default_value = "opus"
    )]
    pub audio_codecs: Vec<AudioCodec>,

    /// Video codecs sessions may negotiate, in order of preference.
    #[arg(
        long,
        env = "URINGCAST_VIDEO_CODECS",
        value_enum,
        value_delimiter = ',',
        default_value = "vp8,vp9,h264,h265,av1"
    )]
    pub video_codecs: Vec<VideoCodec>,

    /// After SIGTERM (or POST /v1/admin/drain) new sessions get 503 and
    /// existing ones may go on this long; then they are closed.
    #[arg(long, env = "URINGCAST_DRAIN_TIMEOUT", value_parser = parse_duration, default_value = "60s")]
    pub drain_timeout: Duration,

    /// A reverse proxy's address or network (CIDR): from it, and only from
    /// it, X-Forwarded-For / Forwarded name the client (rate limits,
    /// per-IP caps, logs) and X-Forwarded-Proto / -Host the URLs.
    /// Repeatable; comma-separated in the environment.
    #[arg(long, env = "URINGCAST_TRUST_PROXY", value_delimiter = ',', value_parser = parse_net)]
    pub trust_proxy: Vec<ipnet::IpNet>,

    /// POST room events (room started/finished, participant joined/left,
    /// track published/unpublished) as JSON to this http(s) URL.
    #[arg(long, env = "URINGCAST_WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// Sign webhook requests with HMAC-SHA256 under this key
    /// (`X-Uringcast-Signature: t=<unix>,v1=<hex>` over "<t>.<body>").
    #[arg(long, env = "URINGCAST_WEBHOOK_KEY", hide_env_values = true)]
    pub webhook_key: Option<String>,

    /// Also take ICE over TCP (RFC 6544) on the media port's number, for
    /// clients whose UDP is blocked: every answer then carries a passive
    /// TCP candidate beside each UDP one.
    #[arg(long, env = "URINGCAST_ICE_TCP", action = ArgAction::Set, default_value_t = true)]
    pub ice_tcp: bool,

    /// ICE-TCP connections open at once (16 at most from one client IP);
    /// more are closed as they arrive.
    #[arg(
        long,
        env = "URINGCAST_ICE_TCP_MAX_CONNECTIONS",
        default_value_t = 1024
    )]
    pub ice_tcp_max_connections: usize,
    /// Record published tracks into this directory, one WebM file per
    /// track (`<room>/<recording>/<participant>-<kind>-<track>.webm`).
    /// Rooms are recorded when the admin API starts it, or all with
    /// --record-all.
    #[arg(long, env = "URINGCAST_RECORD_DIR")]
    pub record_dir: Option<PathBuf>,

    /// With --record-dir: record every published track (WHIP sessions and
    /// conference participants) from the start.
    // Not `requires = "record_dir"`: that one may come from the file.
    #[arg(long, env = "URINGCAST_RECORD_ALL")]
    pub record_all: bool,

    /// Packets the shards may queue for the recorder; a slow disk fills
    /// it, and what does not fit is dropped and counted (never waited for).
    #[arg(long, env = "URINGCAST_RECORD_QUEUE", default_value_t = crate::record::RECORD_QUEUE)]
    pub record_queue: usize,

    /// Address of the HTTP signaling endpoint (WHIP/WHEP, stats).
    #[arg(long, env = "URINGCAST_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key. WHIP and WHEP clients outside localhost require HTTPS.
    #[arg(long, env = "URINGCAST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "URINGCAST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// The one UDP address every peer's media uses. Port 0 picks a free port.
    #[arg(long, env = "URINGCAST_UDP_ADDR", default_value = "127.0.0.1:5004")]
    pub udp_addr: SocketAddr,

    /// Extra IPs advertised as host candidates on the media port (a server
    /// behind 1:1 NAT). Repeatable; comma-separated in the environment.
    #[arg(long, env = "URINGCAST_PUBLIC_IP", value_delimiter = ',')]
    pub public_ip: Vec<IpAddr>,

    /// Number of shard threads (event loops). 0 means one per core.
    #[arg(long, env = "URINGCAST_SHARDS", default_value_t = 0)]
    pub shards: usize,

    /// Datapath backend: io_uring, recvmmsg/sendmmsg, or io_uring with fallback.
    #[arg(long, env = "URINGCAST_IO", value_enum, default_value_t = IoKind::Auto)]
    pub io: IoKind,

    /// Largest SDP body accepted, in bytes (413 above it).
    #[arg(long, env = "URINGCAST_MAX_BODY", default_value_t = 64 * 1024)]
    pub max_body: usize,

    /// A request body (SDP offer, trickle fragment) must arrive in full within
    /// this long; a slower one gets 408 and the connection is closed.
    #[arg(long, env = "URINGCAST_BODY_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub body_timeout: Duration,

    /// A client must send a request's headers within this long (counted from
    /// when the server starts waiting, so it also closes idle keep-alive
    /// connections).
    #[arg(long, env = "URINGCAST_HEADER_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub header_timeout: Duration,

    /// HTTP connections open at once; more are closed as they arrive.
    #[arg(long, env = "URINGCAST_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// A session that has not connected (ICE + DTLS) after this long is removed.
    #[arg(long, env = "URINGCAST_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "15s")]
    pub connect_timeout: Duration,

    /// A connected peer with no authenticated STUN consent check for this long
    /// is reaped (RFC 7675). str0m's ICE-lite agent drops a pair 15 s after its
    /// last binding request, so values above 15s act as 15s.
    #[arg(long, env = "URINGCAST_ICE_TIMEOUT", value_parser = parse_duration, default_value = "15s")]
    pub ice_timeout: Duration,

    /// Minimum interval between two keyframe requests sent to one publisher track.
    #[arg(long, env = "URINGCAST_KEYFRAME_INTERVAL", value_parser = parse_duration, default_value = "500ms")]
    pub keyframe_interval: Duration,

    /// Capacity of each shard's media lane from other shards, in messages (a
    /// publisher's packet or a hand-off datagram; full: drop and count).
    /// Routes and keyframe requests travel on a control lane that never drops.
    #[arg(long, env = "URINGCAST_SHARD_QUEUE", default_value_t = 8192)]
    pub shard_queue: usize,

    /// Socket receive and send buffer size in bytes.
    #[arg(long, env = "URINGCAST_SOCKET_BUFFER", default_value_t = 8 * 1024 * 1024)]
    pub socket_buffer: usize,

    /// Most sessions (pending or connected) at once; a POST beyond gets 503
    /// with Retry-After. 0: no limit.
    #[arg(long, env = "URINGCAST_MAX_SESSIONS", default_value_t = 10_000)]
    pub max_sessions: usize,

    /// Most sessions answered but not yet reached by their first STUN; a POST
    /// beyond gets 503 with Retry-After. They expire after --connect-timeout.
    /// 0: no limit.
    #[arg(long, env = "URINGCAST_MAX_PENDING", default_value_t = 1_000)]
    pub max_pending: usize,

    /// Most sessions at once created from one client IP; a POST beyond gets
    /// 429 with Retry-After. 0: no limit.
    #[arg(long, env = "URINGCAST_MAX_SESSIONS_PER_IP", default_value_t = 0)]
    pub max_sessions_per_ip: usize,

    /// Most WHEP viewers in one room, and most conference participants in
    /// one (unless the admin API gave the room its own size); one more gets
    /// 403. 0: no limit.
    #[arg(long, env = "URINGCAST_ROOM_SIZE", default_value_t = 100)]
    pub room_size: usize,

    /// How long a joiner of a room with approval waits for an owner before
    /// it is refused.
    #[arg(long, env = "URINGCAST_APPROVAL_TIMEOUT", value_parser = parse_duration, default_value = "60s")]
    pub approval_timeout: Duration,

    /// Most media a publisher may send, in bits per second: excess packets
    /// are dropped and counted, and REMB asks the publisher to slow down.
    /// 0: no limit.
    #[arg(long, env = "URINGCAST_MAX_BITRATE_IN", default_value_t = 8_000_000)]
    pub max_bitrate_in: u64,

    /// Most media sent to one viewer, in bits per second: excess packets are
    /// dropped and counted. 0: no limit.
    #[arg(long, env = "URINGCAST_MAX_BITRATE_OUT", default_value_t = 10_000_000)]
    pub max_bitrate_out: u64,

    /// POST, PATCH and DELETE requests per second allowed per client IP
    /// (429 with Retry-After above it). 0: no limit.
    #[arg(long, env = "URINGCAST_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,

    /// Requests a client IP may make in a burst above --rate-limit.
    #[arg(long, env = "URINGCAST_RATE_BURST", default_value_t = 20)]
    pub rate_burst: u32,

    /// HS256 key (base64, at least 32 bytes) for JWT bearer tokens with claims
    /// {"room": name or "*", "role": "publish", "watch" or "*", "exp"}. With it
    /// (or --bearer-token) every POST, PATCH and DELETE needs a token.
    #[arg(long, env = "URINGCAST_AUTH_KEY", hide_env_values = true)]
    pub auth_key: Option<String>,

    /// A static bearer token that allows everything.
    #[arg(long, env = "URINGCAST_BEARER_TOKEN", hide_env_values = true)]
    pub bearer_token: Option<String>,

    /// A static bearer token for the admin API (`/v1/rooms`: create, list,
    /// disconnect, close). Without it only `--bearer-token` or a JWT with
    /// `"admin": true` reach that API.
    #[arg(long, env = "URINGCAST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// A STUN/TURN server announced to clients as `Link: <url>; rel="ice-server"`
    /// (stun:, stuns:, turn: or turns:). Repeatable; comma-separated in the environment.
    #[arg(
        long = "ice-server",
        env = "URINGCAST_ICE_SERVER",
        value_delimiter = ','
    )]
    pub ice_servers: Vec<String>,

    /// Static username announced with the turn:/turns: servers.
    #[arg(long, env = "URINGCAST_ICE_USERNAME")]
    pub ice_username: Option<String>,

    /// Static credential announced with the turn:/turns: servers.
    #[arg(long, env = "URINGCAST_ICE_CREDENTIAL", hide_env_values = true)]
    pub ice_credential: Option<String>,

    /// Shared secret of the TURN servers (coturn use-auth-secret): each
    /// announcement carries fresh credentials, username "<expiry>:<room>",
    /// credential base64(HMAC-SHA1(secret, username)).
    #[arg(long, env = "URINGCAST_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// How long TURN credentials made from --turn-secret stay valid.
    #[arg(long, env = "URINGCAST_TURN_TTL", value_parser = parse_duration, default_value = "24h")]
    pub turn_ttl: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// An audio codec of `--audio-codecs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AudioCodec {
    Opus,
    Pcmu,
    Pcma,
    G722,
}

/// A video codec of `--video-codecs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
    H265,
    Av1,
}

impl Config {
    /// The codec allow-list of `--audio-codecs` and `--video-codecs`.
    pub fn codecs(&self) -> Result<CodecList, String> {
        use str0m::format::Codec;
        let audio: Vec<Codec> = (self.audio_codecs.iter())
            .map(|c| match c {
                AudioCodec::Opus => Codec::Opus,
                AudioCodec::Pcmu => Codec::PCMU,
                AudioCodec::Pcma => Codec::PCMA,
                AudioCodec::G722 => Codec::G722,
            })
            .collect();
        let video: Vec<Codec> = (self.video_codecs.iter())
            .map(|c| match c {
                VideoCodec::Vp8 => Codec::Vp8,
                VideoCodec::Vp9 => Codec::Vp9,
                VideoCodec::H264 => Codec::H264,
                VideoCodec::H265 => Codec::H265,
                VideoCodec::Av1 => Codec::Av1,
            })
            .collect();
        CodecList::new(&audio, &video).map_err(|e| format!("--audio-codecs/--video-codecs: {e}"))
    }

    /// Number of shards to start: `--shards`, or one per available core.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            return self.shards.min(crate::MAX_SHARDS);
        }
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(crate::MAX_SHARDS)
    }
}

/// A network in CIDR notation, or one address (a /32 or /128).
pub fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("'{text}' is neither an IP address nor a CIDR network"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_command_line() {
        let config = Config::parse_from(["uringcast"]);
        assert_eq!(config.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.udp_addr, "127.0.0.1:5004".parse().unwrap());
        assert_eq!(config.io, IoKind::Auto);
        assert_eq!(config.ice_timeout, Duration::from_secs(15));
        assert_eq!(config.connect_timeout, Duration::from_secs(15));
        assert_eq!(config.max_sessions, 10_000);
        assert_eq!(config.rate_limit, 0);
        assert_eq!(config.max_pending, 1_000);
        assert_eq!(config.body_timeout, Duration::from_secs(10));
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.max_connections, 4096);
        assert_eq!(config.max_sessions_per_ip, 0);
        assert_eq!(config.room_size, 100);
        assert_eq!(config.approval_timeout, Duration::from_secs(60));
        assert_eq!(config.max_bitrate_in, 8_000_000);
        assert_eq!(config.max_bitrate_out, 10_000_000);
        assert_eq!(config.rate_burst, 20);
        assert_eq!(config.turn_ttl, Duration::from_secs(86_400));
        assert!(config.auth_key.is_none() && config.bearer_token.is_none());
        assert!(config.ice_servers.is_empty());
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(config.log_timestamps && !config.metrics_per_room);
        assert_eq!(config.codecs(), Ok(CodecList::str0m_default()));
        assert_eq!(config.drain_timeout, Duration::from_secs(60));
        assert!(config.trust_proxy.is_empty() && config.config.is_none());
    }

    #[test]
    fn codec_lists_and_proxy_networks_parse() {
        let config = Config::parse_from([
            "uringcast",
            "--audio-codecs",
            "opus",
            "--video-codecs",
            "h264,vp8",
            "--trust-proxy",
            "10.1.2.3",
            "--trust-proxy",
            "192.168.7.9/16",
            "--log-timestamps",
            "false",
        ]);
        let codecs = config.codecs().unwrap();
        assert_eq!(codecs.describe(), "Opus, H264 and VP8");
        assert_eq!(
            config.trust_proxy,
            [
                "10.1.2.3/32".parse::<ipnet::IpNet>().unwrap(),
                "192.168.0.0/16".parse().unwrap()
            ]
        );
        assert!(!config.log_timestamps);
        assert!(Config::try_parse_from(["uringcast", "--video-codecs", "mpeg2"]).is_err());
        assert!(Config::try_parse_from(["uringcast", "--trust-proxy", "nginx"]).is_err());
    }

    #[test]
    fn ice_servers_repeat() {
        let config = Config::parse_from([
            "uringcast",
            "--ice-server",
            "stun:a.example",
            "--ice-server",
            "turn:b.example?transport=udp",
        ]);
        assert_eq!(
            config.ice_servers,
            ["stun:a.example", "turn:b.example?transport=udp"]
        );
    }
}
