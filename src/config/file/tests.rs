use std::time::Duration;

use super::*;

/// A config file in a directory of its own; removed with it.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("uringcast-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("uringcast.toml");
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn arg(&self) -> String {
        format!("--config={}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn a_file_sets_what_no_flag_sets_and_a_flag_wins() {
    let file = TempFile::new(
        "layers",
        r#"
http-addr = "127.0.0.1:9000"
max_sessions = 7
ice-server = ["stun:a.example", "stun:b.example"]
metrics-per-room = true
connect-timeout = "3s"
"#,
    );
    let loaded = load(["uringcast", &file.arg(), "--max-sessions", "9"]).unwrap();
    let config = &loaded.config;
    assert_eq!(config.http_addr, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(config.max_sessions, 9, "the flag beats the file");
    assert_eq!(config.ice_servers, ["stun:a.example", "stun:b.example"]);
    assert!(config.metrics_per_room);
    assert_eq!(config.connect_timeout, Duration::from_secs(3));
    assert_eq!(
        config.max_pending, 1_000,
        "untouched keys keep their default"
    );

    let toml = loaded.to_toml();
    assert!(
        toml.contains("http-addr = \"127.0.0.1:9000\"  # file"),
        "{toml}"
    );
    assert!(toml.contains("max-sessions = 9  # flag"), "{toml}");
    assert!(toml.contains("max-pending = 1000  # default"), "{toml}");
    assert!(toml.contains("# tls-cert = (unset)"), "{toml}");
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let file = TempFile::new("unknown", "http-adr = \"127.0.0.1:1\"\n");
    let error = load(["uringcast", &file.arg()]).unwrap_err();
    assert!(matches!(&error, ConfigError::UnknownKey { key, .. } if key == "http-adr"));
    assert!(error.to_string().contains("'http-adr'"), "{error}");

    let file = TempFile::new("bad", "max-sessions = \"many\"\n");
    let error = load(["uringcast", &file.arg()]).unwrap_err().to_string();
    assert!(error.contains("many"), "{error}");

    let file = TempFile::new("nested", "config = \"/etc/other.toml\"\n");
    let error = load(["uringcast", &file.arg()]).unwrap_err();
    assert!(matches!(error, ConfigError::UnknownKey { .. }));

    let file = TempFile::new("list", "udp-addr = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n");
    let error = load(["uringcast", &file.arg()]).unwrap_err();
    assert!(matches!(error, ConfigError::BadValue { .. }), "{error}");

    let missing = load(["uringcast", "--config=/nonexistent/uringcast.toml"]).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/uringcast.toml"));
}

#[test]
fn printed_secrets_are_masked_and_the_output_reads_back() {
    let file = TempFile::new(
        "secrets",
        "bearer-token = \"s3cret-token\"\nvideo-codecs = [\"h264\"]\n",
    );
    let loaded = load(["uringcast", &file.arg(), "--rate-limit", "5"]).unwrap();
    let printed = print_effective(&loaded);
    assert!(!printed.contains("s3cret-token"), "{printed}");
    assert!(printed.contains("bearer-token = \"***\""), "{printed}");
    assert!(printed.contains("video-codecs = [\"h264\"]"), "{printed}");

    // Without the masked key, what was printed is a config file that gives
    // the same configuration.
    let unmasked: String = printed
        .lines()
        .filter(|l| !l.contains("***"))
        .map(|l| format!("{l}\n"))
        .collect();
    let again = TempFile::new("again", &unmasked);
    let reread = load(["uringcast", &again.arg()]).unwrap();
    let mut expected = loaded.values();
    expected.remove("bearer-token");
    assert_eq!(reread.values(), expected);
}

#[test]
fn reload_sorts_changes_into_applied_and_restart() {
    let old = load(["uringcast", "--rate-limit", "5"]).unwrap();
    let new = load(["uringcast", "--rate-limit", "6", "--max-sessions", "3"]).unwrap();
    let (applied, restart) = reloadable_changes(&old, &new);
    assert_eq!(applied, ["rate-limit"]);
    assert_eq!(restart, ["max-sessions"]);
}

#[test]
fn a_flag_may_need_a_partner_that_the_file_gives() {
    let file = TempFile::new("partner", "tls-key = \"/etc/uringcast/key.pem\"\n");
    let loaded = load([
        "uringcast",
        &file.arg(),
        "--tls-cert",
        "/etc/uringcast/cert.pem",
    ])
    .unwrap();
    assert_eq!(
        loaded.config.tls_key.as_deref(),
        Some(std::path::Path::new("/etc/uringcast/key.pem"))
    );
    // Without the file, the partner is missing: refused.
    assert!(load(["uringcast", "--tls-cert", "/etc/uringcast/cert.pem"]).is_err());
}
