# syntax=docker/dockerfile:1
#
# auger: build with `docker build -t auger .` (BuildKit, the default builder since Docker 23).
# The runtime image holds the binary, `git` (auger fetches and pushes the gitops repository and
# the optional ledger remote with the git CLI) and CA certificates (rustls; no OpenSSL needed).

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /build

# The whole workspace: the auger crate depends on crates/github-sim by path; templates/ is
# embedded with include_str!; Cargo.toml names a bench (benches/parse.rs) and cargo checks that
# every declared target exists before it builds anything; examples/ is auto-discovered.
COPY Cargo.toml Cargo.lock ./
COPY src/ src/
COPY crates/ crates/
COPY templates/ templates/
COPY benches/ benches/
COPY examples/ examples/

# Registry and target dir live in cache mounts (fast rebuilds); a cache mount is not part of
# the image, so the binary is copied out of it within the same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/build/target,id=auger-target,sharing=locked \
    CARGO_INCREMENTAL=0 cargo build --profile dist --locked --bin auger \
    && install -D -m 0755 target/dist/auger /out/auger

# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid/gid: a host folder bind-mounted on /data must be writable by 10001.
RUN groupadd --system --gid 10001 auger \
    && useradd --system --uid 10001 --gid auger --home-dir /home/auger --create-home \
       --shell /usr/sbin/nologin auger \
    && mkdir -p /data \
    && chown auger:auger /data

# auger hands git the [gitops] url as written and never passes it a token, and installation
# tokens expire hourly, so git gets its https credentials from this helper: it answers with
# $AUGER_GIT_TOKEN, or else $GITHUB_TOKEN. Only for https://github.com; for GitHub Enterprise
# Server add the host at run time, e.g. GIT_CONFIG_COUNT=1
# GIT_CONFIG_KEY_0=credential.https://ghe.example.com.helper GIT_CONFIG_VALUE_0=auger-env
COPY --chmod=0755 deploy/git-credential-auger-env /usr/local/bin/git-credential-auger-env
RUN git config --system credential.https://github.com.helper auger-env

COPY --from=builder /out/auger /usr/local/bin/auger

# Defaults an operator replaces by mounting over them (files read at run time from [paths]).
WORKDIR /app
COPY deploy/auger.toml /app/auger.toml
COPY templates/ /app/templates/
COPY policies/ /app/policies/

USER auger
# Inbox journal, artifact ledger (artifacts.git), gitops cache, waiting plans.
VOLUME /data
EXPOSE 8080

# No HEALTHCHECK: the image has no HTTP client; let the platform probe GET /healthz.
ENTRYPOINT ["auger"]
CMD ["serve", "--config", "/app/auger.toml"]
