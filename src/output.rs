//! What commands print, and a reader that goes away.
//!
//! Rust ignores SIGPIPE, so writing to a closed pipe (`runner render … | head -1`)
//! returns `BrokenPipe` and `println!` panics on it. runner does not restore the default
//! SIGPIPE (that needs `unsafe`, which the crate forbids, and for `run` it would kill a
//! run in the middle of a transaction because its log's reader left). Instead:
//!
//! * [`outln!`]/[`out!`] write to stdout and, on a broken pipe, return
//!   [`Error::OutputClosed`]: the command stops producing output and exits 0 quietly,
//!   as `head` users expect;
//! * [`errln!`] writes notes to stderr and ignores failures, like the log (whose
//!   subscriber is told not to report its own write errors): a closed stderr never
//!   aborts a run.

use std::fmt;
use std::io::Write;

use crate::error::{Error, Result};

/// Write `text` to stdout.
///
/// # Errors
/// [`Error::OutputClosed`] when the reader went away; other write errors as a failure.
pub fn stdout(text: fmt::Arguments<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::OutputClosed),
        Err(e) => Err(Error::Message(format!("cannot write to stdout: {e}"))),
    }
}

/// Write `text` to stderr, ignoring failure (nobody may be reading).
pub fn stderr(text: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(text);
}

/// `println!` that ends the command quietly when stdout is closed (use in a function
/// returning `crate::error::Result`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` that ends the command quietly when stdout is closed.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*))?
    };
}

/// `eprintln!` that never fails.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}
