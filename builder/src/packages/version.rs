//! Alpine version ordering (`1.2.3_rc1-r0`), as apk-tools defines it.
//!
//! Hand-written: no maintained crate implements apk's ordering; this follows apk-tools'
//! tokenizer (digits, one letter, `_suffix[N]`, `-rN`) so results match `apk version -t`.

use std::cmp::Ordering;

/// Where the tokenizer is in a version string; the order matters (see [`compare`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    Invalid,
    /// A digit group after `.`: leading zeros compare specially (`1.05` < `1.5`).
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

const PRE_SUFFIXES: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST_SUFFIXES: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

struct Tokens<'a> {
    rest: &'a [u8],
    kind: Token,
}

impl<'a> Tokens<'a> {
    fn new(v: &'a str) -> Self {
        Tokens {
            rest: v.as_bytes(),
            kind: Token::Digit,
        }
    }

    /// Decide what kind the next token is from the separator in front of it.
    fn advance_kind(&mut self) {
        let prev = self.kind;
        let Some(&c) = self.rest.first() else {
            self.kind = Token::End;
            return;
        };
        let mut next = Token::Invalid;
        if matches!(prev, Token::Digit | Token::DigitOrZero) && c.is_ascii_lowercase() {
            next = Token::Letter;
        } else if prev == Token::Letter && c.is_ascii_digit() {
            next = Token::Digit;
        } else if prev == Token::Suffix && c.is_ascii_digit() {
            next = Token::SuffixNo;
        } else {
            match c {
                b'.' => next = Token::DigitOrZero,
                b'_' => next = Token::Suffix,
                b'-' if self.rest.get(1) == Some(&b'r') => {
                    next = Token::RevisionNo;
                    self.rest = &self.rest[1..];
                }
                _ => {}
            }
            self.rest = &self.rest[1..];
        }
        let allowed_backwards = matches!(
            (next, prev),
            (Token::DigitOrZero, Token::Digit)
                | (Token::Suffix, Token::SuffixNo)
                | (Token::Digit, Token::Letter)
        );
        if next < prev && !allowed_backwards {
            next = Token::Invalid;
        }
        self.kind = next;
    }

    /// Read the value of the current token and move on (kind becomes `Invalid` on bad input).
    fn next_value(&mut self) -> i128 {
        if self.rest.is_empty() {
            self.kind = Token::End;
            return 0;
        }
        let mut value: i128 = 0;
        let mut used = 0;
        let mut forced_next = None;
        match self.kind {
            Token::DigitOrZero if self.rest[0] == b'0' => {
                used = self.rest.iter().take_while(|&&c| c == b'0').count();
                value = -(used as i128);
                forced_next = Some(Token::Digit);
            }
            Token::DigitOrZero | Token::Digit | Token::SuffixNo | Token::RevisionNo => {
                for &c in self.rest.iter().take_while(|c| c.is_ascii_digit()) {
                    value = value.saturating_mul(10).saturating_add((c - b'0') as i128);
                    used += 1;
                }
            }
            Token::Letter => {
                value = self.rest[0] as i128;
                used = 1;
            }
            Token::Suffix => {
                if let Some(i) = PRE_SUFFIXES
                    .iter()
                    .position(|s| self.rest.starts_with(s.as_bytes()))
                {
                    used = PRE_SUFFIXES[i].len();
                    value = i as i128 - PRE_SUFFIXES.len() as i128;
                } else if let Some(i) = POST_SUFFIXES
                    .iter()
                    .position(|s| self.rest.starts_with(s.as_bytes()))
                {
                    used = POST_SUFFIXES[i].len();
                    value = i as i128;
                } else {
                    self.kind = Token::Invalid;
                    return -1;
                }
            }
            Token::Invalid | Token::End => {
                self.kind = Token::Invalid;
                return -1;
            }
        }
        self.rest = &self.rest[used..];
        if self.rest.is_empty() {
            self.kind = Token::End;
        } else if let Some(k) = forced_next {
            self.kind = k;
        } else {
            self.advance_kind();
        }
        value
    }
}

/// Is `v` a well-formed Alpine version?
pub fn is_valid(v: &str) -> bool {
    let mut t = Tokens::new(v);
    while !matches!(t.kind, Token::End | Token::Invalid) {
        t.next_value();
    }
    t.kind == Token::End && !v.is_empty()
}

/// Compare two Alpine versions. With `fuzzy`, a version equals any longer version it is a
/// prefix of (the `~` operator: `1.2.3` matches `~1.2`).
fn compare_inner(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    let (mut av, mut bv) = (0, 0);
    while ta.kind == tb.kind && !matches!(ta.kind, Token::End | Token::Invalid) && av == bv {
        av = ta.next_value();
        bv = tb.next_value();
    }
    match av.cmp(&bv) {
        Ordering::Equal => {}
        other => return other,
    }
    if ta.kind == tb.kind || fuzzy {
        return Ordering::Equal;
    }
    // Same leading components: the longer version is newer, unless what follows is a
    // pre-release suffix (`1.0_rc1` < `1.0`).
    if ta.kind == Token::Suffix && ta.next_value() < 0 {
        return Ordering::Less;
    }
    if tb.kind == Token::Suffix && tb.next_value() < 0 {
        return Ordering::Greater;
    }
    // A later token kind ends the version sooner: the other one has more, so is greater.
    tb.kind.cmp(&ta.kind)
}

