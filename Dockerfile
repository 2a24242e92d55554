# The runner image: build with the Rust toolchain, ship a slim Debian with libpq.
#
#   docker build -t runner .
#
# Layers are ordered so that editing src/ rebuilds only runner itself: the dependencies
# are compiled first, against a dummy main, from Cargo.toml and Cargo.lock alone.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev \
 && rm -rf /var/lib/apt/lists/*

# 1. Dependencies only (cached until Cargo.toml or Cargo.lock change).
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --profile docker --locked --bin runner \
 && rm -rf src

# 2. runner itself. The migrations are embedded at compile time. COPY keeps the files'
#    own mtimes, which can be older than the dummy build: touch them so cargo rebuilds.
COPY migrations ./migrations
COPY src ./src
RUN find src -name '*.rs' -exec touch {} + \
 && cargo build --profile docker --locked --bin runner

FROM debian:bookworm-slim
# libpq5: diesel links libpq. No tzdata needed: the zones are compiled into runner.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --no-log-init --uid 10001 runner
# `docker` profile: release with the debug info stripped but the symbols kept, so a
# backtrace (RUST_BACKTRACE=1) still names the functions.
COPY --from=build /src/target/docker/runner /usr/local/bin/runner
WORKDIR /app
COPY jobs ./jobs
COPY templates ./templates
COPY data ./data
# reports/ belongs to the runtime user; a named volume mounted there starts as a copy of
# it, ownership included, so runs can write their reports.
RUN mkdir -p reports && chown runner:runner reports
USER runner
ENTRYPOINT ["runner"]
CMD ["run", "jobs/quarterly.toml"]
