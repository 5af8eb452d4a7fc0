# syntax=docker/dockerfile:1
# Slipway's images: `docker build --target worker .` and `docker build --target gateway .`
# (docker-compose.temporal.yml builds both). Pure Go (modernc SQLite, pgx), so CGO is off and
# the binaries run on any glibc or musl base.

ARG GO_VERSION=1.26
ARG BUILDKIT_VERSION=v0.34.2

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	go build -ldflags="-s -w" -o /out/ ./cmd/worker ./cmd/gateway ./cmd/slipway-buildnet

# Builds clone with git (no prompts, credentials only in its environment) and talk TLS to Git
# hosts and registries; curl serves the health checks.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
	&& apt-get install -y --no-install-recommends git ca-certificates curl \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --user-group --home-dir /var/lib/slipway --create-home slipway \
	&& install -d -o 10001 -g 10001 -m 0755 /var/lib/slipway-registry-token
ENV SLIPWAY_HOME=/var/lib/slipway
WORKDIR /var/lib/slipway
USER 10001:10001
VOLUME ["/var/lib/slipway"]

FROM runtime AS worker
COPY --from=build /out/worker /usr/local/bin/slipway-worker
ENV SLIPWAY_WORKER_METRICS_ADDR=0.0.0.0:9090
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s CMD ["curl", "-fsS", "http://127.0.0.1:9090/healthz"]
# SIGTERM lets running builds finish for up to 30 s (WorkerStopTimeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/slipway-worker"]

FROM runtime AS gateway
COPY --from=build /out/gateway /usr/local/bin/slipway-gateway
ENV SLIPWAY_GATEWAY_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=10s --start-period=10s CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/slipway-gateway"]

# buildkitd with the build network: slipway-buildnet creates the bridge, writes the CNI
# configuration and installs the nftables egress filter in buildkitd's network namespace, then
# execs buildkitd; if any of it fails, buildkitd does not start.
FROM moby/buildkit:${BUILDKIT_VERSION} AS buildkitd
RUN apk add --no-cache nftables iproute2 cni-plugins
COPY --from=build /out/slipway-buildnet /usr/local/bin/slipway-buildnet
ENTRYPOINT ["/usr/local/bin/slipway-buildnet", "--", "buildkitd"]
