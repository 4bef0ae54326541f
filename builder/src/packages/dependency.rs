//! Dependency constraints as apk writes them: `busybox>=1.36`, `so:libc.musl-x86_64.so.1`,
//! `cmd:sh`, `/bin/sh`, `!conflict`, `name~1.2`, `name><Q1...` (exact package checksum).

use std::fmt;

use super::version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Any,
    Less,
    LessEq,
    Eq,
    GreaterEq,
    Greater,
    /// `~`: version prefix match.
    Fuzzy,
    /// `><`: the package whose control checksum is the given `Q1...` value.
    Checksum,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Any => "",
            Op::Less => "<",
            Op::LessEq => "<=",
            Op::Eq => "=",
            Op::GreaterEq => ">=",
            Op::Greater => ">",
            Op::Fuzzy => "~",
            Op::Checksum => "><",
        }
    }
}

/// One requirement on a name (a package name or something packages `provide`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    pub name: String,
    pub op: Op,
    /// Empty for [`Op::Any`].
    pub version: String,
    /// `!name`: nothing providing `name` (in the version range) may be installed.
    pub conflict: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DependencyError {
    #[error("empty dependency")]
    Empty,
    #[error("dependency {0:?} has no package name before its version operator")]
    NoName(String),
    #[error("dependency {0:?}: unknown version operator {1:?} (use =, <, >, <=, >=, ~ or ><)")]
    BadOperator(String, String),
    #[error("dependency {0:?} has an operator but no version after it")]
    NoVersion(String),
    #[error("dependency {0:?}: {1:?} is not a valid Alpine version (e.g. 1.36.1-r2)")]
    BadVersion(String, String),
    #[error("dependency {0:?} pins a repository tag (`@tag`), which edgeimg does not support; list the repository under the recipe's repositories instead")]
    Tagged(String),
}

impl Dependency {
    /// Parse one dependency (`!foo`, `foo>=1.2-r0`, `so:libz.so.1`).
    pub fn parse(raw: &str) -> Result<Self, DependencyError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(DependencyError::Empty);
        }
        let (conflict, s) = match s.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let op_start = s.find(['<', '>', '=', '~']).unwrap_or(s.len());
        let name = &s[..op_start];
        if name.is_empty() {
            return Err(DependencyError::NoName(raw.to_string()));
        }
        if name.contains('@') {
            return Err(DependencyError::Tagged(raw.to_string()));
        }
        let rest = &s[op_start..];
        let op_len = rest
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '~'))
            .unwrap_or(rest.len());
        let (op_text, version) = rest.split_at(op_len);
        let op = match op_text {
            "" => Op::Any,
            "<" => Op::Less,
            "<=" => Op::LessEq,
            "=" => Op::Eq,
            ">=" => Op::GreaterEq,
            ">" => Op::Greater,
            "~" | "~=" | "=~" => Op::Fuzzy,
            "><" => Op::Checksum,
            other => return Err(DependencyError::BadOperator(raw.to_string(), other.into())),
        };
        if op != Op::Any && version.is_empty() {
            return Err(DependencyError::NoVersion(raw.to_string()));
        }
        if !matches!(op, Op::Any | Op::Checksum) && !version::is_valid(version) {
            return Err(DependencyError::BadVersion(raw.to_string(), version.into()));
        }
        Ok(Dependency {
            name: name.to_string(),
            op,
            version: version.to_string(),
            conflict,
        })
    }

    /// Parse a space-separated list, as in the index's `D:`, `p:` and `i:` fields.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, DependencyError> {
        raw.split_ascii_whitespace().map(Self::parse).collect()
    }

    /// Does a provider of this name at `provided` (None: an unversioned provide) satisfy the
    /// version part? `checksum` is the candidate package's control checksum, for `><`.
    pub fn version_matches(&self, provided: Option<&str>, checksum: &str) -> bool {
        let Some(v) = provided else {
            return self.op == Op::Any;
        };
        use std::cmp::Ordering::*;
        match self.op {
            Op::Any => true,
            Op::Checksum => checksum == self.version,
            Op::Fuzzy => version::fuzzy_matches(v, &self.version),
            op => {
                let ord = version::compare(v, &self.version);
                match op {
                    Op::Less => ord == Less,
                    Op::LessEq => ord != Greater,
                    Op::Eq => ord == Equal,
                    Op::GreaterEq => ord != Less,
                    _ => ord == Greater,
                }
            }
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conflict {
            f.write_str("!")?;
        }
        write!(f, "{}{}{}", self.name, self.op.as_str(), self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_alpine_writes() {
        let d = Dependency::parse("busybox>=1.36").unwrap();
        assert_eq!(
            (d.name.as_str(), d.op, d.version.as_str()),
            ("busybox", Op::GreaterEq, "1.36")
        );
        let d = Dependency::parse("so:libc.musl-x86_64.so.1").unwrap();
        assert_eq!(
            (d.name.as_str(), d.op),
            ("so:libc.musl-x86_64.so.1", Op::Any)
        );
        let d = Dependency::parse("!busybox-suid").unwrap();
        assert!(d.conflict);
        assert_eq!(d.to_string(), "!busybox-suid");
        let d = Dependency::parse("alpine-baselayout-data=3.7.2-r0").unwrap();
        assert_eq!(
            (d.op, d.to_string().as_str()),
            (Op::Eq, "alpine-baselayout-data=3.7.2-r0")
        );
        let d = Dependency::parse("musl~1.2").unwrap();
        assert_eq!(d.op, Op::Fuzzy);
        let d = Dependency::parse("musl><Q1abc=").unwrap();
        assert_eq!((d.op, d.version.as_str()), (Op::Checksum, "Q1abc="));
        assert_eq!(Dependency::parse("/bin/sh").unwrap().name, "/bin/sh");
        let list = Dependency::parse_list("alpine-baselayout-data=3.7.2-r0 /bin/sh").unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn rejects_nonsense_clearly() {
        assert_eq!(Dependency::parse(" "), Err(DependencyError::Empty));
        assert!(matches!(
            Dependency::parse(">=1.0"),
            Err(DependencyError::NoName(_))
        ));
        assert!(matches!(
            Dependency::parse("a=>1"),
            Err(DependencyError::BadOperator(..))
        ));
        assert!(matches!(
            Dependency::parse("a>="),
            Err(DependencyError::NoVersion(_))
        ));
        assert!(matches!(
            Dependency::parse("a>=x.y"),
            Err(DependencyError::BadVersion(..))
        ));
        assert!(matches!(
            Dependency::parse("a@edge"),
            Err(DependencyError::Tagged(_))
        ));
    }

    #[test]
    fn version_matching() {
        let d = Dependency::parse("busybox>=1.36").unwrap();
        assert!(d.version_matches(Some("1.37.0-r30"), ""));
        assert!(!d.version_matches(Some("1.35.0-r0"), ""));
        assert!(
            !d.version_matches(None, ""),
            "an unversioned provide cannot meet >="
        );
        assert!(Dependency::parse("cmd:sh")
            .unwrap()
            .version_matches(None, ""));
        assert!(Dependency::parse("a<2")
            .unwrap()
            .version_matches(Some("1.9-r0"), ""));
        assert!(Dependency::parse("a~1.2")
            .unwrap()
            .version_matches(Some("1.2.9-r1"), ""));
    }
}
