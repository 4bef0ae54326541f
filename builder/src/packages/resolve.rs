//! Dependency resolution: requested world -> the full set of packages, dependencies first.
//!
//! A greedy resolver, not a SAT solver: each requirement is met by the best provider (its own
//! name first, then provider priority, then the highest version, then repository order), and
//! a conflict is reported, not backtracked from. That is enough for Alpine's main repository,
//! where apk itself rarely needs to backtrack, and it keeps every failure explainable.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

use super::dependency::Dependency;
use super::index::IndexEntry;
use super::version;

/// A package that can be installed, and the repository (by position) it comes from.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub repo: usize,
    pub entry: &'a IndexEntry,
}

/// Who asked for a requirement, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirer {
    World,
    Package(String),
    InstallIf(String),
}

impl Requirer {
    /// Is this requirement the package `name_version`'s own?
    fn is(&self, name_version: &str) -> bool {
        matches!(self, Requirer::Package(p) | Requirer::InstallIf(p) if p == name_version)
    }
}

impl fmt::Display for Requirer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirer::World => f.write_str("the recipe's package list"),
            Requirer::Package(p) => write!(f, "package {p}"),
            Requirer::InstallIf(p) => write!(f, "package {p} (pulled in by its install_if)"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("no package named or providing {name:?} in the repositories (required by {by}); check the spelling or add the repository that has it")]
    NotFound { name: String, by: Requirer },
    #[error(
        "requirement {dep} (required by {by}) cannot be met: available versions: {available}{note}"
    )]
    Unsatisfiable {
        dep: String,
        by: Requirer,
        available: String,
        note: String,
    },
    #[error("{pkg} conflicts with {dep} (required by {by}, which forbids it); remove one of them from the recipe")]
    Conflict {
        dep: String,
        by: Requirer,
        pkg: String,
    },
}

/// What one provider offers for one name: the version it provides it at (None: unversioned).
#[derive(Debug, Clone, Copy)]
struct Provide<'a> {
    pkg: usize,
    version: Option<&'a str>,
}

struct Resolver<'a> {
    cands: &'a [Candidate<'a>],
    providers: HashMap<&'a str, Vec<Provide<'a>>>,
    /// package name -> chosen candidate.
    chosen: BTreeMap<&'a str, usize>,
    conflicts: Vec<(Dependency, Requirer)>,
    queue: VecDeque<(Dependency, Requirer)>,
    leave_out: &'a BTreeMap<String, LeaveOut>,
}

/// Which dependencies of a package are not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveOut {
    /// All of them: the package is installed for its files alone.
    All,
    /// Those naming one of these (`/bin/sh`).
    Named(Vec<String>),
}

impl LeaveOut {
    fn covers(&self, dep: &Dependency) -> bool {
        match self {
            LeaveOut::All => true,
            LeaveOut::Named(names) => names.contains(&dep.name),
        }
    }
}

/// Dependencies of one package that were not installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependenciesLeftOut {
    pub package: String,
    pub name_version: String,
    /// In the index's words (`alpine-baselayout-data=3.7.2-r0`, `/bin/sh`).
    pub dependencies: Vec<String>,
}

/// What [`resolve`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Candidate positions, dependencies before dependents (ties by name).
    pub order: Vec<usize>,
    /// Dependencies `leave_out` kept out that nothing else brought in, per package.
    pub left_out: Vec<DependenciesLeftOut>,
}

