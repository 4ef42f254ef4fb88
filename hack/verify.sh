#!/usr/bin/env bash
# Fails when anything generated (proto code, deepcopy, CRDs, RBAC, and their copies in the Helm
# chart), go.mod/go.sum or formatting is stale, when vet / golangci-lint complain, or when the
# GitHub workflows (actionlint; with shellcheck on PATH it also checks their run: scripts) or the
# goreleaser configuration (goreleaser check) are invalid. Run by `make verify` and CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

make --no-print-directory proto generate manifests
go mod tidy
gofmt_out="$(gofmt -l $(git ls-files '*.go' | grep -v '^gen/') 2>/dev/null || true)"
if [[ -n "${gofmt_out}" ]]; then
  echo "verify: files need gofmt:"; echo "${gofmt_out}"; exit 1
fi
if ! git diff --exit-code --stat -- . ; then
  echo "verify: generated files, manifests or go.mod/go.sum are stale; run 'make proto generate manifests tidy' and commit" >&2
  exit 1
fi
untracked="$(git ls-files --others --exclude-standard -- gen api config charts)"
if [[ -n "${untracked}" ]]; then
  echo "verify: generated files not committed:"; echo "${untracked}"; exit 1
fi
go vet ./...
make --no-print-directory lint
make --no-print-directory actionlint goreleaser
bin/actionlint
bin/goreleaser check -q
echo "verify: clean"
