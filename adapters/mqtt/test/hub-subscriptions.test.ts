import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TOPIC_ROOT, deviceTopics } from '@firmward/protocol';
import { HUB_TOPIC_FILTERS, subscribeRefusal } from '../src/acl.ts';
import { CatchUpCopies } from '../src/catch-up-copies.ts';
import { DEFAULT_SHARED_GROUP, SHARED_SUBSCRIPTION_PREFIX, hubSubscriptions, sharedGroupRefusal } from '../src/hub-subscriptions.ts';
import { mosquittoAclFile } from '../src/mosquitto-config.ts';

describe('hubSubscriptions', () => {
  test('alone, the hub subscribes to every device topic it reads, and the live subscriptions bring the retained copies', () => {
    assert.deepEqual(hubSubscriptions(null), { live: [...HUB_TOPIC_FILTERS], catchUp: [] });
  });

  test('in a group, every filter is shared, and state and availability are caught up on without the group', () => {
    assert.deepEqual(hubSubscriptions('fw'), {
      live: [`$share/fw/${TOPIC_ROOT}/d/+/state`, `$share/fw/${TOPIC_ROOT}/d/+/availability`, `$share/fw/${TOPIC_ROOT}/d/+/evt`],
      catchUp: [`${TOPIC_ROOT}/d/+/state`, `${TOPIC_ROOT}/d/+/availability`],
    });
  });

  test('the broker rules need no change: each shared filter is a hub filter behind the prefix, and Mosquitto\'s ACL has a read rule for it', () => {
    // Mosquitto checks a shared subscription's messages against the topic, without "$share/<group>/"
    // (test-services/mosquitto-shared.test.ts runs it through the generated ACL).
    const acl = mosquittoAclFile([]);
    const { live, catchUp } = hubSubscriptions(DEFAULT_SHARED_GROUP);
    for (const filter of live) {
      assert.ok(filter.startsWith(`${SHARED_SUBSCRIPTION_PREFIX}${DEFAULT_SHARED_GROUP}/`), filter);
      const topic = filter.slice(`${SHARED_SUBSCRIPTION_PREFIX}${DEFAULT_SHARED_GROUP}/`.length);
      assert.ok((HUB_TOPIC_FILTERS as readonly string[]).includes(topic), topic);
      assert.match(acl, new RegExp(`^topic read ${topic.replaceAll('+', '\\+')}$`, 'm'), topic);
    }
    for (const filter of catchUp) assert.equal(subscribeRefusal({ role: 'hub' }, filter), null, filter);
    // Events are never retained, so there is nothing to catch up on.
    assert.ok(!catchUp.some((f) => f.endsWith('/evt')));
  });

  test('a group name is plain: no "/", "+", "#" (the specification), no spaces, 1 to 64 characters', () => {
    for (const good of ['firmward-hub', 'site_2', 'a', 'x.y', 'A'.repeat(64)]) assert.equal(sharedGroupRefusal(good), null, good);
    for (const bad of ['', 'a/b', 'a+', '#', 'two words', 'A'.repeat(65), 'ä', '$share']) assert.notEqual(sharedGroupRefusal(bad), null, bad);
    assert.equal(sharedGroupRefusal(DEFAULT_SHARED_GROUP), null);
  });
});

describe('CatchUpCopies', () => {
  const state = deviceTopics('plug-1').state;
  const bytes = (text: string) => new TextEncoder().encode(text);

  test('during a catch-up, the same retained copy again is a repeat; a new payload on the topic is not', () => {
    const copies = new CatchUpCopies();
    copies.begin();
    assert.equal(copies.repeated(state, bytes('{"a":1}')), false);
    assert.equal(copies.repeated(state, bytes('{"a":1}')), true);
    assert.equal(copies.repeated(deviceTopics('plug-2').state, bytes('{"a":1}')), false, 'another topic');
    assert.equal(copies.repeated(state, bytes('{"a":2}')), false, 'the device published again in between');
    assert.equal(copies.repeated(state, bytes('{"a":2}')), true);
  });

  test('outside a catch-up nothing is a repeat, and a new catch-up forgets the last one', () => {
    const copies = new CatchUpCopies();
    assert.equal(copies.active, false);
    assert.equal(copies.repeated(state, bytes('x')), false);
    assert.equal(copies.repeated(state, bytes('x')), false);
    copies.begin();
    assert.equal(copies.repeated(state, bytes('x')), false);
    copies.end();
    assert.equal(copies.repeated(state, bytes('x')), false);
    copies.begin();
    assert.equal(copies.active, true);
    assert.equal(copies.repeated(state, bytes('x')), false, 'a reconnect catches up afresh');
  });
});
