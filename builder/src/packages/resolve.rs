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
        dep: Dependency,
        by: Requirer,
        available: String,
        note: String,
    },
    #[error("{pkg} conflicts with {dep} (required by {by}, which forbids it); remove one of them from the recipe")]
    Conflict {
        dep: Dependency,
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
}

/// Resolve `world` against `cands`; returns candidate positions, dependencies before
/// dependents (ties by name).
pub fn resolve(cands: &[Candidate<'_>], world: &[Dependency]) -> Result<Vec<usize>, ResolveError> {
    let mut r = Resolver::new(cands);
    for dep in world {
        r.queue.push_back((dep.clone(), Requirer::World));
    }
    r.drain()?;
    r.apply_install_if()?;
    r.check_conflicts()?;
    Ok(r.order())
}

impl<'a> Resolver<'a> {
    fn new(cands: &'a [Candidate<'a>]) -> Self {
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
        let own = Requirer::Package(self.entry(pkg).name_version());
        self.conflicts.iter().any(|(dep, by)| {
            *by != own
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
        for d in &e.depends {
            self.queue.push_back((d.clone(), by.clone()));
        }
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
        let note = if taken.is_empty() {
            String::new()
        } else {
            format!(
                " ({} already chosen for another requirement)",
                taken.join(", ")
            )
        };
        ResolveError::Unsatisfiable {
            dep: dep.clone(),
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
                if by != Requirer::Package(offender.clone()) {
                    return Err(ResolveError::Conflict {
                        dep,
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
            for d in self.entry(i).depends.iter().filter(|d| !d.conflict) {
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
