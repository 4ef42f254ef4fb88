# Functions that build binaries from the Go module proxy (the only source some machines can
# reach). Sourced by hack/setup-*.sh.

# build_go_binary <module@version> <package> <out> [k8s]: builds package from a throw-away
# module requiring module@version. With "k8s" the module is k8s.io/kubernetes, whose go.mod
# points its staging modules at ./staging: each is pinned to the published module of the
# matching minor version instead.
build_go_binary() {
  local module="$1" pkg="$2" out="$3" kind="${4:-}"
  local work
  work="$(mktemp -d)"
  (
    cd "${work}"
    go mod init build-from-proxy >/dev/null 2>&1
    go mod edit -require="${module}"
    if [[ "${kind}" == "k8s" ]]; then
      local version="${module#*@v}" modfile m
      modfile="$(GOFLAGS=-mod=mod go mod download -json "${module}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
      for m in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "${modfile}"); do
        go mod edit -replace="${m}=${m}@v0.${version#1.}"
      done
    fi
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "${pkg}" > tools.go
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "${out}" "${pkg}"
  ) || { rm -rf "${work}"; return 1; }
  rm -rf "${work}"
}
