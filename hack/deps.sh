#!/usr/bin/env bash
# Installs the Debian packages cronlane needs to build, test and run its local
# environment. Idempotent: prints nothing and changes nothing when all are present.
# Usage: hack/deps.sh [build|all]
set -euo pipefail

# build: what compiles the binaries (the Dockerfile's build stage uses this list).
# all (default): build + tests, tools, the local environment and the image build.
BUILD_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config ca-certificates
  libssl-dev tzdata
  libcpprest-dev libboost-system-dev libyaml-cpp-dev librdkafka-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libhowardhinnant-date-dev prometheus-cpp-dev libcli11-dev libsimdjson-dev
  libgoogle-perftools-dev
)
TEST_PACKAGES=(
  git curl openssl procps psmisc iproute2
  libgtest-dev libgmock-dev libbenchmark-dev
  clang clang-format clang-tidy libclang-rt-14-dev kcat gnuplot-nox
  podman runc debootstrap
  containerd containernetworking-plugins iptables
  golang-go default-jre-headless maven
  lua5.1 lua-cjson prometheus
  chromium chromium-driver fonts-dejavu-core
)
case "${1:-all}" in
  build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  all) PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "usage: hack/deps.sh [build|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  # golang/java/maven may come from the machine image rather than Debian.
  case "$p" in
    golang-go) command -v go >/dev/null 2>&1 && continue ;;
    default-jre-headless) command -v java >/dev/null 2>&1 && continue ;;
    maven) command -v mvn >/dev/null 2>&1 && continue ;;
  esac
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${#missing[@]} Debian package(s): ${missing[*]}"
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/cronlane-apt.log 2>&1 || {
  echo "deps: apt-get install failed; see /tmp/cronlane-apt.log" >&2
  tail -20 /tmp/cronlane-apt.log >&2
  exit 1
}
echo "deps: done"