/// Resolve `world` against `cands`. The dependencies `leave_out` names for a package are not
/// followed (a kernel package's `mkinitfs` pulls in apk-tools, OpenSSL and cryptsetup, none of
/// which an image that never rebuilds its initramfs runs). A dependency something else needs
/// is still installed.
pub fn resolve(
    cands: &[Candidate<'_>],
    world: &[Dependency],
    leave_out: &BTreeMap<String, LeaveOut>,
) -> Result<Resolution, ResolveError> {
    let mut r = Resolver::new(cands, leave_out);
    for dep in world {
        r.queue.push_back((dep.clone(), Requirer::World));
    }
    r.drain()?;
    r.apply_install_if()?;
    r.check_conflicts()?;
    Ok(Resolution {
        order: r.order(),
        left_out: r.left_out(),
    })
}

impl<'a> Resolver<'a> {
    fn new(cands: &'a [Candidate<'a>], leave_out: &'a BTreeMap<String, LeaveOut>) -> Self {
        let mut providers: HashMap<&str, Vec<Provide>> = HashMap::new();
        for (i, c) in cands.iter().enumerate() {
            providers.entry(&c.entry.name).or_default().push(Provide {
                pkg: i,
                version: Some(&c.entry.version),
            });
            for p in &c.entry.provides {
                let version = (!p.version.is_empty()).then_some(p.version.as_str());
                providers
                    .entry(&p.name)
                    .or_default()
                    .push(Provide { pkg: i, version });
            }
        }
        Resolver {
            cands,
            providers,
            chosen: BTreeMap::new(),
            conflicts: Vec::new(),
            queue: VecDeque::new(),
            leave_out,
        }
    }

    fn entry(&self, i: usize) -> &'a IndexEntry {
        self.cands[i].entry
    }

    fn matches(&self, dep: &Dependency, p: &Provide) -> bool {
        dep.version_matches(p.version, &self.entry(p.pkg).checksum)
    }

    /// A chosen package meeting `dep`, if any.
    fn chosen_provider(&self, dep: &Dependency) -> Option<usize> {
        self.providers.get(dep.name.as_str())?.iter().find_map(|p| {
            (self.chosen.get(self.entry(p.pkg).name.as_str()) == Some(&p.pkg)
                && self.matches(dep, p))
            .then_some(p.pkg)
        })
    }

    /// Would installing `pkg` break a `!conflict` already recorded (other than its own)?
    fn forbidden(&self, pkg: usize) -> bool {
        let own = self.entry(pkg).name_version();
        self.conflicts.iter().any(|(dep, by)| {
            !by.is(&own)
                && self
                    .providers
                    .get(dep.name.as_str())
                    .is_some_and(|ps| ps.iter().any(|p| p.pkg == pkg && self.matches(dep, p)))
        })
    }

    fn drain(&mut self) -> Result<(), ResolveError> {
        while let Some((dep, by)) = self.queue.pop_front() {
            if dep.conflict {
                self.conflicts.push((dep, by));
                continue;
            }
            if self.chosen_provider(&dep).is_some() {
                continue;
            }
            let pick = self.best_provider(&dep, &by)?;
            self.choose(pick, false);
        }
        Ok(())
    }

    fn choose(&mut self, pick: usize, via_install_if: bool) {
        let e = self.entry(pick);
        self.chosen.insert(&e.name, pick);
        let by = if via_install_if {
            Requirer::InstallIf(e.name_version())
        } else {
            Requirer::Package(e.name_version())
        };
        let followed: Vec<Dependency> = e
            .depends
            .iter()
            .filter(|d| d.conflict || !self.left_out_of(e, d))
            .cloned()
            .collect();
        self.queue
            .extend(followed.into_iter().map(|d| (d, by.clone())));
    }

    fn left_out_of(&self, package: &IndexEntry, dep: &Dependency) -> bool {
        self.leave_out
            .get(&package.name)
            .is_some_and(|rule| rule.covers(dep))
    }

    /// The dependencies `leave_out` kept out that nothing else brought in.
    fn left_out(&self) -> Vec<DependenciesLeftOut> {
        self.chosen
            .values()
            .map(|&i| self.entry(i))
            .filter_map(|e| {
                let missing: Vec<String> = e
                    .depends
                    .iter()
                    .filter(|d| !d.conflict && self.left_out_of(e, d))
                    .filter(|d| self.chosen_provider(d).is_none())
                    .map(|d| d.to_string())
                    .collect();
                (!missing.is_empty()).then(|| DependenciesLeftOut {
                    package: e.name.clone(),
                    name_version: e.name_version(),
                    dependencies: missing,
                })
            })
            .collect()
    }

    fn best_provider(&self, dep: &Dependency, by: &Requirer) -> Result<usize, ResolveError> {
        let Some(all) = self.providers.get(dep.name.as_str()) else {
            return Err(ResolveError::NotFound {
                name: dep.name.clone(),
                by: by.clone(),
            });
        };
        let usable = all.iter().filter(|p| {
            let name = self.entry(p.pkg).name.as_str();
            // Only one version of a package name can be installed.
            let free = self.chosen.get(name).is_none_or(|&c| c == p.pkg);
            free && self.matches(dep, p) && !self.forbidden(p.pkg)
        });
        let best = usable.max_by(|a, b| self.rank(dep, a, b));
        best.map(|p| p.pkg)
            .ok_or_else(|| self.unsatisfiable(dep, by, all))
    }

    /// Provider preference; `Greater` means `a` is better.
    fn rank(&self, dep: &Dependency, a: &Provide, b: &Provide) -> Ordering {
        let (ea, eb) = (self.entry(a.pkg), self.entry(b.pkg));
        let own = |e: &IndexEntry| e.name == dep.name;
        own(ea)
            .cmp(&own(eb))
            .then(
                ea.provider_priority
                    .unwrap_or(0)
                    .cmp(&eb.provider_priority.unwrap_or(0)),
            )
            .then_with(|| version::compare(&ea.version, &eb.version))
            .then(self.cands[b.pkg].repo.cmp(&self.cands[a.pkg].repo))
            .then_with(|| eb.name.cmp(&ea.name))
    }

    fn unsatisfiable(&self, dep: &Dependency, by: &Requirer, all: &[Provide]) -> ResolveError {
        let mut available: Vec<String> = all
            .iter()
            .map(|p| {
                let e = self.entry(p.pkg);
                match (e.name == dep.name, p.version) {
                    (true, _) => format!("{} {}", e.name, e.version),
                    (false, Some(v)) => {
                        format!("{} {} (provides {}={v})", e.name, e.version, dep.name)
                    }
                    (false, None) => format!(
                        "{} {} (provides {}, unversioned)",
                        e.name, e.version, dep.name
                    ),
                }
            })
            .collect();
        available.sort();
        available.dedup();
        let taken: Vec<String> = all
            .iter()
            .filter_map(|p| {
                let name = self.entry(p.pkg).name.as_str();
                self.chosen
                    .get(name)
                    .filter(|&&c| c != p.pkg)
                    .map(|&c| self.entry(c).name_version())
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut notes = Vec::new();
        if !taken.is_empty() {
            notes.push(format!(
                "{} already chosen for another requirement",
                taken.join(", ")
            ));
        }
        for p in all.iter().filter(|p| self.matches(dep, p)) {
            let e = self.entry(p.pkg);
            let own = e.name_version();
            for (c, c_by) in &self.conflicts {
                let hits = self
                    .providers
                    .get(c.name.as_str())
                    .is_some_and(|ps| ps.iter().any(|q| q.pkg == p.pkg && self.matches(c, q)));
                if hits && !c_by.is(&own) {
                    notes.push(format!(
                        "{} is ruled out by {c} (required by {c_by})",
                        e.name_version()
                    ));
                }
            }
        }
        notes.sort();
        notes.dedup();
        let note = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        ResolveError::Unsatisfiable {
            dep: dep.to_string(),
            by: by.clone(),
            available: available.join(", "),
            note,
        }
    }

    /// Add packages whose `install_if` conditions all hold (e.g. `busybox-openrc` when both
    /// busybox and openrc are installed), until nothing more qualifies.
    fn apply_install_if(&mut self) -> Result<(), ResolveError> {
        loop {
            let mut best: BTreeMap<&str, usize> = BTreeMap::new();
            for (i, c) in self.cands.iter().enumerate() {
                let e = c.entry;
                if e.install_if.is_empty() || self.chosen.contains_key(e.name.as_str()) {
                    continue;
                }
                let holds = e.install_if.iter().all(|d| {
                    if d.conflict {
                        self.chosen_provider(&Dependency {
                            conflict: false,
                            ..d.clone()
                        })
                        .is_none()
                    } else {
                        self.chosen_provider(d).is_some()
                    }
                });
                if holds && !self.forbidden(i) {
                    let slot = best.entry(&e.name).or_insert(i);
                    if version::compare(&e.version, &self.entry(*slot).version) == Ordering::Greater
                    {
                        *slot = i;
                    }
                }
            }
            if best.is_empty() {
                return Ok(());
            }
            for (_, i) in best {
                self.choose(i, true);
            }
            self.drain()?;
        }
    }

    fn check_conflicts(&self) -> Result<(), ResolveError> {
        let mut all = self.conflicts.clone();
        for &i in self.chosen.values() {
            let by = Requirer::Package(self.entry(i).name_version());
            all.extend(
                self.entry(i)
                    .depends
                    .iter()
                    .filter(|d| d.conflict)
                    .map(|d| (d.clone(), by.clone())),
            );
        }
        for (dep, by) in all {
            let positive = Dependency {
                conflict: false,
                ..dep.clone()
            };
            if let Some(p) = self.chosen_provider(&positive) {
                let offender = self.entry(p).name_version();
                if !by.is(&offender) {
                    return Err(ResolveError::Conflict {
                        dep: dep.to_string(),
                        by,
                        pkg: offender,
                    });
                }
            }
        }
        Ok(())
    }

    /// Topological order (providers of a package's dependencies first), ties and cycles
    /// broken by package name so the result never depends on hash order.
    fn order(&self) -> Vec<usize> {
        let chosen: Vec<usize> = self.chosen.values().copied().collect();
        let mut needs: BTreeMap<usize, BTreeSet<usize>> =
            chosen.iter().map(|&i| (i, BTreeSet::new())).collect();
        for &i in &chosen {
            // install_if conditions order like dependencies: the companion comes after them.
            let e = self.entry(i);
            for d in e
                .depends
                .iter()
                .chain(&e.install_if)
                .filter(|d| !d.conflict)
            {
                if let Some(p) = self.chosen_provider(d).filter(|&p| p != i) {
                    needs.entry(i).or_default().insert(p);
                }
            }
        }
        let name = |i: usize| self.entry(i).name.as_str();
        let mut out = Vec::with_capacity(chosen.len());
        let mut done = BTreeSet::new();
        while out.len() < chosen.len() {
            let ready: Vec<usize> = needs
                .iter()
                .filter(|(i, deps)| !done.contains(*i) && deps.iter().all(|d| done.contains(d)))
                .map(|(&i, _)| i)
                .collect();
            let next = if ready.is_empty() {
                // A dependency cycle: take the first-named package still waiting.
                needs
                    .keys()
                    .copied()
                    .filter(|i| !done.contains(i))
                    .min_by_key(|&i| name(i))
            } else {
                ready.into_iter().min_by_key(|&i| name(i))
            };
            let Some(next) = next else { break };
            done.insert(next);
            out.push(next);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::index::ApkIndex;

    /// Package relations shaped like Alpine 3.23's (busybox, busybox-binsh, musl, openrc).
    const INDEX: &str = "P:musl\nV:1.2.5-r23\nA:x86_64\np:so:libc.musl-x86_64.so.1=1\n
P:busybox\nV:1.37.0-r30\nA:x86_64\nD:so:libc.musl-x86_64.so.1\np:cmd:busybox=1.37.0-r30\n
P:busybox\nV:1.36.1-r5\nA:x86_64\nD:so:libc.musl-x86_64.so.1\n
P:busybox-binsh\nV:1.37.0-r30\nA:x86_64\nk:100\nD:busybox=1.37.0-r30\np:/bin/sh cmd:sh=1.37.0-r30\n
P:dash-binsh\nV:0.5.12-r3\nA:x86_64\nk:60\np:/bin/sh cmd:sh=0.5.12-r3\n
P:alpine-baselayout\nV:3.7.2-r0\nA:x86_64\nD:alpine-baselayout-data=3.7.2-r0 /bin/sh\n
P:alpine-baselayout-data\nV:3.7.2-r0\nA:x86_64\n
P:openrc\nV:0.62-r0\nA:x86_64\nD:so:libc.musl-x86_64.so.1\n
P:busybox-openrc\nV:1.37.0-r30\nA:x86_64\ni:openrc busybox=1.37.0-r30\n
P:evil\nV:1-r0\nA:x86_64\nD:!busybox\n";

    fn run(world: &[&str]) -> Result<Vec<String>, ResolveError> {
        Ok(run_leaving_out(world, &[])?.0)
    }

    type LeftOut = Vec<(String, Vec<String>)>;

    fn run_files_only(
        world: &[&str],
        files_only: &[&str],
    ) -> Result<(Vec<String>, LeftOut), ResolveError> {
        let rules: Vec<(&str, LeaveOut)> = files_only.iter().map(|p| (*p, LeaveOut::All)).collect();
        run_leaving_out(world, &rules)
    }

    fn run_leaving_out(
        world: &[&str],
        rules: &[(&str, LeaveOut)],
    ) -> Result<(Vec<String>, LeftOut), ResolveError> {
        let idx = ApkIndex::parse(INDEX).unwrap();
        let cands: Vec<Candidate> = idx
            .entries
            .iter()
            .map(|entry| Candidate { repo: 0, entry })
            .collect();
        let world: Vec<Dependency> = world
            .iter()
            .map(|w| Dependency::parse(w).unwrap())
            .collect();
        let rules = rules
            .iter()
            .map(|(p, rule)| (p.to_string(), rule.clone()))
            .collect();
        let got = resolve(&cands, &world, &rules)?;
        let names = got
            .order
            .iter()
            .map(|&i| cands[i].entry.name_version())
            .collect();
        let left_out = got
            .left_out
            .into_iter()
            .map(|l| (l.name_version, l.dependencies))
            .collect();
        Ok((names, left_out))
    }

    /// An image without a shell: the skeleton's data comes, its `/bin/sh` (busybox and musl
    /// through it) does not.
    #[test]
    fn named_dependencies_alone_are_left_out() {
        let rule = LeaveOut::Named(vec!["/bin/sh".to_string()]);
        let (got, left_out) =
            run_leaving_out(&["alpine-baselayout"], &[("alpine-baselayout", rule)]).unwrap();
        assert_eq!(
            got,
            [
                "alpine-baselayout-data-3.7.2-r0",
                "alpine-baselayout-3.7.2-r0"
            ]
        );
        assert_eq!(
            left_out,
            [(
                "alpine-baselayout-3.7.2-r0".to_string(),
                vec!["/bin/sh".to_string()]
            )]
        );
    }

    #[test]
    fn files_only_packages_bring_no_dependencies_unless_others_need_them() {
        let (got, left_out) =
            run_files_only(&["alpine-baselayout"], &["alpine-baselayout"]).unwrap();
        assert_eq!(got, ["alpine-baselayout-3.7.2-r0"]);
        assert_eq!(
            left_out,
            [(
                "alpine-baselayout-3.7.2-r0".to_string(),
                vec![
                    "alpine-baselayout-data=3.7.2-r0".to_string(),
                    "/bin/sh".to_string()
                ]
            )]
        );
        let (got, left_out) = run_files_only(
            &["alpine-baselayout", "busybox-binsh"],
            &["alpine-baselayout"],
        )
        .unwrap();
        assert!(
            got.contains(&"busybox-binsh-1.37.0-r30".to_string()),
            "{got:?}"
        );
        assert_eq!(
            left_out,
            [(
                "alpine-baselayout-3.7.2-r0".to_string(),
                vec!["alpine-baselayout-data=3.7.2-r0".to_string()]
            )]
        );
    }

    #[test]
    fn closure_in_dependency_order_with_best_providers() {
        let got = run(&["alpine-baselayout"]).unwrap();
        assert_eq!(
            got,
            [
                "alpine-baselayout-data-3.7.2-r0",
                "musl-1.2.5-r23",
                "busybox-1.37.0-r30",
                "busybox-binsh-1.37.0-r30", // provider priority 100 beats dash's 60
                "alpine-baselayout-3.7.2-r0",
            ]
        );
    }

    #[test]
    fn version_constraints_pick_matching_versions() {
        let got = run(&["busybox<1.37"]).unwrap();
        assert_eq!(got, ["musl-1.2.5-r23", "busybox-1.36.1-r5"]);
        let got = run(&["cmd:sh"]).unwrap();
        assert!(
            got.contains(&"busybox-binsh-1.37.0-r30".to_string()),
            "{got:?}"
        );
    }

    #[test]
    fn install_if_pulls_in_companions() {
        let got = run(&["busybox", "openrc"]).unwrap();
        assert_eq!(got.last().unwrap(), "busybox-openrc-1.37.0-r30", "{got:?}");
        assert!(!run(&["busybox"])
            .unwrap()
            .iter()
            .any(|p| p.contains("openrc")));
    }

    #[test]
    fn failures_name_the_requirement_and_the_choices() {
        let err = run(&["nosuchpkg"]).unwrap_err().to_string();
        assert!(
            err.contains("\"nosuchpkg\"") && err.contains("the recipe's package list"),
            "{err}"
        );
        let err = run(&["busybox>=2"]).unwrap_err().to_string();
        assert!(err.contains("busybox>=2"), "{err}");
        assert!(
            err.contains("busybox 1.36.1-r5, busybox 1.37.0-r30"),
            "{err}"
        );
        let err = run(&["busybox", "evil"]).unwrap_err().to_string();
        assert!(
            err.contains("evil-1-r0") && err.contains("busybox"),
            "{err}"
        );
        let err = run(&["busybox", "!musl"]).unwrap_err().to_string();
        assert!(
            err.contains(
                "musl-1.2.5-r23 is ruled out by !musl (required by the recipe's package list)"
            ),
            "{err}"
        );
    }
}
