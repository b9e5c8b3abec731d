import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pbkdf2Sync } from 'node:crypto';
import fc from 'fast-check';
import { credentialCheck } from '../src/credential-check.ts';
import { DEVICE_SECRET_ITERATIONS, generateDeviceSecret, hashDeviceSecret, hashSecret, verifySecret } from '../src/secrets.ts';
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

describe('Mosquitto-compatible device secrets ($7$, PBKDF2-HMAC-SHA512)', () => {
  test('the hash has Mosquitto 2\'s shape: 1000 iterations, 12 salt bytes, 64 key bytes, padded standard base64', async () => {
    const secret = generateDeviceSecret();
    const stored = await hashDeviceSecret(secret);
    const [empty, seven, iterations, salt, key, ...rest] = stored.split('$');
    assert.deepEqual([empty, seven, iterations, rest], ['', '7', '1000', []]);
    assert.equal(Buffer.from(salt!, 'base64').length, 12);
    assert.equal(Buffer.from(key!, 'base64').length, 64);
    assert.match(key!, /^[A-Za-z0-9+/]{86}==$/);
    assert.equal(Buffer.from(salt!, 'base64').toString('base64'), salt);
    assert.ok(!stored.includes(secret));
    assert.equal(DEVICE_SECRET_ITERATIONS, 1000);
  });

  test('the key is PBKDF2-HMAC-SHA512 of the secret and the salt, as Mosquitto computes it', async () => {
    const stored = await hashDeviceSecret('kitchen-secret', 101);
    const [, , , salt, key] = stored.split('$');
    assert.equal(pbkdf2Sync('kitchen-secret', Buffer.from(salt!, 'base64'), 101, 64, 'sha512').toString('base64'), key);
  });

  test('a line written by mosquitto_passwd verifies (a fixed vector: user "dev1", password "devpass")', async () => {
    // From `mosquitto_passwd -b pw dev1 devpass` (Mosquitto 2.0.11); the service test checks a fresh one too.
    const stored = '$7$101$IDGJFbH/R4Rrvln+$9VVHlVt3RV8hu9ajbQyM1hQjzXVSSGX51JT4elLGxcmGu+TEpsux7BemN0gVfsCgifx4n1CQ+FELENETbRszYw==';
    assert.equal(await verifySecret('devpass', stored), true);
    assert.equal(await verifySecret('devpas', stored), false);
  });

  test('round trip: the same secret hashes differently each time and both verify; both stored forms are accepted', async () => {
    const secret = generateDeviceSecret();
    const [a, b] = [await hashDeviceSecret(secret), await hashDeviceSecret(secret)];
    assert.notEqual(a, b);
    assert.equal(await verifySecret(secret, a), true);
    assert.equal(await verifySecret(secret, b), true);
    assert.equal(await verifySecret(`${secret}x`, a), false);
    assert.equal(await verifySecret('', a), false);
    const scrypt = await hashSecret(secret, TEST_COST);
    assert.equal(await verifySecret(secret, scrypt), true);
    assert.equal(await verifySecret('other', scrypt), false);
  });

  test('credentialCheck accepts a $7$ credential like a scrypt one', async () => {
    const hash = await hashDeviceSecret('plug-secret');
    const check = credentialCheck((username) => (username === 'plug' ? { principal: { role: 'device', deviceId: 'plug' }, secretHash: hash } : null));
    assert.deepEqual(await check.authenticate('plug', 'plug-secret'), { role: 'device', deviceId: 'plug' });
    assert.equal(await check.authenticate('plug', 'wrong'), null);
  });

  test('a malformed, tampered or oversized $7$ value never verifies and never throws', async () => {
    const stored = await hashDeviceSecret('s', 10);
    const [, , , salt, key] = stored.split('$') as [string, string, string, string, string];
    const flipped = `${key.slice(0, 10)}${key[10] === 'A' ? 'B' : 'A'}${key.slice(11)}`;
    const tampered = [
      '$7$', '$7$10', `$7$10$${salt}`, `$7$10$${salt}$`, `$7$$${salt}$${key}`,
      `$7$0$${salt}$${key}`, `$7$-10$${salt}$${key}`, `$7$1e3$${salt}$${key}`, `$7$010$${salt}$${key}`, `$7$ 10$${salt}$${key}`,
      `$7$99999999999$${salt}$${key}`,
      `$7$10$$${key}`, `$7$10$${salt}$${key.slice(0, -4)}`, `$7$10$${salt}$${key}AAAA`,
      `$7$10$${salt.replace(/.$/, '*')}$${key}`, `$7$10$${salt}$${key.replace('==', '')}`,
      `$7$10$${salt}$${flipped}`, `$7$11$${salt}$${key}`, `${stored}$extra`, `$6$${salt}$${key}`, stored.replace('$7$', '$8$'),
    ];
    for (const t of tampered) assert.equal(await verifySecret('s', t), false, t);
    assert.equal(await verifySecret('s', stored), true);
    // A correct key past the bound is refused unread: a damaged record must not stall a login.
    const slowKey = pbkdf2Sync('s', Buffer.from(salt, 'base64'), 1_000_001, 64, 'sha512').toString('base64');
    assert.equal(await verifySecret('s', `$7$1000001$${salt}$${slowKey}`), false);
    // Not even odd inputs from an untyped caller make it throw.
    assert.equal(await verifySecret('s', undefined as unknown as string), false);
    assert.equal(await verifySecret(undefined as unknown as string, stored), false);
  });

  test('refuses an empty secret and iterations outside 1 to 1,000,000', async () => {
    await assert.rejects(hashDeviceSecret(''), { code: 'invalid_input' });
    for (const iterations of [0, -1, 1.5, 1_000_001, Number.NaN]) {
      await assert.rejects(hashDeviceSecret('s', iterations), { code: 'invalid_input' }, String(iterations));
    }
  });
});
