# syntax=docker/dockerfile:1
# cronlane: the operator, the worker and the CLI in one image.
#
#   docker build -t cronlane/cronlane:0.1.0 .     (or `make image`, which uses podman)
#
# The default entrypoint is the operator; run the others with --entrypoint (or
# `command:` in a pod spec): cronlane-worker, cronlane.

FROM debian:bookworm-slim AS build
# The same Debian packages as `hack/deps.sh build` (`make deps` installs them too).
COPY hack/deps.sh /usr/local/bin/cronlane-deps
RUN cronlane-deps build && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY common common
COPY dispatcher dispatcher
COPY operator operator
COPY worker worker
COPY cli cli
COPY crds crds
# The ccache directory is a build cache mount, so rebuilding after a source change
# recompiles only what changed.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCRONLANE_BUILD_TESTS=OFF -DCRONLANE_BUILD_BENCH=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
 && cmake --build /build --target cronlane-operator cronlane-worker cronlane \
 && strip /build/bin/cronlane-operator /build/bin/cronlane-worker /build/bin/cronlane \
 && install -D -m 0755 -t /out /build/bin/cronlane-operator /build/bin/cronlane-worker /build/bin/cronlane

FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="cronlane" \
      org.opencontainers.image.description="Cron for Kubernetes, fired through Kafka: operator, worker and CLI" \
      org.opencontainers.image.version="${VERSION}"
# Only the shared libraries the binaries link (found with ldd), plus time zones for
# spec.timeZone and CA certificates for TLS to the API server and Kafka.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcpprest2.10 libdate-tz3 libfmt9 libprometheus-cpp-core1.0 librdkafka1 libsimdjson14 libspdlog1.10 \
      libssl3 libtcmalloc-minimal4 libyaml-cpp0.7 libsasl2-modules tzdata ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 cronlane \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cronlane
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/cronlane-operator"]
