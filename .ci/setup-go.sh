#!/usr/bin/env bash
# Installs the Go tools and builds the Go interop clients, all pinned, all from the
# Go module proxy, all inside the clone:
#   .tools/bin/   protoc-gen-go, protoc-gen-go-grpc, grpcurl, ghz,
#                 cohortd-go-client, cohortd-ofrep-client, cohortd-inprocess-client,
#                 flagd-ref, flagdiff
#                 (built from tests/go)
#   GOPATH, GOMODCACHE and GOCACHE under $COHORTD_CACHE (default: the user's
#   cache, ~/.cache/cohortd, so fresh clones on one machine share downloads and
#   build results; a fresh machine fills it)
#   tests/go/gen/ Go code generated from proto/ (never committed)
# Idempotent: a second run with nothing changed takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Pinned versions. Change them here only.
PROTOC_GEN_GO=v1.36.11       # google.golang.org/protobuf
PROTOC_GEN_GO_GRPC=v1.6.1    # google.golang.org/grpc/cmd/protoc-gen-go-grpc
GRPCURL=v1.9.3               # github.com/fullstorydev/grpcurl
GHZ=v0.120.0                 # github.com/bojand/ghz

if ! command -v go >/dev/null; then
  echo "setup-go: go not found; install Go 1.26+ to run the Go interop tests" >&2
  exit 1
fi
cache="${COHORTD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cohortd}"
export GOPATH="$cache/go" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build"
export GOBIN="$root/.tools/bin" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
export PATH="$GOBIN:$PATH"
mkdir -p "$GOBIN"

# One stamp per pinned tool: `go install` runs only when the pin changed.
install() { # name module@version
  local stamp="$GOBIN/.$1.version"
  if [ -x "$GOBIN/$1" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$2" ]; then return; fi
  echo "setup-go: go install $2"
  go install "$2"
  echo "$2" > "$stamp"
}
install protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO"
install protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"
install grpcurl "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL"
install ghz "github.com/bojand/ghz/cmd/ghz@$GHZ"

# protoc: grpcio-tools from the project venv (.ci/setup-python.sh, pinned in
# tests/python/requirements.txt) ships protoc and the well-known types; without
# the venv, the protoc that the cargo build vendors (crate protoc-bin-vendored,
# pinned by Cargo.lock) is used.
py="${COHORTD_PYTHON:-$root/.venv/bin/python}"
if "$py" -c 'import grpc_tools' 2>/dev/null; then
  protoc=("$py" -m grpc_tools.protoc)
else
  cargo fetch --locked --quiet
  vendored=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/protoc-bin-vendored-linux-x86_64-*/ 2>/dev/null | sort | tail -1)
  if [ -z "$vendored" ]; then
    echo "setup-go: no protoc (run bash .ci/setup-python.sh, or cargo fetch on x86_64 Linux)" >&2
    exit 1
  fi
  protoc=("${vendored}bin/protoc" -I "${vendored}include")
fi

# Generate and build only when the protos, the Go sources or the pins changed.
stamp="$GOBIN/.go-clients.sha256"
want=$(cat .ci/setup-go.sh proto/cohortd/v1/*.proto proto/flagd/evaluation/v1/*.proto \
  tests/go/go.mod tests/go/go.sum $(find tests/go/cmd tests/go/internal -name '*.go' | sort) | sha256sum | cut -d' ' -f1)
if [ -x "$GOBIN/cohortd-go-client" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
cd tests/go
rm -rf gen
mod=cohortd.test/clients
"${protoc[@]}" -I "$root/proto" \
  --plugin=protoc-gen-go="$GOBIN/protoc-gen-go" --plugin=protoc-gen-go-grpc="$GOBIN/protoc-gen-go-grpc" \
  --go_out=. --go_opt=module=$mod --go-grpc_out=. --go-grpc_opt=module=$mod \
  --go_opt=Mcohortd/v1/assignment.proto=$mod/gen/cohortdv1 \
  --go-grpc_opt=Mcohortd/v1/assignment.proto=$mod/gen/cohortdv1 \
  --go_opt=Mflagd/evaluation/v1/evaluation.proto=$mod/gen/flagdv1 \
  --go-grpc_opt=Mflagd/evaluation/v1/evaluation.proto=$mod/gen/flagdv1 \
  cohortd/v1/assignment.proto flagd/evaluation/v1/evaluation.proto
echo "setup-go: building tests/go/cmd/..."
go build -mod=readonly -o "$GOBIN/cohortd-go-client" ./cmd/cohortd-client
go build -mod=readonly -o "$GOBIN/flagd-ref" ./cmd/flagd-ref
go build -mod=readonly -o "$GOBIN/flagdiff" ./cmd/flagdiff
go build -mod=readonly -o "$GOBIN/cohortd-ofrep-client" ./cmd/ofrep-client
go build -mod=readonly -o "$GOBIN/cohortd-inprocess-client" ./cmd/inprocess-client
echo "$want" > "$stamp"
