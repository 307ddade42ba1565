//! Display names: the one a client asks for in its handshake, cleaned, or a random
//! two-word one like `amber-otter`.

/// Longest display name, in characters; longer ones are cut.
pub const MAX_NAME_CHARS: usize = 32;

const ADJECTIVES: [&str; 24] = [
    "amber", "brave", "calm", "dapper", "eager", "fuzzy", "gentle", "happy", "icy", "jolly",
    "kind", "lucky", "mellow", "nimble", "olive", "plucky", "quiet", "rapid", "sunny", "tidy",
    "upbeat", "vivid", "witty", "zesty",
];

const ANIMALS: [&str; 24] = [
    "otter", "badger", "crane", "dingo", "eagle", "ferret", "gecko", "heron", "ibis", "jackal",
    "koala", "lemur", "marten", "newt", "ocelot", "panda", "quail", "raven", "seal", "tapir",
    "urchin", "vole", "walrus", "yak",
];

/// The name to show for a new connection.
pub fn display_name(requested: Option<&str>) -> String {
    requested
        .map(clean)
        .filter(|name| !name.is_empty())
        .unwrap_or_else(random_name)
}

/// Control characters go, surrounding whitespace goes, and the rest is cut to
/// [`MAX_NAME_CHARS`]. Names are always shown as text, so nothing else needs escaping.
fn clean(requested: &str) -> String {
    let visible: String = requested.chars().filter(|c| !c.is_control()).collect();
    visible
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn random_name() -> String {
    let adjective = ADJECTIVES[fastrand::usize(..ADJECTIVES.len())];
    let animal = ANIMALS[fastrand::usize(..ANIMALS.len())];
    format!("{adjective}-{animal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_clean_requested_name() {
        assert_eq!(display_name(Some("Ada")), "Ada");
    }

    #[test]
    fn cleans_and_cuts_a_requested_name() {
        assert_eq!(display_name(Some("  A\u{7}da \n")), "Ada");
        assert_eq!(
            display_name(Some(&"x".repeat(100))).chars().count(),
            MAX_NAME_CHARS
        );
    }

    #[test]
    fn falls_back_to_two_random_words() {
        for requested in [None, Some(""), Some(" \u{7} ")] {
            let name = display_name(requested);
            let (adjective, animal) = name.split_once('-').unwrap();
            assert!(
                ADJECTIVES.contains(&adjective) && ANIMALS.contains(&animal),
                "{name}"
            );
        }
    }
}
