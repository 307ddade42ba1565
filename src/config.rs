//! Runtime settings: every one is a command-line flag with an environment fallback
//! (SPEC §1), so the same binary runs on a laptop and under a process manager.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser};

use ipnet::IpNet;

use crate::ice::IceUrl;
use crate::secret::{Secret, SecretParser};

/// Settings for one loopchat server.
#[derive(Debug, Clone, Parser)]
#[command(name = "loopchat", version, about, after_help = ON_OFF_RULE)]
pub struct Config {
    /// TCP port to listen on (0 = any free port; the chosen one is printed at start).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Folder of this node's own files: the store (sled's files, and `clips/` with each
    /// clip's GIF, MP4 and poster) unless --redis-url; `id-secret` unless --id-secret or --redis-url; the
    /// certificate and key of --tls-self-signed.
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
    #[arg(long, env = "ID_SECRET", hide_env_values = true, value_parser = SecretParser(check_secret))]
    pub id_secret: Option<Secret>,

    /// Enables the moderation API under /admin/ for requests bearing this token (at least
    /// 16 characters).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, value_parser = SecretParser(check_admin_token))]
    pub admin_token: Option<Secret>,

    /// Refuse clips whose text contains profanity.
    #[arg(long, env = "FILTER_PROFANITY", action = ArgAction::SetTrue, value_parser = on_off())]
    pub filter_profanity: bool,

    /// PEM certificate chain (leaf first): serve HTTPS and WSS only. Read again on SIGHUP.
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`. Read again on SIGHUP.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// HTTPS with a certificate made once and kept in the data dir (for a LAN).
    #[arg(long, env = "TLS_SELF_SIGNED", action = ArgAction::SetTrue, value_parser = on_off())]
    pub tls_self_signed: bool,

    /// Another host name or address for the self-signed certificate (repeatable; the env
    /// variable takes a comma-separated list).
    #[arg(
        long = "tls-name",
        env = "TLS_NAME",
        value_delimiter = ',',
        value_parser = parse_tls_name,
        value_name = "NAME"
    )]
    pub tls_names: Vec<String>,

    /// Also listen on this port with plain HTTP that redirects every request to HTTPS.
    #[arg(long, env = "HTTP_REDIRECT_PORT")]
    pub http_redirect_port: Option<u16>,

    /// Cluster mode (SPEC §8): the Redis every node shares for broadcasts, presence and
    /// (unless `--store-redis-url`) the clips. A secret: the URL may carry a password.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = SecretParser(check_redis_url))]
    pub redis_url: Option<Secret>,

    /// A separate Redis for the clips, so that clip writes do not queue behind broadcasts.
    #[arg(long, env = "STORE_REDIS_URL", hide_env_values = true, requires = "redis_url",
          value_parser = SecretParser(check_redis_url))]
    pub store_redis_url: Option<Secret>,

    /// Start although the store's Redis does not fsync every write (`appendonly yes`,
    /// `appendfsync always`): an acked clip may then be lost if Redis stops.
    #[arg(long, env = "ALLOW_RELAXED_DURABILITY", action = ArgAction::SetTrue,
          value_parser = on_off())]
    pub allow_relaxed_durability: bool,

    /// STUN/TURN server URLs the call pages use (repeatable; comma-separated), e.g.
    /// `stun:stun.example.org,turn:turn.example.org?transport=tcp`. None: host candidates
    /// only, which serve a LAN.
    #[arg(
        long = "ice-servers",
        env = "ICE_SERVERS",
        value_delimiter = ',',
        value_parser = IceUrl::parse,
        value_name = "URL"
    )]
    pub ice_servers: Vec<IceUrl>,

    /// coturn's `static-auth-secret`: every turn:/turns: URL is handed out with
    /// credentials made from it that expire 12 hours later.
    #[arg(long, env = "TURN_SECRET", hide_env_values = true, value_parser = SecretParser(check_secret))]
    pub turn_secret: Option<Secret>,

    /// The most participants one call room takes.
    #[arg(long, env = "CALL_MAX", default_value_t = NonZeroUsize::new(8).unwrap())]
    pub call_max: NonZeroUsize,

    /// Reverse proxies (CIDRs or addresses; repeatable, comma-separated) whose
    /// `X-Forwarded-For` names the client. Without it, every client behind a proxy shares
    /// the proxy's limits.
    #[arg(
        long = "trusted-proxy",
        env = "TRUSTED_PROXY",
        value_delimiter = ',',
        value_parser = parse_network,
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<IpNet>,

    /// Open Socket.IO connections one client address may hold, and twice that many new
    /// ones a minute (0 = no limit). Sized for a classroom behind one NAT.
    #[arg(long, env = "MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64)]
    pub max_connections_per_address: u32,

    /// Clips one client address may send a minute, in bursts of at most half that; its
    /// reports are limited alike (0 = no limit).
    #[arg(long, env = "CLIPS_PER_ADDRESS_PER_MINUTE", default_value_t = 40)]
    pub clips_per_address_per_minute: u32,
}

/// How the environment variable of every on/off setting is read, said once in `--help`.
const ON_OFF_RULE: &str = "The variable of an on/off setting (FILTER_PROFANITY, TLS_SELF_SIGNED, \
ALLOW_RELAXED_DURABILITY) takes true/false, yes/no, on/off or 1/0, in any case.";

/// One rule for every on/off setting's variable, so that an operator need not remember
/// which setting takes which words: clap's boolish words, in any case.
fn on_off() -> BoolishValueParser {
    BoolishValueParser::new()
}

/// A `--trusted-proxy` value: a CIDR, or a bare address meaning just that address.
fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|network| network.trunc())
        .map_err(|_| format!("{text:?} is not an address or a CIDR such as 10.0.0.0/8"))
}

fn check_secret(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("must not be empty");
    }
    Ok(())
}

/// Short tokens can be guessed; 16 characters is the least SPEC §10 accepts.
fn check_admin_token(text: &str) -> Result<(), &'static str> {
    if text.chars().count() < 16 {
        return Err("must be at least 16 characters");
    }
    Ok(())
}

/// A Redis URL the `redis` crate can open (`redis://`, `rediss://`, `unix://`).
fn check_redis_url(text: &str) -> Result<(), &'static str> {
    redis::Client::open(text)
        .map(drop)
        .map_err(|_| "is not a Redis URL (redis://host:port/)")
}

