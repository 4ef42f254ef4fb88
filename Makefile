# openshell-operator Makefile (kubebuilder v4 conventions).

IMG ?= $(IMAGE_REPO):$(VERSION)
CHART_DIR ?= charts/openshell-operator
LOCALBIN ?= $(shell pwd)/bin
GOBIN_ENV = GOBIN=$(LOCALBIN)
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

## Version: VERSION is the one source (semver, v0.x.y); chart, kustomize image tag and CHANGELOG.md
## follow it (test/packaging checks). Every binary is stamped through internal/version.
VERSION ?= $(shell cat VERSION)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Every timestamp (build date, image) is the commit time, so builds of a commit are reproducible.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
BUILD_DATE ?= $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r $(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG = github.com/openshell-operator/openshell-operator/internal/version
LDFLAGS = -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT) -X $(VERSION_PKG).Date=$(BUILD_DATE)

## Image (`make image`): no container engine; see hack/image and docs/install.md.
IMAGE_REPO ?= ghcr.io/openshell-operator/openshell-operator
IMAGE_DIR ?= bin/image
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt

## Tool versions (pinned; all install from the Go module proxy).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.7.1
BUF_VERSION ?= v1.75.0
PROTOC_GEN_GO_VERSION ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
GINKGO_VERSION ?= $(shell go list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2 2>/dev/null || echo v2.28.1)
GOLANGCI_LINT_VERSION ?= v2.15.0
HELM_VERSION ?= v3.22.0
ACTIONLINT_VERSION ?= v1.7.12
# goreleaser newer than v2.15.x needs a newer Go than the project's.
GORELEASER_VERSION ?= v2.15.1
# helm's release build stamps its version and the Kubernetes version `helm template` and
# `helm lint` assume (that of its client-go, v0.37 for helm v3.22); `go install` must pass the
# same -X flags, else helm assumes Kubernetes 1.20 and refuses the chart's kubeVersion.
HELM_KUBE_VERSION_MINOR ?= 37
HELM_LDFLAGS = -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_KUBE_VERSION_MINOR) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_KUBE_VERSION_MINOR)

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
BUF ?= $(LOCALBIN)/buf
PROTOC_GEN_GO ?= $(LOCALBIN)/protoc-gen-go
PROTOC_GEN_GO_GRPC ?= $(LOCALBIN)/protoc-gen-go-grpc
GINKGO ?= $(LOCALBIN)/ginkgo
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
HELM ?= $(LOCALBIN)/helm
ACTIONLINT ?= $(LOCALBIN)/actionlint
GORELEASER ?= $(LOCALBIN)/goreleaser

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	@$(MAKE) --no-print-directory helm-sync

.PHONY: helm-sync
helm-sync: ## Copy the CRDs, the manager ClusterRole, the guardrail and approvals policies and the reviewer roles into the Helm chart (part of manifests).
	rm -f $(CHART_DIR)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/manager-role.yaml
	cp config/components/guardrails/policies.yaml $(CHART_DIR)/files/guardrails-policies.yaml
	cp config/approvals/approvals_policy.yaml $(CHART_DIR)/files/approvals-policy.yaml
	cp config/approvals/reviewer_roles.yaml $(CHART_DIR)/files/approvals-reviewer-roles.yaml

.PHONY: helm-lint
helm-lint: helm ## Lint the Helm chart with its default values and every ci/*-values.yaml set.
	$(HELM) lint --strict $(CHART_DIR)
	for f in $(CHART_DIR)/ci/*-values.yaml; do $(HELM) lint --strict $(CHART_DIR) -f "$$f"; done

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: proto
proto: buf protoc-gen-go protoc-gen-go-grpc ## Regenerate gen/ from proto/ with local buf plugins.
	rm -rf gen/openshell
	$(BUF) generate

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	$(GOLANGCI_LINT) run --build-tags e2e,envtest,soak ./...

.PHONY: tidy
tidy: ## Run go mod tidy.
	go mod tidy

.PHONY: verify
verify: ## Fail if generated code, manifests, go.mod or formatting are stale, or vet/lint complain.
	hack/verify.sh

.PHONY: envtest
envtest: ## Provide kube-apiserver and etcd for envtest (cached under bin/k8s).
	@hack/setup-envtest.sh >/dev/null

.PHONY: test
test: envtest helm kustomize ## Run unit, simulator, client, envtest and packaging suites.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" go test -tags envtest ./... -count=1 -timeout 30m


.PHONY: test-unit
test-unit: ## Unit tests of every package (reconcile branches, mappings, client, simulator); no envtest assets, no tools.
	go test $$(go list ./... | grep -v '/test/') -count=1 -timeout 5m

FUZZTIME ?= 10s
# New coverage is minimized for at most this many runs, so short runs spend their time fuzzing.
FUZZMINIMIZETIME ?= 100x
FUZZ_PKG ?= ./internal/controller
FUZZ_TARGETS ?= FuzzSandboxPolicyToGateway FuzzSandboxDesiredSpec FuzzSandboxPolicyHash FuzzGatewayName

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 10s); failing inputs land in testdata/fuzz.
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t for $(FUZZTIME)"; \
		go test $(FUZZ_PKG) -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) || exit 1; \
	done

.PHONY: build
build: ## Build the manager and the gateway simulator, stamped with VERSION (--version).
	go build -ldflags '$(LDFLAGS)' -o bin/manager ./cmd
	go build -ldflags '$(LDFLAGS)' -o bin/gatewaysim ./cmd/gatewaysim

.PHONY: print-ldflags
print-ldflags: ## Print the -ldflags every build stamps (VERSION, commit, commit time); test/packaging uses it.
	@echo '$(LDFLAGS)'

.PHONY: run
run: ## Run the manager against the current kubeconfig.
	go run ./cmd

.PHONY: docker-build
docker-build: ## Build the manager image (needs a container engine).
	docker build --build-arg LDFLAGS='$(LDFLAGS)' -t $(IMG) .

.PHONY: image
image: ## Build the multi-arch manager image without a container engine: OCI layout in $(IMAGE_DIR)/oci, docker archives beside it.
	rm -rf $(IMAGE_DIR)
	for p in $(IMAGE_PLATFORMS); do \
		echo "image: building the manager for $$p"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build -trimpath -buildvcs=false -ldflags '-s -w $(LDFLAGS)' \
			-o $(IMAGE_DIR)/binaries/manager-$${p%/*}-$${p#*/} ./cmd; \
	done
	go run ./hack/image --out $(IMAGE_DIR) --repository $(IMAGE_REPO) --version $(VERSION) --revision $(COMMIT) \
		--source-date-epoch $(SOURCE_DATE_EPOCH) --ca-certs $(CA_CERTS) \
		$(foreach p,$(IMAGE_PLATFORMS),--binary $(p)=$(IMAGE_DIR)/binaries/manager-$(subst /,-,$(p)))