/// Compare two Alpine versions (`1.2.3_rc1-r0` < `1.2.3-r0` < `1.2.3a-r0` < `1.2.3_p1-r0`).
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_inner(a, b, false)
}

/// The `~` operator: does `version` start with the components of `prefix`?
pub fn fuzzy_matches(version: &str, prefix: &str) -> bool {
    compare_inner(version, prefix, true) == Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs from apk-tools' own test vectors (test/version.data) plus Alpine-style revisions.
    const VECTORS: &[(&str, char, &str)] = &[
        ("2.34", '>', "0.1.0_alpha"),
        ("0.1.0_alpha", '=', "0.1.0_alpha"),
        ("0.1.0_alpha2", '>', "0.1.0_alpha"),
        ("1.0.4-r3", '<', "1.0.4-r4"),
        ("1.1", '>', "1.1_alpha1"),
        ("1.2.1", '>', "1.2"),
        ("1.3_alpha2", '<', "1.3_alpha3"),
        ("0.8_beta4", '<', "4.8-r1"),
        ("2.3.0b-r1", '<', "2.3.0b-r2"),
        ("3.1_p16", '<', "3.1_p17"),
        ("1.06-r6", '<', "006"),
        ("1.2.2-r1", '>', "1.2.2"),
        ("20050718-r2", '>', "3.9.8-r5"),
        ("2.01.01_alpha10", '>', "0.94"),
        ("1.0", '>', "0.99.3.20040818"),
        ("4.2.52_p2-r1", '<', "4.2.52_p4-r2"),
        ("2.1.9.200602141850", '>', "1.6"),
        ("2.5.1-r8", '<', "2.5.1a-r1"),
        ("1.3.5-r10", '>', "1.3.5-r8"),
        ("2.0.0_rc3-r1", '>', "1.5"),
        ("3.9_pre20060124", '>', "0.01"),
        ("0.10.1_rc1", '>', "0.9.11"),
        ("0.20070118", '<', "0.20070207_rc1"),
        ("4.5_p1", '<', "4.5_p1-r1"),
        ("1.8.5", '<', "1.8.5_p2"),
        ("2.9.11_pre20051101-r3", '>', "2.9.11_pre20051101"),
        ("0.9.28.1", '<', "087-r1"),
        ("1.23", '<', "1.23-r1"),
        ("1.2.5_rc2", '>', "0.1"),
        ("2.12r-r4", '<', "2.12r-r5"),
        ("7.0.17", '<', "7.0.174"),
        ("1.3-r0", '<', "1.3.1-r0"),
        ("1.3_pre1-r1", '<', "1.3.2"),
        ("1.0_p10-r0", '>', "1.0_p9-r0"),
        ("0.1.0_alpha_pre2", '<', "0.1.0_alpha"),
        (
            "1.0.0_pre20191002222144-r0",
            '<',
            "1.0.0_pre20210530193627-r0",
        ),
        ("1.0", '<', "1.0bc"),
        // Alpine 3.23 packages seen in the real installed db.
        ("1.37.0-r30", '>', "1.37.0-r9"),
        ("1.37.0-r30", '<', "1.37.1-r0"),
        ("1.2.5_git20240101-r0", '>', "1.2.5-r0"),
        ("1.2.5_rc1-r0", '<', "1.2.5-r0"),
        ("1.05", '<', "1.5"),
    ];

    #[test]
    fn apk_tools_vectors() {
        for &(a, op, b) in VECTORS {
            let want = match op {
                '<' => Ordering::Less,
                '>' => Ordering::Greater,
                _ => Ordering::Equal,
            };
            assert_eq!(compare(a, b), want, "{a} {op} {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a} (reversed)");
        }
    }

    #[test]
    fn fuzzy_prefix() {
        assert!(fuzzy_matches("1.2.3-r0", "1.2"));
        assert!(fuzzy_matches("1.2-r4", "1.2"));
        assert!(!fuzzy_matches("1.3.0-r0", "1.2"));
        assert!(!fuzzy_matches("1.20-r0", "1.2"));
    }

    #[test]
    fn validity() {
        assert!(is_valid("1.37.0-r30"));
        assert!(is_valid("2.12r-r4"));
        assert!(is_valid("1.0_alpha2_p3-r1"));
        assert!(!is_valid("1.0bc"));
        assert!(!is_valid("1.0-x"));
        assert!(!is_valid(""));
    }
}
