#!/usr/bin/env bash
# Provides kube-apiserver and etcd for envtest and prints the directory holding them.
#
# Order: an existing $KUBEBUILDER_ASSETS with both binaries; the cache under bin/k8s/<version>;
# setup-envtest's normal download; finally a build from the Go module proxy (the only source
# reachable on some machines). Progress goes to stderr, the directory to stdout.
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-v3.6.6}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ROOT}/bin/k8s/${K8S_VERSION}-$(go env GOOS)-$(go env GOARCH)"

log() { echo "setup-envtest: $*" >&2; }
have_assets() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" ]]; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && have_assets "${KUBEBUILDER_ASSETS}"; then
  echo "${KUBEBUILDER_ASSETS}"; exit 0
fi
if have_assets "${CACHE}"; then
  echo "${CACHE}"; exit 0
fi
mkdir -p "${CACHE}"

# The normal route: setup-envtest downloads released binaries. It fails fast where the
# release site is unreachable, and then we build.
if [[ "${ENVTEST_SKIP_DOWNLOAD:-}" != "true" ]]; then
  log "trying setup-envtest download of ${K8S_VERSION}"
  if dir=$(GOFLAGS=-mod=mod timeout 120 go run sigs.k8s.io/controller-runtime/tools/setup-envtest@release-0.22 \
      use "${K8S_VERSION}" --bin-dir "${ROOT}/bin/k8s/download" -p path 2>/dev/null) && have_assets "${dir}"; then
    cp "${dir}/kube-apiserver" "${dir}/etcd" "${CACHE}/"
    echo "${CACHE}"; exit 0
  fi
  log "download unavailable; building from the Go module proxy (first run only, ~4-6 min on 2 cores)"
fi

# shellcheck source=hack/lib/build-from-proxy.sh
source "${ROOT}/hack/lib/build-from-proxy.sh"
start=$(date +%s)
if [[ ! -x "${CACHE}/etcd" ]]; then
  log "building etcd ${ETCD_VERSION}"
  build_go_binary "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" go.etcd.io/etcd/server/v3 "${CACHE}/etcd"
fi
if [[ ! -x "${CACHE}/kube-apiserver" ]]; then
  log "building kube-apiserver v${K8S_VERSION}"
  build_go_binary "k8s.io/kubernetes@v${K8S_VERSION}" k8s.io/kubernetes/cmd/kube-apiserver "${CACHE}/kube-apiserver" k8s
fi

have_assets "${CACHE}" || { log "failed to provide envtest assets in ${CACHE}"; exit 1; }
log "built envtest assets in $(( $(date +%s) - start ))s into ${CACHE}"
echo "${CACHE}"
