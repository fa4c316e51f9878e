# The `saga` binary in a small image. Build: docker build -t order-saga-worker .

# --- build: the Temporal SDK's build scripts need protoc and Google's well-known .proto files;
# the `dist` profile (Cargo.toml) is the shipped build: whole-program LTO, a smaller worker.
# The toolchain is the one worker/link-order.txt was recorded with: its symbol names are that
# compiler's, and with another the binary links in the usual order, 9 MiB larger in memory ---
FROM rust:1.95-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked --bin saga \
    && cp target/dist/saga /usr/local/bin/saga

# --- runtime: the binary, CA certificates for TLS connections, a non-root user ---
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --create-home saga
COPY --from=builder /usr/local/bin/saga /usr/local/bin/saga
COPY testdata /testdata
USER saga
WORKDIR /data
ENV SAGA_DATA_DIR=/data \
    TEMPORAL_ADDRESS=temporal:7233
VOLUME ["/data"]
ENTRYPOINT ["saga"]
CMD ["worker"]
