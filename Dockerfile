# Multi-stage build of the runner image: compile with the Rust toolchain, ship a slim
# Debian with libpq and the job files.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin runner

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 runner
COPY --from=build /src/target/release/runner /usr/local/bin/runner
WORKDIR /app
COPY jobs ./jobs
COPY templates ./templates
COPY data ./data
RUN mkdir -p reports && chown -R runner /app
USER runner
ENTRYPOINT ["runner"]
CMD ["run", "jobs/quarterly.toml"]
