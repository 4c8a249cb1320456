// Sends outcome events to cohortd (cohortd.v1.Assignment/Track) from Node,
// with @grpc/grpc-js and @grpc/proto-loader reading proto/ at start-up (no
// generated code). The sidecar attaches the unit's assignments itself; a retry
// with the same event_id is recorded once; a batch with a bad event is refused
// whole.
//
//   cd tests/node && npm ci && node track_example.mjs 127.0.0.1:8013 u-7 purchase order-1
//
// Prints key=value lines (read by tests/examples_node.rs):
//   track event_id=... duplicate=false assignments=experiment:variant,...
//   track_retry event_id=... duplicate=true
//   track_invalid status=INVALID_ARGUMENT
import path from "node:path";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const [addr = "127.0.0.1:8013", user = "u-7", metric = "purchase", eventId = `node-${Date.now()}`] =
  process.argv.slice(2);
const protoRoot = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../proto");
const def = protoLoader.loadSync("cohortd/v1/assignment.proto", {
  includeDirs: [protoRoot],
  keepCase: true,
  longs: String,
  defaults: true,
  oneofs: true,
});
const { cohortd } = grpc.loadPackageDefinition(def);
const client = new cohortd.v1.Assignment(addr, grpc.credentials.createInsecure());

// google.protobuf.Struct in its message form (proto-loader does not map plain objects).
const struct = (obj) => ({
  fields: Object.fromEntries(
    Object.entries(obj).map(([k, v]) => [
      k,
      typeof v === "number" ? { numberValue: v } : typeof v === "boolean" ? { boolValue: v } : { stringValue: String(v) },
    ]),
  ),
});

const track = (events) =>
  new Promise((resolve, reject) =>
    client.Track({ events }, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res))),
  );

const nowMs = Date.now();
const event = {
  context: struct({ userId: user }),
  metric,
  value: 1, // a conversion; leave it out for the same effect
  event_id: eventId,
  timestamp: { seconds: String(Math.floor(nowMs / 1000)), nanos: (nowMs % 1000) * 1e6 },
};

const first = await track([event]);
for (const r of first.results) {
  const pairs = r.assignments.map((a) => `${a.experiment}:${a.variant}`).join(",");
  console.log(`track event_id=${r.event_id} duplicate=${r.duplicate} assignments=${pairs}`);
}
const retry = await track([event]);
console.log(`track_retry event_id=${retry.results[0].event_id} duplicate=${retry.results[0].duplicate}`);
try {
  await track([event, { ...event, metric: "no_such_metric", event_id: `${eventId}-bad` }]);
  console.log("track_invalid status=OK");
} catch (err) {
  console.log(`track_invalid status=${grpc.status[err.code]}`);
}
client.close();