/// Where the TLS certificate comes from, if the server speaks TLS at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// The operator's PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// A certificate this server made for itself (and for these extra names) in the data dir.
    SelfSigned { names: Vec<String> },
}

impl Config {
    /// The settings from the command line and the environment; on a usage error (clap's,
    /// or [`Config::check`]'s) the process prints it and exits, as clap does.
    pub fn from_command_line() -> Self {
        use clap::CommandFactory;
        let config = Self::parse();
        if let Err(problem) = config.check() {
            Self::command()
                .error(clap::error::ErrorKind::ArgumentConflict, problem)
                .exit();
        }
        config
    }

    /// The settings that only make sense with another one, checked by value. clap's
    /// `requires` and groups count an on/off variable set to "off" (`TLS_SELF_SIGNED=0`) as
    /// given: `HTTP_REDIRECT_PORT` then started a plain-HTTP redirect to an HTTPS port that
    /// nothing served, and `ALLOW_RELAXED_DURABILITY=off` refused to start without Redis.
    pub fn check(&self) -> Result<(), String> {
        if self.tls_cert.is_some() && self.tls_self_signed {
            return Err(
                "--tls-cert/--tls-key and --tls-self-signed cannot be used together".into(),
            );
        }
        if !self.tls_names.is_empty() && !self.tls_self_signed {
            return Err("--tls-name needs --tls-self-signed".into());
        }
        if self.http_redirect_port.is_some() && self.tls().is_none() {
            return Err(
                "--http-redirect-port needs HTTPS: --tls-cert and --tls-key, or --tls-self-signed"
                    .into(),
            );
        }
        if self.allow_relaxed_durability && self.redis_url.is_none() {
            return Err("--allow-relaxed-durability needs --redis-url".into());
        }
        Ok(())
    }

