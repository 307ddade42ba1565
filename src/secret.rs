//! A setting that must never be printed — a token, a key, a URL that may carry a password —
//! and how clap reads one without quoting it.

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

/// Reads a secret setting, checked by the function it holds, without ever quoting it:
/// clap's own message for a bad value repeats the value, and that message ends up in the
/// service's log, so a mistyped token or a Redis URL's password would be kept there.
#[derive(Clone, Copy)]
pub(crate) struct SecretParser(pub(crate) fn(&str) -> Result<(), &'static str>);

impl clap::builder::TypedValueParser for SecretParser {
    type Value = Secret;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Secret, clap::Error> {
        let name = arg
            .and_then(clap::Arg::get_long)
            .map_or_else(|| "a secret setting".to_owned(), |long| format!("--{long}"));
        let refuse = |reason: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{name} {reason} (its value is not shown, as it is a secret)\n"),
            )
            .with_cmd(command)
        };
        let text = value.to_str().ok_or_else(|| refuse("is not valid UTF-8"))?;
        (self.0)(text).map_err(refuse)?;
        Ok(Secret(text.to_owned()))
    }
}
