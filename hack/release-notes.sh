#!/usr/bin/env bash
# Release notes and version checks for a release tag (v0.x.y), read from the VERSION file and
# CHANGELOG.md (Keep a Changelog: a "## [0.x.y] - YYYY-MM-DD" section per version).
#
#   hack/release-notes.sh TAG                 print TAG's CHANGELOG.md section (its body)
#   hack/release-notes.sh --require-date TAG  same, failing unless the heading is dated
#   hack/release-notes.sh --check-tag TAG     fail unless TAG is the VERSION file's version
#
# Used by .github/workflows/release.yml; test/packaging runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "release-notes: $*" >&2; exit 1; }

mode=notes
case "${1:-}" in
  --require-date) mode=dated; shift ;;
  --check-tag) mode=tag; shift ;;
esac
[[ $# -eq 1 ]] || die "usage: $0 [--require-date|--check-tag] TAG"
tag="$1"
[[ "${tag}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "${tag} is not a v-prefixed semantic version"

if [[ "${mode}" == tag ]]; then
  want="$(tr -d '[:space:]' < VERSION)"
  [[ "${tag}" == "${want}" ]] || die "tag ${tag} differs from the VERSION file (${want}); bump VERSION, Chart.yaml and config/manager/kustomization.yaml first"
  exit 0
fi

version="${tag#v}"
heading="$(grep -E "^## \[${version//./\\.}\]" CHANGELOG.md || true)"
[[ -n "${heading}" ]] || die "CHANGELOG.md has no section \"## [${version}]\""
if [[ "${mode}" == dated && ! "${heading}" =~ \]\ -\ [0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
  die "CHANGELOG.md's section for ${version} is not dated (\"${heading}\"); date it before tagging"
fi
# The section's body: after its heading, up to the next version heading or the link definitions.
body="$(awk -v h="${heading}" '
  $0 == h { on = 1; next }
  on && (/^## \[/ || /^\[[^]]+\]: /) { exit }
  on { print }
' CHANGELOG.md | sed -e '/./,$!d' | sed -e ':a' -e '/^\n*$/{$d;N;ba' -e '}')"
[[ -n "${body}" ]] || die "CHANGELOG.md's section for ${version} is empty"
printf '%s\n' "${body}"