    /// The TLS settings, or `None` for plain HTTP.
    pub fn tls(&self) -> Option<TlsMode> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsMode::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ if self.tls_self_signed => Some(TlsMode::SelfSigned {
                names: self.tls_names.clone(),
            }),
            _ => None,
        }
    }

    /// Parses `args` as if no environment variable were set. clap reads each setting's
    /// variable as it builds the command, so a test that parsed with them would pass or
    /// fail with the shell it runs in (a `PORT` or a `CLIP_TTL` set there).
    #[cfg(test)]
    pub(crate) fn from_args_only<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Self::command().mut_args(|arg| arg.env(None::<&'static str>));
        let config = Self::from_arg_matches_mut(&mut command.clone().try_get_matches_from(args)?)?;
        match config.check() {
            Ok(()) => Ok(config),
            Err(problem) => Err(command.error(clap::error::ErrorKind::ArgumentConflict, problem)),
        }
    }
}

/// A name a certificate can be for: a DNS name or an IP address, nothing else (no
/// wildcard, no port, no URL), so that a typo is refused at start instead of making a
/// certificate nobody can use.
fn parse_tls_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    rustls::pki_types::ServerName::try_from(name)
        .map(|_| name.to_owned())
        .map_err(|_| "not a host name or an IP address".into())
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
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let config = Config::from_args_only(["loopchat"]).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.bind.to_string(), "0.0.0.0");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.clip_ttl, Duration::from_secs(600));
        assert_eq!(config.sweep_every, Duration::from_secs(10));
        assert_eq!(config.replay, 10);
        assert_eq!(config.frame_delay, Duration::from_millis(200));
        assert_eq!(config.tls(), None);
        assert_eq!(config.http_redirect_port, None);
        assert!(config.ice_servers.is_empty());
        assert!(config.turn_secret.is_none());
        assert_eq!(config.call_max.get(), 8);
    }

    #[test]
    fn ice_servers_are_a_list_of_checked_urls() {
        let config = Config::from_args_only([
            "loopchat",
            "--ice-servers",
            "stun:stun.example.org, turn:turn.example.org?transport=tcp",
            "--ice-servers",
            "turns:turn.example.org",
        ])
        .unwrap();
        let urls: Vec<_> = config.ice_servers.iter().map(IceUrl::as_str).collect();
        assert_eq!(
            urls,
            [
                "stun:stun.example.org",
                "turn:turn.example.org?transport=tcp",
                "turns:turn.example.org"
            ]
        );
        let refused = Config::from_args_only(["loopchat", "--ice-servers", "https://stun.example"])
            .unwrap_err()
            .to_string();
        assert!(refused.contains("--ice-servers"), "{refused}");
        assert!(
            refused.contains("stun:, stuns:, turn: or turns:"),
            "{refused}"
        );
    }

    #[test]
    fn call_max_is_at_least_one() {
        let config = Config::from_args_only(["loopchat", "--call-max", "2"]).unwrap();
        assert_eq!(config.call_max.get(), 2);
        assert!(Config::from_args_only(["loopchat", "--call-max", "0"]).is_err());
        assert!(Config::from_args_only(["loopchat", "--call-max", "-1"]).is_err());
    }

    #[test]
    fn a_certificate_needs_its_key_and_the_other_way_round() {
        assert!(Config::from_args_only(["loopchat", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::from_args_only(["loopchat", "--tls-key", "k.pem"]).is_err());
        let config =
            Config::from_args_only(["loopchat", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
                .unwrap();
        assert_eq!(
            config.tls(),
            Some(TlsMode::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
    }

    #[test]
    fn self_signed_takes_repeated_names_and_excludes_files() {
        let config = Config::from_args_only([
            "loopchat",
            "--tls-self-signed",
            "--tls-name",
            "chat.lan",
            "--tls-name",
            "192.168.1.5",
        ])
        .unwrap();
        assert_eq!(
            config.tls(),
            Some(TlsMode::SelfSigned {
                names: vec!["chat.lan".into(), "192.168.1.5".into()]
            })
        );
        let both = [
            "loopchat",
            "--tls-self-signed",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ];
        assert!(Config::from_args_only(both).is_err());
        assert!(Config::from_args_only(["loopchat", "--tls-name", "chat.lan"]).is_err());
    }

    #[test]
    fn a_tls_name_must_be_a_host_name_or_an_address() {
        for bad in [
            "https://chat.lan",
            "chat.lan:8443",
            "two words",
            "*.lan",
            "",
        ] {
            let parsed =
                Config::from_args_only(["loopchat", "--tls-self-signed", "--tls-name", bad]);
            assert!(parsed.is_err(), "{bad:?}");
        }
        for good in ["chat.lan", "192.168.1.5", "fe80::1", "my-pc"] {
            let parsed =
                Config::from_args_only(["loopchat", "--tls-self-signed", "--tls-name", good]);
            assert!(parsed.is_ok(), "{good:?}");
        }
    }

    /// An on/off variable set to "off" is parsed as given-and-false, which is what a
    /// config built by hand with the setting false stands for here.
    #[test]
    fn settings_that_need_another_are_checked_by_value_not_by_presence() {
        let plain = Config::from_args_only(["loopchat"]).unwrap();
        let redirect_without_tls = Config {
            http_redirect_port: Some(8080),
            tls_self_signed: false,
            ..plain.clone()
        };
        assert!(
            redirect_without_tls.check().is_err(),
            "TLS_SELF_SIGNED=0 is no TLS"
        );
        let redirect_with_tls = Config {
            tls_self_signed: true,
            ..redirect_without_tls
        };
        assert_eq!(redirect_with_tls.check(), Ok(()));
        let durability_off = Config {
            allow_relaxed_durability: false,
            ..plain.clone()
        };
        assert_eq!(
            durability_off.check(),
            Ok(()),
            "ALLOW_RELAXED_DURABILITY=off needs nothing"
        );
        let durability_on = Config {
            allow_relaxed_durability: true,
            ..plain
        };
        assert!(durability_on.check().is_err());
    }

    #[test]
    fn the_redirect_listener_needs_tls() {
        assert!(Config::from_args_only(["loopchat", "--http-redirect-port", "80"]).is_err());
        let config = Config::from_args_only([
            "loopchat",
            "--tls-self-signed",
            "--http-redirect-port",
            "80",
        ])
        .unwrap();
        assert_eq!(config.http_redirect_port, Some(80));
    }

    #[test]
    fn durations_are_humantime() {
        let config =
            Config::from_args_only(["loopchat", "--clip-ttl", "2s", "--sweep-every", "500ms"])
                .unwrap();
        assert_eq!(config.clip_ttl, Duration::from_secs(2));
        assert_eq!(config.sweep_every, Duration::from_millis(500));
    }

    #[test]
    fn secrets_are_never_printed() {
        let config = Config::from_args_only([
            "loopchat",
            "--admin-token",
            "a-long-admin-token-1",
            "--id-secret",
            "hush-hush",
            "--redis-url",
            "redis://:redis-password@127.0.0.1:6379/",
            "--turn-secret",
            "turn-hush",
        ])
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("a-long-admin-token-1"), "{printed}");
        assert!(!printed.contains("hush-hush"), "{printed}");
        assert!(!printed.contains("redis-password"), "{printed}");
        assert!(!printed.contains("turn-hush"), "{printed}");
        assert_eq!(config.admin_token.unwrap().expose(), "a-long-admin-token-1");
    }

    #[test]
    fn the_store_redis_and_relaxed_durability_need_cluster_mode() {
        for flags in [
            &["--store-redis-url", "redis://127.0.0.1:1/"][..],
            &["--allow-relaxed-durability"][..],
        ] {
            let args = std::iter::once("loopchat").chain(flags.iter().copied());
            assert!(Config::from_args_only(args).is_err(), "{flags:?}");
        }
        assert!(Config::from_args_only(["loopchat", "--redis-url", "http://x/"]).is_err());
    }

    #[test]
    fn a_short_admin_token_is_refused() {
        assert!(Config::from_args_only(["loopchat", "--admin-token", "too-short"]).is_err());
    }

    /// The refusal names the setting and why, and never the value: it ends up in logs.
    #[test]
    fn a_refused_secret_is_never_quoted() {
        for (flag, value, reason) in [
            (
                "--admin-token",
                "hunter2-short",
                "must be at least 16 characters",
            ),
            (
                "--redis-url",
                "redis://:hunter2@db:port/",
                "is not a Redis URL",
            ),
            (
                "--store-redis-url",
                "redis://:hunter2@db:port/",
                "is not a Redis URL",
            ),
            ("--id-secret", "", "must not be empty"),
            ("--turn-secret", "", "must not be empty"),
        ] {
            let mut args = vec!["loopchat", flag, value];
            if flag == "--store-redis-url" {
                args.extend(["--redis-url", "redis://127.0.0.1:1/"]);
            }
            let message = Config::from_args_only(args).unwrap_err().to_string();
            assert!(
                message.contains(flag) && message.contains(reason),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn good_secrets_are_kept_as_given() {
        let config = Config::from_args_only([
            "loopchat",
            "--admin-token",
            "a-token-of-sixteen+",
            "--redis-url",
            "redis://:pw@127.0.0.1:6379/",
        ])
        .unwrap();
        assert_eq!(config.admin_token.unwrap().expose(), "a-token-of-sixteen+");
        assert_eq!(
            config.redis_url.unwrap().expose(),
            "redis://:pw@127.0.0.1:6379/"
        );
    }

    #[test]
    fn a_zero_sweep_period_is_refused() {
        assert!(Config::from_args_only(["loopchat", "--sweep-every", "0s"]).is_err());
    }

    /// What the on/off setting read from `variable` becomes when the variable holds
    /// `value`. clap runs a variable's value through its setting's parser; this runs the
    /// same parser, as the environment itself cannot be set safely while other tests run.
    fn from_variable(variable: &str, value: &str) -> Result<bool, clap::Error> {
        use clap::CommandFactory;
        let command = Config::command();
        let setting = command
            .get_arguments()
            .find(|arg| arg.get_env() == Some(OsStr::new(variable)))
            .unwrap_or_else(|| panic!("no setting reads {variable}"));
        assert!(
            matches!(setting.get_action(), ArgAction::SetTrue),
            "{variable} is read by an on/off setting, off unless given"
        );
        let value_only = clap::Arg::new("value").value_parser(setting.get_value_parser().clone());
        let matches = clap::Command::new("setting")
            .arg(value_only)
            .try_get_matches_from(["setting", value])?;
        Ok(*matches.get_one::<bool>("value").expect("a value is given"))
    }

    /// The README's rule for every on/off setting's variable.
    fn assert_takes_the_on_off_words(variable: &str) {
        for on in ["true", "yes", "on", "1", "TRUE", "Yes", "On", "t", "Y"] {
            assert!(from_variable(variable, on).unwrap(), "{variable}={on}");
        }
        for off in ["false", "no", "off", "0", "False", "NO", "oFF", "f", "n"] {
            assert!(!from_variable(variable, off).unwrap(), "{variable}={off}");
        }
        for neither in ["maybe", "2", "enabled", "tru"] {
            assert!(
                from_variable(variable, neither).is_err(),
                "{variable}={neither}"
            );
        }
    }

    #[test]
    fn filter_profanity_takes_the_on_off_words() {
        assert_takes_the_on_off_words("FILTER_PROFANITY");
    }

    #[test]
    fn tls_self_signed_takes_the_on_off_words() {
        assert_takes_the_on_off_words("TLS_SELF_SIGNED");
    }

    #[test]
    fn allow_relaxed_durability_takes_the_on_off_words() {
        assert_takes_the_on_off_words("ALLOW_RELAXED_DURABILITY");
    }

    #[test]
    fn trusted_proxy_takes_cidrs_and_bare_addresses() {
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap(),
            "10.0.0.0/8".parse().unwrap()
        );
        assert_eq!(
            parse_network("10.1.2.3/8").unwrap(),
            "10.0.0.0/8".parse().unwrap()
        );
        assert_eq!(parse_network("::1").unwrap(), "::1/128".parse().unwrap());
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("proxy.example").is_err());
    }
}
