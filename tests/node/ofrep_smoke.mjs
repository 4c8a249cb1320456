// The real OpenFeature Node SDK with @openfeature/ofrep-provider (server) against
// cohortd's OFREP listener: the same checks as tests/python/test_openfeature_ofrep.py.
//
//   node ofrep_smoke.mjs PORT CONFIG_VERSION EXPECTATIONS_JSON
//
// Driven by tests/openfeature_ofrep.rs over stdout/stdin: prints READY-FOR-CHANGE,
// waits for CHANGED (the driver has stopped `kill-switch`), checks the new value
// is served (this provider evaluates every call remotely, with no cache), prints OK.
import { createInterface } from 'node:readline';
import { isDeepStrictEqual, inspect } from 'node:util';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const port = Number(process.argv[2]);
const version = process.argv[3];
const exp = JSON.parse(process.argv[4]);

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

await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: `http://127.0.0.1:${port}` }));
const client = OpenFeature.getClient();

let d = await client.getBooleanDetails('kill-switch', false);
check('kill-switch', details(d), [true, 'on', 'STATIC', undefined]);
check('metadata configVersion', d.flagMetadata.configVersion, version);
check('metadata experimentStatus', d.flagMetadata.experimentStatus, 'running');

check('upload-limit enrolled',
  details(await client.getNumberDetails('upload-limit-mb', 0, user(exp.rollout_in))),
  [250, 'new', 'SPLIT', undefined]);
d = await client.getNumberDetails('upload-limit-mb', 0, user(exp.rollout_out));
check('upload-limit outside', details(d), [100, 'old', 'DEFAULT', undefined]);
check('metadata enrolled', d.flagMetadata.enrolled, false);

const values = { en: 'hello', fr: 'bonjour', low: 0.9, high: 1.25 };
for (const [unit, want] of Object.entries(exp.greeting)) {
  check(`greeting ${unit}`, details(await client.getStringDetails('greeting', 'x', user(unit))),
    [values[want], want, 'SPLIT', undefined]);
}
for (const [unit, want] of Object.entries(exp['price-multiplier'])) {
  check(`price-multiplier ${unit}`, details(await client.getNumberDetails('price-multiplier', 1, user(unit))),
    [values[want], want, 'SPLIT', undefined]);
}
const objects = {
  'one-page': { steps: 1, express: true },
  'multi-page': { steps: 3, express: false },
};
for (const [unit, want] of Object.entries(exp['checkout-config'])) {
  check(`checkout-config ${unit}`, details(await client.getObjectDetails('checkout-config', {}, user(unit))),
    [objects[want], want, 'SPLIT', undefined]);
}

check('tour', details(await client.getStringDetails('tour', 'x')), ['short', 'short', 'STATIC', undefined]);
check('old-test', details(await client.getStringDetails('old-test', 'x', user('u1'))),
  ['control', 'control', 'DISABLED', undefined]);
check('beta-only miss', details(await client.getStringDetails('beta-only', 'x', user('u1', { plan: 'free' }))),
  ['off', 'off', 'DEFAULT', undefined]);

// Errors give the caller's default with the OFREP error code and its details.
d = await client.getStringDetails('no-such-flag', 'fallback', user('u1'));
check('not found', [d.value, d.errorCode, d.reason], ['fallback', 'FLAG_NOT_FOUND', 'ERROR']);
check('not found message', d.errorMessage, 'flag `no-such-flag` is not in the configuration');
d = await client.getStringDetails('greeting', 'fallback');
check('missing targeting key', [d.value, d.errorCode], ['fallback', 'TARGETING_KEY_MISSING']);
d = await client.getStringDetails('greeting', 'fallback', user('u1', { extra: 'x'.repeat(5000) }));
check('invalid context', [d.value, d.errorCode], ['fallback', 'INVALID_CONTEXT']);
d = await client.getBooleanDetails('greeting', false, user('u1'));
check('type mismatch', [d.value, d.errorCode], [false, 'TYPE_MISMATCH']);

console.log('READY-FOR-CHANGE');
check('driver reply', (await nextLine()).trim(), 'CHANGED');
d = await client.getBooleanDetails('kill-switch', true);
check('kill-switch after stop', details(d), [false, 'off', 'DISABLED', undefined]);
check('new configVersion', d.flagMetadata.configVersion !== version, true);

await OpenFeature.close();
console.log('OK');
process.exit(0);
