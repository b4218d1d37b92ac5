# syntax=docker/dockerfile:1
# Build: docker build -t myelin .
#        (podman: podman build --format docker -t myelin . — the default OCI
#        image format has no HEALTHCHECK and podman drops it)
# Run:   docker run -p 8080:8080 -p 8081:8081 -v myelin-models:/models \
#            -e MYELIN_AUTH__KEYS="admin+read:<key1>,inference:<key2>" myelin
#        Keys are "<scopes>:<key>" entries (scopes admin, inference, read joined
#        by "+"; keys of 16+ characters, e.g. `openssl rand -hex 24`). A keys
#        file works too: -v ./keys:/run/secrets/myelin-keys:ro
#            -e MYELIN_AUTH__KEYS_FILE=/run/secrets/myelin-keys
#        Without keys every endpoint is open and a warning is logged.
# Test:  scripts/docker-smoke.sh myelin
# Offline (no registry, no crates.io): the Containerfile packages a binary
#        built on the host; scripts/docker-smoke.sh --static builds and checks it.
# Rootless podman or a VM runtime with low default limits: run with
#        --ulimit nofile=65536:65536 (one descriptor per connection and per
#        open model file) and, if threads fail to start, --ulimit nproc=4096:4096.

FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
COPY config ./config
COPY benches ./benches
COPY tests ./tests
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && cp target/x86_64-unknown-linux-gnu/release/myelin /myelin \
 && mkdir -p /models-empty

FROM scratch
COPY --from=build /myelin /myelin
COPY --from=build --chown=10001:10001 /models-empty /models
USER 10001:10001
ENV MYELIN_SERVER__HOST=0.0.0.0 \
    MYELIN_SERVER__PORT=8080 \
    MYELIN_STORE__PATH=/models \
    MYELIN_LOG__FORMAT=json
VOLUME ["/models"]
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/myelin", "healthcheck"]
ENTRYPOINT ["/myelin"]
CMD ["serve"]