.PHONY: test-image
test-image: image ## Check the image `make image` wrote (platforms, user, entrypoint, labels, the binary runs).
	IMAGE_DIR=$(abspath $(IMAGE_DIR)) go test ./test/image/... -count=1 -v

.PHONY: release-snapshot
release-snapshot: goreleaser ## Dry run of the release build: the kubectl plugin for every platform, archives, checksums, krew manifest (dist/), nothing signed or published.
	GORELEASER=$(GORELEASER) hack/release-snapshot.sh

.PHONY: demo
demo: envtest ## Run apiserver+etcd, the gateway simulator and the operator locally; apply config/samples (Ctrl-C stops).
	go run ./cmd/demo $(DEMO_ARGS)

.PHONY: test-e2e
test-e2e: envtest image ## Real-process e2e: apiserver+etcd, simulator and the manager binary from `make image`, driven with kubectl.
	E2E_IMAGE_LAYOUT=$(abspath $(IMAGE_DIR))/oci KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" go test -tags e2e ./test/e2e/... -count=1 -timeout 20m -v

SOAK_SEEDS ?= 1,2,3
SOAK_SEED ?=
SOAK_DURATION ?= 2m
SOAK_SKIP ?=
.PHONY: soak
soak: envtest ## Seeded fault soak with invariants on real processes (SOAK_SEED or SOAK_SEEDS, SOAK_DURATION per seed, SOAK_SKIP kinds; docs/reliability.md).
	SOAK_SEED="$(SOAK_SEED)" SOAK_SEEDS="$(SOAK_SEEDS)" SOAK_DURATION="$(SOAK_DURATION)" SOAK_SKIP="$(SOAK_SKIP)" KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" \
		go test -tags soak ./test/soak/... -count=1 -timeout 6h -v -ginkgo.v

##@ Tools

.PHONY: controller-gen kustomize buf protoc-gen-go protoc-gen-go-grpc ginkgo golangci-lint helm actionlint goreleaser
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN): ; $(GOBIN_ENV) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE): ; $(GOBIN_ENV) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
buf: $(BUF)
$(BUF): ; $(GOBIN_ENV) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
protoc-gen-go: $(PROTOC_GEN_GO)
$(PROTOC_GEN_GO): ; $(GOBIN_ENV) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
protoc-gen-go-grpc: $(PROTOC_GEN_GO_GRPC)
$(PROTOC_GEN_GO_GRPC): ; $(GOBIN_ENV) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
ginkgo: $(GINKGO)
$(GINKGO): ; $(GOBIN_ENV) go install github.com/onsi/ginkgo/v2/ginkgo@$(GINKGO_VERSION)
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT): ; $(GOBIN_ENV) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
helm: $(HELM)
$(HELM): ; $(GOBIN_ENV) go install -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
actionlint: $(ACTIONLINT)
$(ACTIONLINT): ; $(GOBIN_ENV) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
goreleaser: $(GORELEASER)
$(GORELEASER): ; $(GOBIN_ENV) go install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

##@ Benchmark

BENCH_ARGS ?= -n 100,1000,5000 -converge-timeout 20m
.PHONY: bench
bench: envtest ## Compare the watch observation mode with per-object polling at scale (docs/performance.md).
	go run ./hack/bench -root . $(BENCH_ARGS)

.PHONY: bench-secrets
bench-secrets: envtest ## Manager RSS with 2,000 unrelated 100 KiB Secrets against none (docs/performance.md).
	go run ./hack/secretsbench --secrets 2000 --size 102400
