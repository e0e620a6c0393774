# syntax=docker/dockerfile:1
#
# The taskraft node image.
#
#   docker build -t taskraft:0.2.0 --build-arg TASKRAFT_COMMIT=$(git rev-parse --short=12 HEAD) .
#   docker run --rm -p 8080:8080 \
#     -e TASKRAFT_MYSQL_URL=mysql://user:password@host:3306/taskraft taskraft:0.2.0
#
# Stage 1 builds the release binary with the official Rust image; stage 2 is
# Debian slim with the binary, the board's files, the SQL migrations and the
# Kubernetes preStop hook, running as an unprivileged user (uid 10001).
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# The toolchain this project is developed and tested with; Cargo.toml's
# rust-version (1.92) is the oldest that may work.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# The commit the image is built from, for /api/cluster and
# taskraft_build_info (the context has no .git); "unknown" if not given.
ARG TASKRAFT_COMMIT=
ENV TASKRAFT_COMMIT=${TASKRAFT_COMMIT}
WORKDIR /src
COPY . .
# Registry and target directory are cache mounts: a rebuild after a source
# change recompiles only taskraft itself. The binary is copied out of the
# cache mount, which does not persist into the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin taskraft \
    && install -D -m 0755 target/release/taskraft /out/taskraft

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: TLS to anything outside the pod (the Kubernetes API in the
# preStop hook); curl and jq: the preStop hook (scripts/k8s/taskraft-prestop).
# Versions come from the Debian release pinned by the base image tag.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl jq \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 taskraft \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/taskraft \
        --no-create-home --shell /usr/sbin/nologin taskraft \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/taskraft

COPY --from=build /out/taskraft /usr/local/bin/taskraft
# The binary embeds both; they ship too, for reading and for `static_dir`.
COPY static/ /usr/share/taskraft/static/
COPY sql/ /usr/share/taskraft/sql/
COPY --chmod=0755 scripts/k8s/taskraft-prestop /usr/local/bin/taskraft-prestop

LABEL org.opencontainers.image.title="taskraft" \
      org.opencontainers.image.description="A kanban task board replicated with Raft, stored in MySQL, live over WebSocket" \
      org.opencontainers.image.licenses="MIT"

# Listen on every interface inside a container; the Raft log under the
# working directory's volume. Everything else comes from the environment
# (see README: Configuration, Deploy on Kubernetes).
ENV TASKRAFT_HTTP_ADDR=0.0.0.0:8080 \
    TASKRAFT_RAFT_ADDR=0.0.0.0:9080 \
    TASKRAFT_DATA_DIR=/var/lib/taskraft/raft
WORKDIR /var/lib/taskraft
USER 10001:10001
EXPOSE 8080 9080
ENTRYPOINT ["taskraft"]
CMD ["serve"]
