use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
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
