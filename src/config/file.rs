//! The configuration's layers: a flag beats the environment, which beats
//! `--config FILE` (TOML, keys named as the flags), which beats the
//! default. clap parses flags, environment and defaults; a file's key is
//! injected as a flag only where clap's value came from a default, and the
//! whole is parsed again. An unknown key is an error naming it.
//! `--print-config` renders the effective values (secrets masked), each
//! with where it came from; SIGHUP compares two loads key by key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use super::Config;

/// Keys SIGHUP applies to a running server; a change to any other key is
/// logged as needing a restart.
pub const RELOADABLE: &[&str] = &[
    "tls-cert",
    "tls-key",
    "auth-key",
    "bearer-token",
    "admin-token",
    "ice-server",
    "ice-username",
    "ice-credential",
    "turn-secret",
    "turn-ttl",
    "rate-limit",
    "rate-burst",
    "drain-timeout",
];

/// Keys a file may not set.
const NOT_IN_FILE: &[&str] = &["config", "print-config", "help", "version"];

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flags or environment (also `--help` and `--version`, which
    /// clap prints and exits on).
    #[error(transparent)]
    Args(#[from] clap::Error),
    #[error("--config {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("--config {path}: unknown key '{key}'")]
    UnknownKey { path: PathBuf, key: String },
    #[error("--config {path}: key '{key}': {reason}")]
    BadValue {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// A parsed configuration and where each of its values came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    matches: ArgMatches,
    /// Keys that came from the file.
    from_file: Vec<String>,
}

/// Parses `args` (the program name first), the environment and, if named,
/// the `--config` file.
pub fn load<I, T>(args: I) -> Result<Loaded, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // A first, lenient pass finds the file and what flags and environment
    // set: a flag whose partner comes from the file (`--tls-cert` here,
    // `tls-key` there) must not fail it. The last pass is strict.
    let lenient = Config::command()
        .ignore_errors(true)
        .try_get_matches_from(&args);
    let path = lenient
        .as_ref()
        .ok()
        .and_then(|m| m.get_one::<PathBuf>("config").cloned());
    let Some(path) = path else {
        let matches = Config::command().try_get_matches_from(&args)?;
        let config = Config::from_arg_matches(&matches)?;
        return Ok(Loaded {
            config,
            matches,
            from_file: Vec::new(),
        });
    };
    let matches = lenient?;
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let command = Config::command();
    let mut injected = Vec::new();
    let mut from_file = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()))
            .filter(|_| !NOT_IN_FILE.contains(&name.as_str()))
            .ok_or_else(|| ConfigError::UnknownKey {
                path: path.clone(),
                key: key.clone(),
            })?;
        let bad = |reason: String| ConfigError::BadValue {
            path: path.clone(),
            key: key.clone(),
            reason,
        };
        let values = scalars(value).map_err(bad)?;
        if let Some(ValueSource::CommandLine | ValueSource::EnvVariable) =
            matches.value_source(arg.get_id().as_str())
        {
            continue;
        }
        from_file.push(name.clone());
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            match values.as_slice() {
                [v] if v == "true" => injected.push(OsString::from(format!("--{name}"))),
                [v] if v == "false" => {}
                _ => return Err(bad("true or false".into())),
            }
            continue;
        }
        if values.len() > 1 && !matches!(arg.get_action(), ArgAction::Append) {
            return Err(bad("one value, not a list".into()));
        }
        injected.extend(
            values
                .iter()
                .map(|v| OsString::from(format!("--{name}={v}"))),
        );
    }
    let all: Vec<OsString> = args.into_iter().chain(injected).collect();
    let matches = Config::command()
        .try_get_matches_from(&all)
        .map_err(|e| ConfigError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let config = Config::from_arg_matches(&matches)?;
    Ok(Loaded {
        config,
        matches,
        from_file,
    })
}

/// A TOML value as the strings a flag takes: a scalar, or a list of them.
fn scalars(value: &toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Integer(i) => Ok(vec![i.to_string()]),
        toml::Value::Float(f) => Ok(vec![f.to_string()]),
        toml::Value::Boolean(b) => Ok(vec![b.to_string()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    Err("a list of plain values".to_owned())
                }
                other => scalars(other).map(|mut v| v.remove(0)),
            })
            .collect(),
        toml::Value::Datetime(_) => Err("a date is not a value of any option".into()),
        toml::Value::Table(_) => Err("a table is not a value of any option".into()),
    }
}

impl Loaded {
    /// Every option's effective value as text (secrets included), by key;
    /// an unset option is absent.
    pub fn values(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for arg in Config::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if NOT_IN_FILE.contains(&long) {
                continue;
            }
            let Ok(Some(raw)) = self.matches.try_get_raw(arg.get_id().as_str()) else {
                continue;
            };
            let values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
            out.insert(long.to_owned(), values);
        }
        out
    }

    /// The effective configuration as a TOML file that `--config` reads
    /// back: each key with where its value came from, secrets as `"***"`,
    /// unset options commented out.
    pub fn to_toml(&self) -> String {
        let values = self.values();
        let mut out = String::from("# uringcast: the effective configuration\n");
        for arg in Config::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if NOT_IN_FILE.contains(&long) {
                continue;
            }
            let Some(raw) = values.get(long) else {
                out.push_str(&format!("# {long} = (unset)\n"));
                continue;
            };
            let secret = arg.is_hide_env_values_set();
            let render = |v: &String| {
                if secret {
                    "\"***\"".to_owned()
                } else if v == "true" || v == "false" || v.parse::<i64>().is_ok() {
                    v.clone()
                } else {
                    toml::Value::String(v.clone()).to_string()
                }
            };
            let rendered = if matches!(arg.get_action(), ArgAction::Append) {
                let items: Vec<String> = raw.iter().map(render).collect();
                format!("[{}]", items.join(", "))
            } else {
                raw.first().map(render).unwrap_or_default()
            };
            let source = match self.matches.value_source(arg.get_id().as_str()) {
                Some(ValueSource::CommandLine) if self.from_file.iter().any(|k| k == long) => {
                    "file"
                }
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                _ => "default",
            };
            out.push_str(&format!("{long} = {rendered}  # {source}\n"));
        }
        out
    }
}

/// `--print-config`'s output for `loaded`.
pub fn print_effective(loaded: &Loaded) -> String {
    loaded.to_toml()
}

/// The keys whose values differ between `old` and `new`: those SIGHUP
/// applies, and those that need a restart.
pub fn reloadable_changes(old: &Loaded, new: &Loaded) -> (Vec<String>, Vec<String>) {
    let (a, b) = (old.values(), new.values());
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let changed = keys.into_iter().filter(|k| a.get(*k) != b.get(*k));
    changed
        .map(|k| k.to_owned())
        .partition(|k| RELOADABLE.contains(&k.as_str()))
}

#[cfg(test)]
mod tests;
