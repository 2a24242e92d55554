use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    // libpq's default `gssencmode=prefer` initialises Kerberos on every connection to
    // look for a credentials cache, and Kerberos' library destructor then asserted on a
    // mutex at exit (`k5_mutex_unlock: Received error 22`, once in a CI run of
    // `runner maintain`). runner's servers take passwords or trust; whoever wants GSS
    // encryption says so with PGGSSENCMODE or `gssencmode=` in the URL (which wins over
    // the environment). Set before any thread exists.
    if std::env::var_os("PGGSSENCMODE").is_none() {
        std::env::set_var("PGGSSENCMODE", "disable");
    }
    let cli = runner::cli::Cli::parse();
    // Log lines go to stderr; `RUST_LOG` overrides the default level. Without a terminal
    // (cron) they carry no colour codes.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,runner=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        // A closed stderr (`runner run 2>&1 | head -1`) must not turn every later log
        // line into a panic: lines nobody reads are dropped.
        .log_internal_errors(false)
        .init();
    let outcome = runner::run(cli);
    // The command dropped its connection pools; their threads must be gone before
    // `exit` tears down OpenSSL under them (see `db::workers`).
    runner::db::workers::wait_for_exit(
        runner::db::timeouts::connect_timeout() + std::time::Duration::from_secs(1),
    );
    match outcome {
        Ok(()) | Err(runner::error::Error::OutputClosed) => {}
        Err(e) => {
            runner::errln!("{e}");
            std::process::exit(e.code());
        }
    }
}
