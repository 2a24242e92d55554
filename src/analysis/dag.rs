//! The order analyses run in: a dependency graph (declared `depends_on` plus the
//! `ref('…')` calls found while rendering) cut into levels. Every analysis of a level
//! depends only on earlier levels, so a level runs in parallel and levels run in turn.
//! A cycle is reported with its path, e.g. `a -> b -> a`.

use std::collections::HashMap;

/// Levels of indices into `nodes` (`(name, dependencies)`), each level in input order.
///
/// # Errors
/// The names along one cycle, first name repeated at the end, when there is one.
pub fn levels(nodes: &[(String, Vec<String>)]) -> Result<Vec<Vec<usize>>, Vec<String>> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let deps: Vec<Vec<usize>> = nodes
        .iter()
        .map(|(_, ds)| {
            ds.iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let mut level: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut remaining = nodes.len();
    // Each pass places every node whose dependencies are all placed; a pass that places
    // nothing while nodes remain means the rest sit on or behind a cycle.
    while remaining > 0 {
        let mut placed = Vec::new();
        for (i, ds) in deps.iter().enumerate() {
            if level[i].is_some() {
                continue;
            }
            if let Some(max) = ds.iter().map(|&d| level[d]).collect::<Option<Vec<_>>>() {
                placed.push((i, max.into_iter().max().map_or(0, |m| m + 1)));
            }
        }
        if placed.is_empty() {
            return Err(cycle(nodes, &deps, &level));
        }
        remaining -= placed.len();
        for (i, l) in placed {
            level[i] = Some(l);
        }
    }
    let depth = level.iter().flatten().max().map_or(0, |m| m + 1);
    let mut out = vec![Vec::new(); depth];
    for (i, l) in level.iter().enumerate() {
        if let Some(l) = l {
            out[*l].push(i);
        }
    }
    Ok(out)
}

/// Follow unplaced dependencies from an unplaced node until a name repeats.
fn cycle(
    nodes: &[(String, Vec<String>)],
    deps: &[Vec<usize>],
    level: &[Option<usize>],
) -> Vec<String> {
    let Some(start) = level.iter().position(Option::is_none) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut current = start;
    loop {
        // An unplaced node always has an unplaced dependency, else it would be placed.
        let Some(&next) = deps[current].iter().find(|&&d| level[d].is_none()) else {
            return Vec::new();
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut names: Vec<String> = path[pos..].iter().map(|&i| nodes[i].0.clone()).collect();
            names.push(nodes[next].0.clone());
            // Print in the order things run: dependency first.
            names.reverse();
            return names;
        }
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        edges
            .iter()
            .map(|(n, ds)| {
                (
                    (*n).to_owned(),
                    ds.iter().map(|d| (*d).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn independent_analyses_share_a_level() {
        let g = graph(&[
            ("report", &["ind", "prices"]),
            ("ind", &["prices"]),
            ("prices", &[]),
            ("other", &[]),
        ]);
        assert_eq!(levels(&g).unwrap(), vec![vec![2, 3], vec![1], vec![0]]);
    }

    #[test]
    fn cycles_are_named_in_order() {
        let g = graph(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
        assert_eq!(levels(&g).unwrap_err(), ["a", "b", "c", "a"]);
        let g = graph(&[("self", &["self"])]);
        assert_eq!(levels(&g).unwrap_err(), ["self", "self"]);
    }
}
