#!/usr/bin/env bash
# Installs the Debian packages cronlane needs to build, test and run its local
# environment. Idempotent: prints nothing and changes nothing when all are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates
  openssl libssl-dev tzdata procps psmisc iproute2
  libcpprest-dev libboost-system-dev libyaml-cpp-dev librdkafka-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev nlohmann-json3-dev libhowardhinnant-date-dev
  prometheus-cpp-dev libcli11-dev libbenchmark-dev libsimdjson-dev
  clang clang-format clang-tidy libclang-rt-14-dev kcat
  golang-go default-jre-headless maven
)

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
