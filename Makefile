# openshell-operator Makefile (kubebuilder v4 conventions).

IMG ?= ghcr.io/openshell-operator/openshell-operator:dev
CHART_DIR ?= charts/openshell-operator
LOCALBIN ?= $(shell pwd)/bin
GOBIN_ENV = GOBIN=$(LOCALBIN)
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

## Tool versions (pinned; all install from the Go module proxy).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.7.1
BUF_VERSION ?= v1.75.0
PROTOC_GEN_GO_VERSION ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
GINKGO_VERSION ?= $(shell go list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2 2>/dev/null || echo v2.28.1)
GOLANGCI_LINT_VERSION ?= v2.15.0
HELM_VERSION ?= v3.22.0
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
helm-sync: ## Copy the CRDs and the manager ClusterRole into the Helm chart (part of manifests).
	rm -f $(CHART_DIR)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/manager-role.yaml

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
build: ## Build the manager and the gateway simulator.
	go build -o bin/manager ./cmd
	go build -o bin/gatewaysim ./cmd/gatewaysim

.PHONY: run
run: ## Run the manager against the current kubeconfig.
	go run ./cmd

.PHONY: docker-build
docker-build: ## Build the manager image (needs a container engine).
	docker build -t $(IMG) .

.PHONY: demo
demo: envtest ## Run apiserver+etcd, the gateway simulator and the operator locally; apply config/samples (Ctrl-C stops).
	go run ./cmd/demo $(DEMO_ARGS)

.PHONY: test-e2e
test-e2e: envtest ## Real-process e2e: apiserver+etcd, simulator and manager binaries, driven with kubectl.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" go test -tags e2e ./test/e2e/... -count=1 -timeout 20m -v

SOAK_SEEDS ?= 1,2,3
SOAK_SEED ?=
SOAK_DURATION ?= 2m
SOAK_SKIP ?=
.PHONY: soak
soak: envtest ## Seeded fault soak with invariants on real processes (SOAK_SEED or SOAK_SEEDS, SOAK_DURATION per seed, SOAK_SKIP kinds; docs/reliability.md).
	SOAK_SEED="$(SOAK_SEED)" SOAK_SEEDS="$(SOAK_SEEDS)" SOAK_DURATION="$(SOAK_DURATION)" SOAK_SKIP="$(SOAK_SKIP)" KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" \
		go test -tags soak ./test/soak/... -count=1 -timeout 6h -v -ginkgo.v

##@ Tools

.PHONY: controller-gen kustomize buf protoc-gen-go protoc-gen-go-grpc ginkgo golangci-lint helm
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

##@ Benchmark

BENCH_ARGS ?= -n 100,1000,5000 -converge-timeout 20m
.PHONY: bench
bench: envtest ## Compare the watch observation mode with per-object polling at scale (docs/performance.md).
	go run ./hack/bench -root . $(BENCH_ARGS)
