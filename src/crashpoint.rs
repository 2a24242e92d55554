//! Named points where a test can make the process die as `kill -9` would.
//!
//! Crash-safety is a claim about every moment of a run, so the tests need to stop a
//! run at moments of their choosing: between an ingest batch and the aggregate refresh,
//! halfway through writing a report, and so on. With `RUNNER_CRASH_AT=<name>` in the
//! environment, the process sends itself SIGKILL the `n`-th time (`<name>:<n>`, default
//! the first) it reaches [`reached`]`(<name>)`: no destructors, no flushing, no
//! rollback but the server's. Without the variable this is one relaxed atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The point and the hit on which to die, read once from the environment.
fn target() -> Option<&'static (String, u64)> {
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let spec = std::env::var("RUNNER_CRASH_AT").ok()?;
            Some(parse(&spec))
        })
        .as_ref()
}

fn parse(spec: &str) -> (String, u64) {
    match spec.rsplit_once(':') {
        Some((name, n)) if n.parse::<u64>().is_ok() => (name.to_owned(), n.parse().unwrap_or(1)),
        _ => (spec.to_owned(), 1),
    }
}

static HITS: AtomicU64 = AtomicU64::new(0);

/// Die here if the environment asks for it (see the module docs).
pub fn reached(name: &str) {
    let Some((wanted, nth)) = target() else {
        return;
    };
    if wanted != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
        return;
    }
    eprintln!("crash point `{name}` reached: killing the process");
    // SIGKILL from outside, as an operator's `kill -9` would; `abort` would run no
    // destructors either, but SIGKILL is what the tests claim to survive.
    let _ = std::process::Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status();
    // `kill` may be missing on an odd machine: never carry on past the point.
    std::process::abort();
}

/// Sleep here when `RUNNER_PAUSE_AT=<name>:<millis>` names this point: lets a test act
/// on a run that is provably in the middle of something (e.g. terminate its lock).
pub fn pause(name: &str) {
    static PAUSE: OnceLock<Option<(String, u64)>> = OnceLock::new();
    let Some((wanted, millis)) = PAUSE
        .get_or_init(|| Some(parse(&std::env::var("RUNNER_PAUSE_AT").ok()?)))
        .as_ref()
    else {
        return;
    };
    if wanted == name {
        eprintln!("pause point `{name}` reached: sleeping {millis} ms");
        std::thread::sleep(std::time::Duration::from_millis(*millis));
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_take_an_optional_hit_count() {
        assert_eq!(parse("refresh:weekly"), ("refresh:weekly".to_owned(), 1));
        assert_eq!(parse("ingest:batch:3"), ("ingest:batch".to_owned(), 3));
    }
}
