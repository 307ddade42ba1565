//! The text of a clip, as the server accepts it.

use crate::error::ClipError;

/// The most characters a clip's text may have (after cleaning).
pub const MAX_CHARS: usize = 250;

/// Clip text that is known to be clean: no control characters, no surrounding
/// whitespace, at most [`MAX_CHARS`] characters. The only way to get one is
/// [`MessageText::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    /// Control characters are removed before trimming, so a stray `\u{7}` or a trailing
    /// newline never counts towards the limit or reaches other people's screens.
    pub fn parse(raw: &str) -> Result<Self, ClipError> {
        let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
        let trimmed = cleaned.trim();
        let length = trimmed.chars().count();
        if length > MAX_CHARS {
            return Err(ClipError::TextTooLong {
                got: length,
                max: MAX_CHARS,
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_control_characters_then_trims() {
        let text = MessageText::parse("  hi\u{7} there \n").unwrap();
        assert_eq!(text.as_str(), "hi there");
    }

    #[test]
    fn empty_text_is_allowed() {
        assert_eq!(MessageText::parse("   ").unwrap().as_str(), "");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let at_limit = "é".repeat(MAX_CHARS);
        assert_eq!(MessageText::parse(&at_limit).unwrap().as_str(), at_limit);
    }

    #[test]
    fn refuses_one_character_over_the_limit() {
        let over = "a".repeat(MAX_CHARS + 1);
        assert_eq!(
            MessageText::parse(&over),
            Err(ClipError::TextTooLong { got: 251, max: 250 })
        );
    }

    #[test]
    fn surrounding_whitespace_does_not_count() {
        let padded = format!("   {}   ", "a".repeat(MAX_CHARS));
        assert!(MessageText::parse(&padded).is_ok());
    }

    #[test]
    fn html_is_kept_as_plain_text() {
        let text = MessageText::parse("<img src=x onerror=alert(1)>").unwrap();
        assert_eq!(text.as_str(), "<img src=x onerror=alert(1)>");
    }
}
