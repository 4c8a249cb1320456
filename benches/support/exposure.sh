# Shared by the exposure benchmarks (sourced): `exposure_setup DIR` writes
# the one-experiment config into DIR/conf and an `Assign` request with
# `exposure: true` into DIR/req.bin (target/release/examples/loadgen), and
# sets `H`, h2load's arguments to send it as gRPC.
exposure_setup() {
  local dir=$1
  mkdir "$dir/conf"
  printf 'experiments:\n  - experimentId: bench\n    status: running\n    variants: [control, treatment]\n    assignment: {hashKey: userId}\n' >"$dir/conf/bench.yaml"
  target/release/examples/loadgen --exposure request-file --rpc assign --experiment bench "$dir/req.bin" >/dev/null
  H=(-H 'content-type: application/grpc' -H 'te: trailers' -d "$dir/req.bin")
}
