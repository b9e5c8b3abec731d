/** docs/protocol.md is part of the contract: every example in it must parse with the schema it names. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ackEventSchema, availabilitySchema, cancelCommandSchema, deviceStateSchema, enrollmentClaimSchema, installCommandSchema, offerCommandSchema, parsePayload,
  progressEventSchema, resultEventSchema,
} from '@firmward/protocol';

const schemas: Record<string, Parameters<typeof parsePayload>[0]> = {
  deviceStateSchema, availabilitySchema, offerCommandSchema, installCommandSchema, cancelCommandSchema,
  ackEventSchema, progressEventSchema, resultEventSchema, enrollmentClaimSchema,
};

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
const examples = [...doc.matchAll(/<!-- schema: (\w+) -->\n```json\n([\s\S]*?)\n```/g)].map((m) => ({ name: m[1]!, json: m[2]! }));

test('docs/protocol.md has an example for every payload, and names the schema of each', () => {
  assert.deepEqual([...new Set(examples.map((e) => e.name))].sort(), Object.keys(schemas).sort());
  assert.equal(doc.split('```json').length - 1, examples.length);
});

for (const { name, json } of examples) {
  test(`the ${name} example parses`, () => {
    const schema = schemas[name];
    assert.ok(schema, `unknown schema ${name}`);
    const parsed = parsePayload(schema, json);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  });
}
