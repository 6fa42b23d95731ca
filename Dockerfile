# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, take ONNX Runtime's shared library from its
# PyPI wheel, run as a non-root user on Debian slim. x86_64 only (the wheel's library is).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not refetch crates. Cargo reads every target the
# manifests declare (the benches too), so each needs a stub here.
COPY Cargo.toml Cargo.lock ./
COPY loadtest/Cargo.toml loadtest/Cargo.toml
COPY crates/clarity-core/Cargo.toml crates/clarity-core/Cargo.toml
RUN mkdir -p src loadtest/src benches crates/clarity-core/src \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs crates/clarity-core/src/lib.rs \
    && echo 'fn main() {}' > loadtest/src/main.rs \
    && echo 'fn main() {}' > benches/analytics.rs \
    && echo 'fn main() {}' > benches/pat.rs \
    && cargo fetch --locked
COPY . .
RUN touch src/main.rs src/lib.rs crates/clarity-core/src/lib.rs \
    && cargo build --release --locked --bin clarity \
    && cp target/release/clarity /clarity

# PAT inference: the server loads ONNX Runtime at run time (ort's load-dynamic), so the image
# needs the library from the official wheel and no Python. Pinned by version and hash.
FROM python:3.11-slim-bookworm AS onnxruntime
WORKDIR /wheel
COPY deploy/onnxruntime.requirements.txt ./
RUN python -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --require-hashes \
        --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
        -r onnxruntime.requirements.txt -d . \
    && python -c "import glob, zipfile; zipfile.ZipFile(glob.glob('onnxruntime-*.whl')[0]).extract('onnxruntime/capi/libonnxruntime.so.1.31.1', '/wheel')" \
    && mv /wheel/onnxruntime/capi/libonnxruntime.so.1.31.1 /libonnxruntime.so.1.31.1

FROM debian:bookworm-slim
# libstdc++6 and libgcc-s1 are ONNX Runtime's only needs beyond glibc; slim has them just as
# apt's dependencies, so they are named here. libssl3: the libcrypto that the store's
# SQLCipher links (the build stage's image has libssl-dev).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgcc-s1 libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin clarity \
    && mkdir -p /data && chown clarity /data
COPY --from=build /clarity /usr/local/bin/clarity
COPY --from=onnxruntime --chmod=0644 /libonnxruntime.so.1.31.1 /usr/local/lib/onnxruntime/libonnxruntime.so.1.31.1
COPY --chmod=0755 deploy/clarity-healthcheck /usr/local/bin/clarity-healthcheck
USER clarity
WORKDIR /data
# deploy/clarity.yaml repeats CLARITY_ONNXRUNTIME_LIB; keep the two paths equal. PAT itself
# stays off until CLARITY_PAT_MODEL names a model bundle (mounted, or a layer of a derived
# image; weights are never part of this one).
ENV CLARITY_LISTEN=0.0.0.0:8080 \
    CLARITY_DATA_DIR=/data \
    CLARITY_LOG_FORMAT=json \
    CLARITY_ONNXRUNTIME_LIB=/usr/local/lib/onnxruntime/libonnxruntime.so.1.31.1
VOLUME ["/data"]
EXPOSE 8080
# For `docker run`; ECS ignores it and uses the task definition's identical check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/clarity-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/clarity"]
CMD ["serve"]
