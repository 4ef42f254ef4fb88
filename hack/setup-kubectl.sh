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

# shellcheck source=hack/lib/build-from-proxy.sh
source "${ROOT}/hack/lib/build-from-proxy.sh"
start=$(date +%s)
mkdir -p "${ROOT}/bin"
build_go_binary "k8s.io/kubernetes@v${K8S_VERSION}" k8s.io/kubernetes/cmd/kubectl "${OUT}" k8s
log "built kubectl v${K8S_VERSION} in $(( $(date +%s) - start ))s"
echo "${OUT}"
