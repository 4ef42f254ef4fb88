// Package e2e drives the operator as real processes (kube-apiserver + etcd, the gateway
// simulator binary, the manager binary) with a real kubectl. The specs carry the e2e build tag
// so `go test ./...` skips them; run them with `make test-e2e`.
package e2e
