//! Which bytes of a file a request asks for (RFC 9110 §14): what `/clips/{key}.mp4`
//! answers ranges with, since Safari plays video only from a server that does.

use axum::http::{HeaderMap, header};

/// What a request for a file asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum WhichBytes {
    All,
    /// These bytes, first and last included.
    Range(std::ops::RangeInclusive<usize>),
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

impl WhichBytes {
    /// The one byte range asked for of a file of `length` bytes whose ETag is `etag`,
    /// parsed by `http-range-header`. The whole file when there is no `Range`, when
    /// `If-Range` names another version, when the header does not parse (a server may
    /// ignore it), or when it asks for several ranges: browsers ask for one, and a
    /// multipart answer would buy nothing here.
    pub fn of(request_headers: &HeaderMap, etag: &str, length: usize) -> Self {
        let Some(range) = request_headers
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok())
        else {
            return Self::All;
        };
        if let Some(if_range) = request_headers.get(header::IF_RANGE)
            && if_range.as_bytes() != etag.as_bytes()
        {
            return Self::All;
        }
        let Ok(parsed) = http_range_header::parse_range_header(range) else {
            return Self::All;
        };
        match parsed.validate(length as u64).as_deref() {
            Ok([one]) => Self::Range(*one.start() as usize..=*one.end() as usize),
            Ok(_) => Self::All,
            Err(_) => Self::Unsatisfiable,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn asking(range: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(range).unwrap());
        headers
    }

    #[test]
    fn one_range_of_each_form() {
        assert_eq!(
            WhichBytes::of(&asking("bytes=0-9"), "\"e\"", 100),
            WhichBytes::Range(0..=9)
        );
        assert_eq!(
            WhichBytes::of(&asking("bytes=90-"), "\"e\"", 100),
            WhichBytes::Range(90..=99)
        );
        assert_eq!(
            WhichBytes::of(&asking("bytes=-5"), "\"e\"", 100),
            WhichBytes::Range(95..=99)
        );
        assert_eq!(
            WhichBytes::of(&asking("bytes=50-500"), "\"e\"", 100),
            WhichBytes::Range(50..=99)
        );
    }

    #[test]
    fn past_the_end_is_unsatisfiable_and_the_rest_is_the_whole_file() {
        assert_eq!(
            WhichBytes::of(&asking("bytes=100-"), "\"e\"", 100),
            WhichBytes::Unsatisfiable
        );
        assert_eq!(
            WhichBytes::of(&HeaderMap::new(), "\"e\"", 100),
            WhichBytes::All
        );
        assert_eq!(
            WhichBytes::of(&asking("pages=1-2"), "\"e\"", 100),
            WhichBytes::All
        );
        assert_eq!(
            WhichBytes::of(&asking("bytes=0-1,5-6"), "\"e\"", 100),
            WhichBytes::All
        );
        let mut stale = asking("bytes=0-9");
        stale.insert(header::IF_RANGE, HeaderValue::from_static("\"other\""));
        assert_eq!(WhichBytes::of(&stale, "\"e\"", 100), WhichBytes::All);
        let mut current = asking("bytes=0-9");
        current.insert(header::IF_RANGE, HeaderValue::from_static("\"e\""));
        assert_eq!(
            WhichBytes::of(&current, "\"e\"", 100),
            WhichBytes::Range(0..=9)
        );
    }
}
