// The real OpenFeature Node SDK with the flagd provider (RPC resolver) against
// cohortd's flagd protocol: the same checks as tests/python/test_openfeature_flagd.py.
//
//   node flagd_smoke.mjs PORT EXPECTATIONS_JSON
//
// Driven by tests/openfeature_node.rs over stdout/stdin: prints READY-FOR-CHANGE,
// waits for CHANGED (the driver has stopped `kill-switch`), waits for the
// provider's ConfigurationChanged event, checks the new value, prints OK.
import { createInterface } from 'node:readline';
import { isDeepStrictEqual, inspect } from 'node:util';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { FlagdProvider } from '@openfeature/flagd-provider';

const port = Number(process.argv[2]);
const exp = JSON.parse(process.argv[3]);

function check(what, got, want) {
  if (!isDeepStrictEqual(got, want)) {
    process.stderr.write(`FAILED ${what}: got ${inspect(got)}, want ${inspect(want)}\n`);
    process.exit(1);
  }
}

const details = (d) => [d.value, d.variant, d.reason, d.errorCode];
const user = (targetingKey, attrs = {}) => ({ targetingKey, ...attrs });

const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

let changedFlags = [];
let onChanged;
const changed = new Promise((resolve) => { onChanged = resolve; });
OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (d) => {
  changedFlags = changedFlags.concat(d?.flagsChanged ?? []);
  onChanged();
});

await OpenFeature.setProviderAndWait(
  new FlagdProvider({ resolverType: 'rpc', host: '127.0.0.1', port, deadlineMs: 5000 }),
);
const client = OpenFeature.getClient();

check('kill-switch', details(await client.getBooleanDetails('kill-switch', false)), [true, 'on', 'STATIC', undefined]);

check('upload-limit enrolled',
  details(await client.getNumberDetails('upload-limit-mb', 0, user(exp.rollout_in))),
  [250, 'new', 'SPLIT', undefined]);
check('upload-limit outside',
  details(await client.getNumberDetails('upload-limit-mb', 0, user(exp.rollout_out))),
  [100, 'old', 'DEFAULT', undefined]);

const values = { en: 'hello', fr: 'bonjour', low: 0.9, high: 1.25 };
for (const [unit, want] of Object.entries(exp.greeting)) {
  check(`greeting ${unit}`, details(await client.getStringDetails('greeting', 'x', user(unit))),
    [values[want], want, 'SPLIT', undefined]);
}
for (const [unit, want] of Object.entries(exp['price-multiplier'])) {
  check(`price-multiplier ${unit}`, details(await client.getNumberDetails('price-multiplier', 1, user(unit))),
    [values[want], want, 'SPLIT', undefined]);
}
const objects = { 'one-page': { steps: 1, express: true }, 'multi-page': { steps: 3, express: false } };
for (const [unit, want] of Object.entries(exp['checkout-config'])) {
  check(`checkout-config ${unit}`, details(await client.getObjectDetails('checkout-config', {}, user(unit))),
    [objects[want], want, 'SPLIT', undefined]);
}

check('tour', details(await client.getStringDetails('tour', 'x')), ['short', 'short', 'STATIC', undefined]);
check('old-test', details(await client.getStringDetails('old-test', 'x', user('u1'))),
  ['control', 'control', 'DISABLED', undefined]);
check('beta-only miss', details(await client.getStringDetails('beta-only', 'x', user('u1'))),
  ['off', 'off', 'DEFAULT', undefined]);

// Metadata reaches the application.
const meta = (await client.getStringDetails('greeting', 'x', user('u1'))).flagMetadata;
check('metadata status', meta.experimentStatus, 'running');
check('metadata version', typeof meta.configVersion === 'string' && meta.configVersion.length > 0, true);

// Errors give the caller's default with the provider's error code and our message.
let d = await client.getStringDetails('no-such-flag', 'fallback', user('u1'));
check('not found', [d.value, d.errorCode, d.reason], ['fallback', 'FLAG_NOT_FOUND', 'ERROR']);
check('not found message', /FLAG_NOT_FOUND: flag `no-such-flag`/.test(d.errorMessage ?? ''), true);
d = await client.getBooleanDetails('greeting', false, user('u1'));
check('type mismatch', [d.value, d.errorCode], [false, 'TYPE_MISMATCH']);
d = await client.getStringDetails('greeting', 'fallback');
check('missing targeting key', [d.value, d.errorCode], ['fallback', 'GENERAL']);
check('missing targeting key message', /^TARGETING_KEY_MISSING/.test(d.errorMessage ?? ''), true);

console.log('READY-FOR-CHANGE');
check('driver reply', (await nextLine()).trim(), 'CHANGED');
const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 20000));
check('configuration change observed', await Promise.race([changed.then(() => 'changed'), timeout]), 'changed');
check('changed flags include kill-switch', changedFlags.includes('kill-switch'), true);
check('kill-switch after stop', details(await client.getBooleanDetails('kill-switch', true)),
  [false, 'off', 'DISABLED', undefined]);

await OpenFeature.close();
console.log('OK');
process.exit(0);
