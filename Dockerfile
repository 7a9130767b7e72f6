# syntax=docker/dockerfile:1
# tallyd's container image: one static binary on an empty base, run as a
# non-root user, config at /etc/tallyd/tallyd.yaml.
#
#   docker build -t tallyd .
#
# builds the binary in the `build` stage (needs a registry for rust:bookworm).
# Offline, build it on the host and feed it in (this is what CI does):
#
#   RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=symbols \
#       cargo build --release --locked --no-default-features --features jemalloc \
#       --target x86_64-unknown-linux-gnu
#   docker build --build-arg BINARY_FROM=prebuilt -t tallyd .
#
# The image is built without the `gpu` feature: GPU offload needs the host's
# Vulkan driver, which an empty image does not have.

ARG BINARY_FROM=build

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked \
        --no-default-features --features jemalloc --target x86_64-unknown-linux-gnu \
    && mkdir -p /out && cp target/x86_64-unknown-linux-gnu/release/tallyd /out/tallyd

FROM scratch AS prebuilt
COPY target/x86_64-unknown-linux-gnu/release/tallyd /out/tallyd

FROM ${BINARY_FROM} AS binary

FROM scratch
COPY --from=binary /out/tallyd /usr/local/bin/tallyd
COPY config/container.yaml /etc/tallyd/tallyd.yaml
USER 65532:65532
# DogStatsD over UDP and TCP, gRPC (tallyd's API and OTLP), HTTP (/metrics).
EXPOSE 8125/udp 8125/tcp 4317/tcp 9102/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD ["/usr/local/bin/tallyd", "healthcheck", "--addr", "127.0.0.1:9102"]
ENTRYPOINT ["/usr/local/bin/tallyd"]
CMD ["--config", "/etc/tallyd/tallyd.yaml"]
