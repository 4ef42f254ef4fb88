#!/usr/bin/env bash
# Prints the path of a kubectl >= 1.30.
#
# Order: bin/kubectl; a kubectl on PATH whose client version is >= 1.30; finally a build of
# k8s.io/kubernetes/cmd/kubectl from the Go module proxy into bin/kubectl (first run only).
# Progress goes to stderr, the path to stdout.
set -euo pipefail

K8S_VERSION="${KUBECTL_K8S_VERSION:-1.37.2}"
MIN_MINOR=30
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ROOT}/bin/kubectl"

log() { echo "setup-kubectl: $*" >&2; }

if [[ -x "${OUT}" ]]; then echo "${OUT}"; exit 0; fi

if onpath="$(command -v kubectl 2>/dev/null)"; then
  minor="$("${onpath}" version --client 2>/dev/null | sed -n 's/^Client Version: v1\.\([0-9]*\).*/\1/p' | head -1)"
  if [[ -n "${minor}" && "${minor}" -ge "${MIN_MINOR}" ]]; then echo "${onpath}"; exit 0; fi
  log "kubectl on PATH (${onpath}) is older than 1.${MIN_MINOR}; building v${K8S_VERSION}"
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
start=$(date +%s)
mkdir -p "${ROOT}/bin"
(
  cd "${work}"
  go mod init kubectl-build >/dev/null 2>&1
  go mod edit -require="k8s.io/kubernetes@v${K8S_VERSION}"
  # k8s.io/kubernetes points its staging modules at ./staging; pin each to the published module.
  modfile="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  staging_version="v0.${K8S_VERSION#1.}"
  for m in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "${modfile}"); do
    go mod edit -replace="${m}=${m}@${staging_version}"
  done
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kubectl"
GO
  GOFLAGS=-mod=mod go mod tidy >/dev/null
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "${OUT}" k8s.io/kubernetes/cmd/kubectl
)
log "built kubectl v${K8S_VERSION} in $(( $(date +%s) - start ))s"
echo "${OUT}"
