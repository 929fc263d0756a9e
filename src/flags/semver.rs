//! A small semantic-version comparison for the `semver_*` constraint operators:
//! `MAJOR.MINOR.PATCH` with an optional `-prerelease` and an ignored `+build`, ordered as
//! SemVer 2.0 orders them (a prerelease sorts before its release; prerelease identifiers
//! compare numerically when both are numeric, otherwise as ASCII, numeric before alphanumeric).
//!
//! Two leniencies, because app versions in the wild carry them: a leading `v` is accepted,
//! and numbers with leading zeros parse. The `semver` crate would be stricter and bigger than
//! what one comparison needs; this borrows from its input, so comparing an attribute value
//! allocates nothing.

use std::cmp::Ordering;

/// A parsed version borrowing its prerelease text from the input.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Dot-separated prerelease identifiers, empty for a release.
    pub pre: &'a str,
}

impl<'a> Version<'a> {
    /// Parses `[v]MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`; `None` when it is not one.
    /// One pass over the bytes: this runs for every semver constraint an evaluation checks.
    pub fn parse(text: &'a str) -> Option<Self> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let bytes = text.as_bytes();
        let mut pos = 0;
        let major = parse_digits(bytes, &mut pos)?;
        expect_dot(bytes, &mut pos)?;
        let minor = parse_digits(bytes, &mut pos)?;
        expect_dot(bytes, &mut pos)?;
        let patch = parse_digits(bytes, &mut pos)?;
        let rest = &text[pos..];
        let (pre, build) = match rest.as_bytes().first() {
            None => ("", None),
            Some(b'+') => ("", Some(&rest[1..])),
            Some(b'-') => match rest[1..].split_once('+') {
                Some((pre, build)) => (pre, Some(build)),
                None => (&rest[1..], None),
            },
            Some(_) => return None,
        };
        let pre_ok = !rest.starts_with('-') || valid_identifiers(pre);
        let build_ok = build.is_none_or(valid_identifiers);
        (pre_ok && build_ok).then_some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_prerelease(self.pre, other.pre))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version<'_> {}

/// A version kept by a compiled constraint, owning its prerelease text.
#[derive(Debug, Clone)]
pub(crate) struct OwnedVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Box<str>,
}

impl OwnedVersion {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Version::parse(text).map(|v| OwnedVersion {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre: v.pre.into(),
        })
    }

    pub(crate) fn as_version(&self) -> Version<'_> {
        Version {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: &self.pre,
        }
    }
}

/// Reads a run of ASCII digits at `pos` as a number; `None` for no digits or overflow.
fn parse_digits(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let start = *pos;
    let mut value = 0u64;
    while let Some(&digit) = bytes.get(*pos)
        && digit.is_ascii_digit()
    {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
        *pos += 1;
    }
    (*pos > start).then_some(value)
}

fn expect_dot(bytes: &[u8], pos: &mut usize) -> Option<()> {
    (bytes.get(*pos) == Some(&b'.')).then(|| *pos += 1)
}

fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn valid_identifiers(text: &str) -> bool {
    text.split('.').all(|identifier| {
        !identifier.is_empty()
            && identifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match compare_identifier(x, y) {
                Ordering::Equal => {}
                decided => return decided,
            },
        }
    }
}

fn compare_identifier(x: &str, y: &str) -> Ordering {
    match (parse_number(x), parse_number(y)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => x.cmp(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version<'_> {
        Version::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn parses_release_prerelease_build_and_a_leading_v() {
        let parsed = v("v1.22.333-rc.1+build.5");
        assert_eq!((parsed.major, parsed.minor, parsed.patch), (1, 22, 333));
        assert_eq!(parsed.pre, "rc.1");
        assert_eq!(v("2.0.0").pre, "");
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for text in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "1.2.x",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3+",
            "a.b.c",
            "1.2.-3",
            " 1.2.3",
            "99999999999999999999.0.0",
        ] {
            assert!(Version::parse(text).is_none(), "{text:?} parsed");
        }
    }

    #[test]
    fn orders_as_semver_two_does() {
        // The precedence example from the SemVer 2.0 specification, in ascending order.
        let ascending = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn build_metadata_does_not_change_equality() {
        assert_eq!(v("1.2.3+a"), v("1.2.3+b"));
        assert_eq!(v("v1.2.3"), v("1.2.3"));
    }

    #[test]
    fn owned_versions_compare_like_borrowed_ones() {
        let owned = OwnedVersion::parse("3.1.0-beta").expect("parses");
        assert!(owned.as_version() < v("3.1.0"));
        assert!(owned.as_version() > v("3.0.9"));
    }
}
