import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { credentialCheck, generateDeviceSecret, hashSecret, verifySecret } from '../src/secrets.ts';
import { TEST_COST } from './helpers.ts';

describe('device secrets', () => {
  test('generated secrets are long, URL-safe and different every time', () => {
    const secrets = new Set(Array.from({ length: 50 }, () => generateDeviceSecret()));
    assert.equal(secrets.size, 50);
    for (const s of secrets) assert.match(s, /^[A-Za-z0-9_-]{43}$/);
  });

  test('a hash verifies its own secret and no other; the secret is not in it', async () => {
    const secret = generateDeviceSecret();
    const stored = await hashSecret(secret, TEST_COST);
    assert.ok(!stored.includes(secret));
    assert.match(stored, /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    assert.equal(await verifySecret(secret, stored), true);
    assert.equal(await verifySecret(`${secret}x`, stored), false);
    assert.equal(await verifySecret('', stored), false);
  });

  test('the same secret hashes differently each time (random salt), and both verify', async () => {
    const [h1, h2] = [await hashSecret('same', TEST_COST), await hashSecret('same', TEST_COST)];
    assert.notEqual(h1, h2);
    assert.equal(await verifySecret('same', h1), true);
    assert.equal(await verifySecret('same', h2), true);
  });

  test('the default cost is used when none is given', async () => {
    const stored = await hashSecret('default');
    assert.match(stored, /^scrypt\$16384\$8\$1\$/);
    assert.equal(await verifySecret('default', stored), true);
  });

  test('a malformed or tampered stored value never verifies and never throws', async () => {
    const stored = await hashSecret('s', TEST_COST);
    const parts = stored.split('$');
    const tampered = [
      '', 'plain-text-password', 's', stored.replace('scrypt', 'bcrypt'),
      [...parts.slice(0, 5), `${parts[5]!.slice(0, -2)}AA`].join('$'),
      [parts[0], 1000, ...parts.slice(2)].join('$'), // N not a power of two
      [parts[0], 1 << 22, ...parts.slice(2)].join('$'), // N past the memory bound
      [parts[0], parts[1], 0, ...parts.slice(3)].join('$'),
      [...parts.slice(0, 4), '', parts[5]].join('$'),
      `${stored}$extra`,
    ];
    for (const t of tampered) assert.equal(await verifySecret('s', t), false, t);
  });

  test('an empty secret cannot be hashed', async () => {
    await assert.rejects(hashSecret(''), { code: 'invalid_input' });
  });

  test('property: verify(s, hash(s)) holds and verify(other, hash(s)) does not', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ minLength: 1, maxLength: 40 }), async (secret, other) => {
        const stored = await hashSecret(secret, TEST_COST);
        assert.equal(await verifySecret(secret, stored), true);
        assert.equal(await verifySecret(other, stored), other === secret);
      }),
      { numRuns: 25 },
    );
  });

  test('credentialCheck returns the principal only for the right secret, and null for unknown users', async () => {
    const hash = await hashSecret('kitchen-secret', TEST_COST);
    const check = credentialCheck((username) =>
      username === 'kitchen' ? { principal: { role: 'device', deviceId: 'kitchen' }, secretHash: hash } : null);
    assert.deepEqual(await check.authenticate('kitchen', 'kitchen-secret'), { role: 'device', deviceId: 'kitchen' });
    assert.equal(await check.authenticate('kitchen', 'wrong'), null);
    assert.equal(await check.authenticate('nobody', 'kitchen-secret'), null);
  });
});
