//! Runtime settings: every one is a command-line flag with an environment fallback
//! (SPEC §1), so the same binary runs on a laptop and under a process manager.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Settings for one loopchat server.
#[derive(Debug, Clone, Parser)]
#[command(name = "loopchat", version, about)]
pub struct Config {
    /// TCP port to listen on (0 = any free port; the chosen one is printed at start).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Folder of the sled database that holds the clips.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// How long a clip lives after it was created.
    #[arg(long, env = "CLIP_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub clip_ttl: Duration,

    /// How often the background sweep removes expired clips from the store.
    #[arg(long, env = "SWEEP_EVERY", default_value = "10s", value_parser = parse_positive_duration)]
    pub sweep_every: Duration,

    /// How many of the newest clips a new connection is sent.
    #[arg(long, env = "REPLAY", default_value_t = 10)]
    pub replay: usize,

    /// Delay between the frames of a clip's GIF.
    #[arg(long, env = "FRAME_DELAY", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub frame_delay: Duration,

    /// The key that turns a browser's token into its user id (SPEC §10); made once and
    /// kept in the data dir when not given.
    #[arg(long, env = "ID_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub id_secret: Option<Secret>,

    /// Enables the moderation API under /admin/ for requests bearing this token (at least
    /// 16 characters).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, value_parser = parse_admin_token)]
    pub admin_token: Option<Secret>,

    /// Refuse clips whose text contains profanity.
    #[arg(long, env = "FILTER_PROFANITY")]
    pub filter_profanity: bool,
}

/// A setting that must never be printed: its `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(…)")
    }
}

fn parse_secret(text: &str) -> Result<Secret, String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(Secret(text.to_owned()))
}

/// Short tokens can be guessed; 16 characters is the least SPEC §10 accepts.
fn parse_admin_token(text: &str) -> Result<Secret, String> {
    if text.chars().count() < 16 {
        return Err("must be at least 16 characters".into());
    }
    Ok(Secret(text.to_owned()))
}

/// A zero period would make the sweep spin, so it is refused at start-up.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let config = Config::try_parse_from(["loopchat"]).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.bind.to_string(), "0.0.0.0");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.clip_ttl, Duration::from_secs(600));
        assert_eq!(config.sweep_every, Duration::from_secs(10));
        assert_eq!(config.replay, 10);
        assert_eq!(config.frame_delay, Duration::from_millis(200));
    }

    #[test]
    fn durations_are_humantime() {
        let config =
            Config::try_parse_from(["loopchat", "--clip-ttl", "2s", "--sweep-every", "500ms"])
                .unwrap();
        assert_eq!(config.clip_ttl, Duration::from_secs(2));
        assert_eq!(config.sweep_every, Duration::from_millis(500));
    }

    #[test]
    fn secrets_are_never_printed() {
        let config = Config::try_parse_from([
            "loopchat",
            "--admin-token",
            "a-long-admin-token-1",
            "--id-secret",
            "hush-hush",
        ])
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("a-long-admin-token-1"), "{printed}");
        assert!(!printed.contains("hush-hush"), "{printed}");
        assert_eq!(config.admin_token.unwrap().expose(), "a-long-admin-token-1");
    }

    #[test]
    fn a_short_admin_token_is_refused() {
        assert!(Config::try_parse_from(["loopchat", "--admin-token", "too-short"]).is_err());
    }

    #[test]
    fn a_zero_sweep_period_is_refused() {
        assert!(Config::try_parse_from(["loopchat", "--sweep-every", "0s"]).is_err());
    }
}
