#!/usr/bin/env bash
# Dry run of the release build (`make release-snapshot`, .ci/run): goreleaser builds the kubectl
# plugin for linux/darwin/windows x amd64/arm64 with its archives, checksums and krew manifest
# into dist/, signing and publishing nothing; then this checks what it wrote: six archives in
# checksums.txt, a krew manifest with six platforms naming the same archives and binaries as
# plugins/openshell.yaml, and the host binary's --version reporting the VERSION file's version.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "release-snapshot: $*" >&2; exit 1; }

version="$(tr -d '[:space:]' < VERSION)"
# goreleaser reads the repository URL from the git remote and, in a snapshot, falls back to
# placeholder git facts (tag v0.0.0, commit "none") when there is none, as in a local clone
# without a remote: name the project's URL through git's environment config, not the repository.
if ! git ls-remote --get-url >/dev/null 2>&1 || [[ -z "$(git remote)" ]]; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
    GIT_CONFIG_VALUE_0=https://github.com/openshell-operator/openshell-operator.git
fi
start=$(date +%s)
GORELEASER_CURRENT_TAG="${version}" "${GORELEASER:-bin/goreleaser}" release --snapshot --clean --skip=publish,sign
snapshot="${version}-snapshot"

archives="$(grep -cE "  kubectl-openshell_${snapshot}_(linux|darwin|windows)_(amd64|arm64)\.(tar\.gz|zip)$" dist/checksums.txt || true)"
[[ "${archives}" == 6 ]] || die "dist/checksums.txt lists ${archives} plugin archives, want 6: $(cat dist/checksums.txt)"
platforms="$(grep -c 'sha256:' dist/krew/openshell.yaml || true)"
[[ "${platforms}" == 6 ]] || die "dist/krew/openshell.yaml has ${platforms} platforms, want 6"
grep -q "version: ${snapshot}" dist/krew/openshell.yaml || die "dist/krew/openshell.yaml is not for ${snapshot}"
# The committed krew manifest (plugins/openshell.yaml, the shape users install from a checkout)
# names the same archives and binaries as the one goreleaser generates.
krew_files() { grep -E '^[ -]*(uri|bin):' "$1" | sed -e 's/^[ -]*//' -e 's/-snapshot//' | sort; }
diff <(krew_files dist/krew/openshell.yaml) <(krew_files plugins/openshell.yaml) >&2 ||
  die "dist/krew/openshell.yaml (goreleaser) and plugins/openshell.yaml name different archives or binaries"

bin="$(find dist -type f -name kubectl-openshell -path "*_$(go env GOOS)_$(go env GOARCH)*" | head -1)"
[[ -n "${bin}" ]] || die "no kubectl-openshell for $(go env GOOS)/$(go env GOARCH) in dist/"
out="$("${bin}" --version 2>&1)" || die "${bin} --version failed: ${out}"
[[ "${out}" == *"${snapshot}"* ]] || die "${bin} --version printed \"${out}\", want ${snapshot}"
echo "release-snapshot: ok in $(( $(date +%s) - start ))s: ${archives} archives, krew manifest, ${out}"
