// The real OpenFeature Node SDK with the flagd provider in IN-PROCESS mode
// against a cohortd serving a flagd-format flag file: the provider syncs the
// flag set from cohortd's flagd.sync.v1 service and evaluates it locally with
// @openfeature/flagd-core (4.x: the high-precision `fractional` over
// flagKey + targetingKey, i.e. cohortd's `--flagd-fractional v2`).
//
//   node flagd_inprocess.mjs SYNC_PORT CASES_JSON
//
// Driven by tests/openfeature_node_flagd_files.rs; the same exchange and checks
// as tests/python/test_openfeature_flagd_files.py: every flag x context answer
// (value or the caller's default, variant, reason, error code) and every flag's
// metadata must equal cohortd's offline answers in CASES_JSON; READY-FOR-CHANGE;
// `CHANGED AFTER_JSON`; a ConfigurationChanged event naming the changed flags;
// the new answers; OK.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { isDeepStrictEqual, inspect } from 'node:util';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { FlagdProvider } from '@openfeature/flagd-provider';

const port = Number(process.argv[2]);
const cases = JSON.parse(readFileSync(process.argv[3], 'utf8'));

// Node has one number type: integer and float flags are both asked as numbers.
const nodeType = (t) => (t === 'integer' || t === 'float' ? 'number' : t);
const DEFAULTS = { boolean: false, string: 'caller-default', number: -7.5, object: { caller: 'default' } };
const ASK = {
  boolean: (c, k, d, x) => c.getBooleanDetails(k, d, x),
  string: (c, k, d, x) => c.getStringDetails(k, d, x),
  number: (c, k, d, x) => c.getNumberDetails(k, d, x),
  object: (c, k, d, x) => c.getObjectDetails(k, d, x),
};

function fail(msg) {
  process.stderr.write(`FAILED ${msg}\n`);
  process.exit(1);
}

/** flagd's metadata exactly, plus only keys of cohortd's own (`cohortd*`). */
function metadataMismatch(key, got, want) {
  const flagd = Object.fromEntries(Object.entries(got ?? {}).filter(([k]) => !k.startsWith('cohortd')));
  return isDeepStrictEqual(flagd, want) ? null : `${key} metadata: got ${inspect(got)}, want ${inspect(want)}`;
}

// Where flagd-core 4.x differs from flagd's Go evaluator, which cohortd v2
// follows (docs/clients.md lists both). Each is accepted only in exactly its
// shape, and every accepted answer is listed on stderr:
// - EMPTY targeting key: its `fractional` shorthand treats "" like a missing
//   key (`if (!targetingKey) return null`): the default variant, reason
//   DEFAULT, where Go buckets flagKey + "".
// - `cat` with a missing operand writes "null" (JavaScript's String(null)),
//   where Go writes "": `headline` buckets on cat($flagd.flagKey, email), so a
//   context without `email` may land in another variant (still a match).
const deviations = [];
function knownDeviation(c, key, ctx, w, got, t) {
  if (t !== nodeType(c.flags[key]) || w.reason !== 'TARGETING_MATCH') return false;
  const def = c.defaults[key];
  if (ctx.targetingKey === '' && def.variant !== null) {
    return isDeepStrictEqual(got, [def.value, def.variant, 'DEFAULT', null]);
  }
  if (key === 'headline' && !('email' in ctx)) {
    return got[2] === 'TARGETING_MATCH' && got[3] === null && got[1] !== w.variant;
  }
  return false;
}

async function compare(client, c) {
  deviations.length = 0;
  let n = 0;
  for (let i = 0; i < c.contexts.length; i++) {
    const ctx = c.contexts[i];
    for (const key of Object.keys(c.flags).sort()) {
      const want = c.answers[key][i];
      const asks = [[nodeType(c.flags[key]), want.asType]];
      if (want.asType.errorCode !== 'GENERAL') asks.push([nodeType(c.wrongTypes[key]), want.asWrongType]);
      for (const [t, w] of asks) {
        const d = await ASK[t](client, key, DEFAULTS[t], ctx);
        const got = [d.value, d.variant ?? null, d.reason, d.errorCode ?? null];
        const exp = [w.callerDefault ? DEFAULTS[t] : w.value, w.variant, w.reason, w.errorCode];
        if (!isDeepStrictEqual(got, exp) && knownDeviation(c, key, ctx, w, got, t)) {
          deviations.push(`${key} ${JSON.stringify(ctx)}`);
          n++;
          continue;
        }
        if (!isDeepStrictEqual(got, exp)) {
          return [`context ${JSON.stringify(ctx)}: ${key} as ${t}: got ${inspect(got)}, want ${inspect(exp)}`, n];
        }
        if (w.errorCode === null) {
          const m = metadataMismatch(key, d.flagMetadata, c.metadata[key]);
          if (m) return [`context ${JSON.stringify(ctx)}: ${m}`, n];
        }
        n++;
      }
    }
  }
  return [null, n];
}

await OpenFeature.setProviderAndWait(
  new FlagdProvider({ resolverType: 'in-process', host: '127.0.0.1', port, deadlineMs: 5000 }),
);
const client = OpenFeature.getClient();

let [msg, n] = await compare(client, cases);
if (msg) fail(msg);
const deviationsBefore = [...deviations];
if (n < 2 * cases.contexts.length * (Object.keys(cases.flags).length - 1)) fail(`compared only ${n} answers`);
const nf = await client.getStringDetails('no-such-flag', 'fallback', { targetingKey: 'u1' });
if (!isDeepStrictEqual([nf.value, nf.reason, nf.errorCode], ['fallback', 'ERROR', 'FLAG_NOT_FOUND'])) {
  fail(`unknown flag: got ${inspect([nf.value, nf.reason, nf.errorCode])}`);
}

// Registered only now: the first sync also announces a change.
const seen = new Set();
let wake = () => {};
OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (d) => {
  for (const f of d?.flagsChanged ?? []) seen.add(f);
  wake();
});

const lines = createInterface({ input: process.stdin });
console.log('READY-FOR-CHANGE');
const line = (await new Promise((resolve) => lines.once('line', resolve))).trim().split(/\s+/);
if (line.length !== 2 || line[0] !== 'CHANGED') fail(`driver said ${inspect(line)}, want CHANGED PATH`);
const after = JSON.parse(readFileSync(line[1], 'utf8'));
const want = ['banner', 'new-checkout', 'max-items', 'retired'];
const until = Date.now() + 30000;
while (!want.every((f) => seen.has(f))) {
  if (Date.now() > until) fail(`ConfigurationChanged named ${inspect([...seen])} within 30 s, want ${inspect(want)}`);
  await new Promise((resolve) => {
    wake = resolve;
    setTimeout(resolve, 200);
  });
}
// The event and the new set come from one sync message; a short bounded retry
// covers a provider that fires the event before it swaps the set.
const retryUntil = Date.now() + 10000;
for (;;) {
  [msg] = await compare(client, after);
  if (!msg) break;
  if (Date.now() > retryUntil) fail(`after the change: ${msg}`);
  await new Promise((resolve) => setTimeout(resolve, 100));
}

await OpenFeature.close();
process.stderr.write(`compared ${n} answers before the change; documented deviations before: ${inspect(deviationsBefore)}, after: ${inspect(deviations)}\n`);
console.log('OK');
process.exit(0);
