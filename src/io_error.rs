//! I/O errors as an operator reads them, in the one-line messages of start-up and TLS.

use std::io;

/// An I/O error as words in a sentence: "address already in use", without the "(os error
/// 98)" that means nothing to an operator.
pub fn reason(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" (os error ") {
        Some(start) if text.ends_with(')') => &text[..start],
        _ => &text,
    };
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_os_error_reads_as_words() {
        let error = io::Error::from_raw_os_error(98);
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(reason(&error), "address already in use");
    }
}
