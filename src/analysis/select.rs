//! `--select` and `--exclude`, in dbt's spirit: `name` runs the analysis and what it
//! needs (its result is only right if its inputs are fresh, so upstream is always
//! included; `+name` says the same explicitly), `name+` also runs everything that
//! depends on it, and `--exclude name` leaves an analysis out (its kept result, if any,
//! is used as it is).

use std::collections::{BTreeSet, HashMap};

/// One `--select` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    /// `name+`: also what depends on it.
    pub downstream: bool,
}

impl Selector {
    pub fn parse(text: &str) -> Selector {
        let text = text.trim();
        let downstream = text.ends_with('+');
        let name = text.trim_start_matches('+').trim_end_matches('+');
        Selector {
            name: name.to_owned(),
            downstream,
        }
    }
}

/// What a run or a render covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub selectors: Vec<Selector>,
    pub exclude: Vec<String>,
}

impl Selection {
    pub fn new(select: &[String], exclude: &[String]) -> Selection {
        Selection {
            selectors: select.iter().map(|s| Selector::parse(s)).collect(),
            exclude: exclude.iter().map(|s| Selector::parse(s).name).collect(),
        }
    }

    /// Everything.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// Only these names (and what they need).
    pub fn names(names: &[String]) -> Selection {
        Selection::new(names, &[])
    }

    /// Whether finding the selection needs the whole dependency graph.
    pub fn needs_whole_graph(&self) -> bool {
        self.selectors.is_empty() || self.selectors.iter().any(|s| s.downstream)
    }

    /// Every name the selection mentions, for checking that they exist.
    pub fn mentioned(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.selectors
            .iter()
            .map(|s| (s.name.as_str(), "--select"))
            .chain(self.exclude.iter().map(|e| (e.as_str(), "--exclude")))
    }

    /// The analyses to run, given every rendered analysis's dependencies.
    pub fn resolve(&self, depends: &HashMap<String, Vec<String>>) -> BTreeSet<String> {
        let mut chosen = BTreeSet::new();
        if self.selectors.is_empty() {
            chosen.extend(depends.keys().cloned());
        }
        for selector in &self.selectors {
            let mut roots = vec![selector.name.clone()];
            if selector.downstream {
                roots.extend(descendants(&selector.name, depends));
            }
            for root in roots {
                chosen.insert(root.clone());
                chosen.extend(ancestors(&root, depends));
            }
        }
        for excluded in &self.exclude {
            chosen.remove(excluded);
        }
        chosen
    }
}

fn ancestors(name: &str, depends: &HashMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut queue = vec![name.to_owned()];
    while let Some(next) = queue.pop() {
        for d in depends.get(&next).into_iter().flatten() {
            if found.insert(d.clone()) {
                queue.push(d.clone());
            }
        }
    }
    found
}

fn descendants(name: &str, depends: &HashMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut queue = vec![name.to_owned()];
    while let Some(next) = queue.pop() {
        for (child, parents) in depends {
            if parents.contains(&next) && found.insert(child.clone()) {
                queue.push(child.clone());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// a <- b <- c, a <- d, e alone.
    fn graph() -> HashMap<String, Vec<String>> {
        [
            ("a", vec![]),
            ("b", vec!["a"]),
            ("c", vec!["b"]),
            ("d", vec!["a"]),
            ("e", vec![]),
        ]
        .into_iter()
        .map(|(n, d)| (n.to_owned(), d.into_iter().map(str::to_owned).collect()))
        .collect()
    }

    fn names(set: BTreeSet<String>) -> Vec<String> {
        set.into_iter().collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn operators_select_like_dbt() {
        let g = graph();
        let resolve = |select: &[&str], exclude: &[&str]| {
            names(Selection::new(&s(select), &s(exclude)).resolve(&g))
        };
        assert_eq!(resolve(&[], &[]), s(&["a", "b", "c", "d", "e"]));
        assert_eq!(resolve(&["b"], &[]), s(&["a", "b"]));
        assert_eq!(resolve(&["+b"], &[]), s(&["a", "b"]));
        assert_eq!(resolve(&["b+"], &[]), s(&["a", "b", "c"]));
        assert_eq!(resolve(&["a+"], &[]), s(&["a", "b", "c", "d"]));
        assert_eq!(resolve(&["a+"], &["b"]), s(&["a", "c", "d"]));
        assert_eq!(resolve(&[], &["e", "d"]), s(&["a", "b", "c"]));
    }

    #[test]
    fn selectors_parse_their_operators() {
        assert_eq!(
            Selector::parse("+beta+"),
            Selector {
                name: "beta".into(),
                downstream: true
            }
        );
        assert_eq!(
            Selector::parse("+beta"),
            Selector {
                name: "beta".into(),
                downstream: false
            }
        );
    }
}
