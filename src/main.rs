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
        .init();
    if let Err(e) = runner::run(cli) {
        eprintln!("{e}");
        std::process::exit(e.code());
    }
}
