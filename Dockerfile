# Build the manager as a static binary, then ship it on distroless as a numeric non-root user.
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
# The Makefile's LDFLAGS (version, commit, commit time), passed by `make docker-build`.
ARG LDFLAGS=""
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY api/ api/
COPY gen/ gen/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w ${LDFLAGS}" -o manager ./cmd

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]
