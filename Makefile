# cronlane — entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PRESET ?= dev
BUILD_DIR := $(if $(filter dev,$(PRESET)),build,build-$(PRESET))
CTEST_ARGS ?=
export CRONLANE_CACHE ?= $(HOME)/.cache/cronlane
# kubectl of the test environment's Kubernetes (tests/env/versions.sh) comes first:
# Debian's is out of the env's version skew.
KUBE_VERSION := $(shell sed -n 's/^KUBE_VERSION=\([^ ]*\).*/\1/p' tests/env/versions.sh)
export PATH := $(CRONLANE_CACHE)/kubernetes-$(KUBE_VERSION)/bin:$(PATH)
# One compiler cache for every clone of the repo (CI builds a fresh clone): paths
# under the checkout are hashed relative to it, and the build directory is not
# hashed, so a clone elsewhere reuses the objects of this one.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= true

.PHONY: help deps tools build test unit integration demo env-up env-down env-status bench bench-burst bench-peers bench-pools bench-scale bench-shards bench-worker lint format fuzz tsan thread-safety clean image

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

deps: ## Install missing Debian packages (quiet when nothing is missing)
	@hack/deps.sh

tools: deps ## Build/download etcd, Kubernetes (control plane, kubelet, kube-proxy) and Kafka into ~/.cache/cronlane (cached)
	@tests/env/build-etcd.sh
	@tests/env/build-kube.sh
	@tests/env/fetch-kafka.sh
	@tests/env/build-gitops-tools.sh >/dev/null

$(BUILD_DIR)/CMakeCache.txt:
	@cmake --preset $(PRESET) >/dev/null

build: deps $(BUILD_DIR)/CMakeCache.txt ## Build everything (binaries in build/bin/)
	@cmake --build --preset $(PRESET)

unit: build ## Run the unit tests only (no servers)
	@ctest --test-dir $(BUILD_DIR) -L unit --output-on-failure $(CTEST_ARGS)

test: build tools ## Install what is missing, build, and run every test (unit, integration, e2e)
	@ctest --test-dir $(BUILD_DIR) --output-on-failure $(CTEST_ARGS)

integration: build tools ## Run the integration tests (starts and stops the local environment)
	@ctest --test-dir $(BUILD_DIR) -L integration --output-on-failure $(CTEST_ARGS)

env-up: deps tools ## Start the local cluster (apiserver, controllers, one node) + Kafka; writes .cronlane/env
	@tests/env/up.sh

env-down: ## Stop exactly what env-up started
	@tests/env/down.sh

env-status: ## Show whether the local environment is up
	@tests/env/status.sh

demo: build tools ## The local cluster, cronlane installed on it from manifests/overlays/local, sample tasks firing and worker Pods scaling
	@hack/demo.sh

bench: deps tools ## Run the benchmarks (release build; fire_bench against a local Kafka) and print results
	@cmake --preset release >/dev/null && cmake --build --preset release --target cron_bench fire_bench operator_core_bench cronlane-operator
	@hack/bench.sh build-release

image: deps ## Build the container image cronlane/cronlane:<version> (podman + runc; local debian base)
	@hack/image.sh

bench-peers: deps tools ## cronlane vs Kubernetes CronJob: firing at N=100/1000/5000, then runs started on a node (warm workers vs a Pod per run) at N=100/1000; about 70 min
	@cmake --preset release >/dev/null && cmake --build --preset release --target fire_bench cronlane-operator
	@hack/bench-peers.sh build-release

bench-scale: deps tools ## 10k and 100k ScheduledTasks through the real apiserver: start-up, fire lag, RSS, failover; about 40 min
	@cmake --preset release >/dev/null && cmake --build --preset release --target fire_bench cronlane-operator
	@hack/bench-scale.sh build-release

bench-shards: deps tools ## 1, 2 and 4 active replicas (--shards 16) with 100k ScheduledTasks side by side, and a hand-over; about 25 min
	@cmake --preset release >/dev/null && cmake --build --preset release --target fire_bench cronlane-operator
	@hack/bench-shards.sh build-release

bench-pools: deps tools ## 100 and 1,000 WorkerPools on one operator: poll cycle achieved, CPU, RSS, API requests, scale-up of every pool at once; about 10 min
	@cmake --preset release >/dev/null && cmake --build --preset release --target pool_bench cronlane-operator
	@hack/bench-pools.sh build-release

bench-burst: deps tools ## Predictive vs reactive vs fixed workers for a 400-message burst at a known time (workers start 10 s late): time to drain, worker-seconds, plot; about 6 min
	@cmake --preset release >/dev/null && cmake --build --preset release --target pool_bench worker_bench cronlane-operator cronlane-worker
	@hack/bench-burst.sh build-release

bench-worker: deps tools ## One worker running 5,000 and 50,000 fired tasks (exec at concurrency 1/4/16, in-process at 1/4), beside xargs -P4 (spawn limit) and a bare consumer (fast rows: medians of 5); about 8 min
	@cmake --preset release >/dev/null && cmake --build --preset release --target worker_bench cronlane-worker cronlane-example-worker
	@hack/bench-worker.sh build-release

fuzz: deps ## Run every libFuzzer target for FUZZ_SECONDS each (default 60)
	@hack/fuzz.sh all $${FUZZ_SECONDS:-60} $(BUILD_DIR)/fuzz

tsan: deps tools ## Thread sanitizer: build-tsan/, unit tests, then worker/dispatcher integration tests (brings the environment up)
	@export CRONLANE_STATE_DIR=$(CURDIR)/.cronlane/test; tests/env/up.sh && trap tests/env/down.sh EXIT && hack/tsan.sh all

thread-safety: deps ## clang -Wthread-safety build of the product (build-clang/)
	@hack/thread-safety.sh

lint: build ## clang-format check and clang-tidy
	@hack/lint.sh $(BUILD_DIR)

format: ## Reformat the C++ sources in place
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean: ## Remove build directories (the tool cache stays)
	rm -rf build build-*
