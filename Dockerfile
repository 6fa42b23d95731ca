# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run as a non-root user on Debian slim.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not refetch crates.
COPY Cargo.toml Cargo.lock ./
COPY loadtest/Cargo.toml loadtest/Cargo.toml
RUN mkdir -p src loadtest/src \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > loadtest/src/main.rs \
    && cargo fetch --locked
COPY . .
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin clarity \
    && cp target/release/clarity /clarity

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin clarity \
    && mkdir -p /data && chown clarity /data
COPY --from=build /clarity /usr/local/bin/clarity
USER clarity
WORKDIR /data
ENV CLARITY_LISTEN=0.0.0.0:8080 \
    CLARITY_DATA_DIR=/data \
    CLARITY_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/clarity"]
CMD ["serve"]
