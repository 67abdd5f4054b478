# uringcast in a container: a multi-stage build (the Rust toolchain only in
# the first stage), a slim Debian runtime, a non-root user.
#
#   docker build -t uringcast .
#   docker run --rm -p 8080:8080 -p 5004:5004/udp \
#       -e URINGCAST_PUBLIC_IP=203.0.113.7 uringcast
#
# Media needs the UDP port published as-is (same number inside and out)
# and --public-ip / URINGCAST_PUBLIC_IP set to the address clients reach.
# Docker's default seccomp profile blocks io_uring: `--io auto` (the
# default) then falls back to recvmmsg/sendmmsg and logs a warning; run
# with `--security-opt seccomp=<a profile allowing io_uring_setup,
# io_uring_enter, io_uring_register>` to keep io_uring.

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev pkg-config g++ make cmake perl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p uringcast --bin uringcast \
    && strip target/release/uringcast

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --uid 10001 --shell /usr/sbin/nologin uringcast
COPY --from=build /src/target/release/uringcast /usr/local/bin/uringcast
USER 10001:10001
ENV URINGCAST_HTTP_ADDR=0.0.0.0:8080 \
    URINGCAST_UDP_ADDR=0.0.0.0:5004 \
    URINGCAST_PUBLIC_IP=127.0.0.1 \
    URINGCAST_LOG_FORMAT=json
# Signaling over TCP; media over UDP (and TCP, for ICE-TCP) on one port.
EXPOSE 8080/tcp 5004/udp 5004/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM drains (up to --drain-timeout): give `docker stop -t 90` time.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/uringcast"]
