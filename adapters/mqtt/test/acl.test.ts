import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_PAYLOAD_BYTES, deviceTopics, encode } from '@firmward/protocol';
import { HUB_TOPIC_FILTERS, clientIdRefusal, publishRefusal, subscribeRefusal, willRefusal } from '../src/acl.ts';
import type { Principal } from '../src/acl.ts';

const deviceId = fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/);
const hub: Principal = { role: 'hub' };
const device = (id: string): Principal => ({ role: 'device', deviceId: id });
const msg = (topic: string, retain = false, payloadBytes = 10) => ({ topic, retain, payloadBytes });

describe('topic ACLs', () => {
  test('property: a device publishes only its own state, availability and events', () => {
    fc.assert(fc.property(deviceId, deviceId, fc.boolean(), (me, other, retain) => {
      const mine = deviceTopics(me);
      assert.equal(publishRefusal(device(me), msg(mine.state, retain)), null);
      assert.equal(publishRefusal(device(me), msg(mine.availability, retain)), null);
      assert.equal(publishRefusal(device(me), msg(mine.event)), null);
      assert.notEqual(publishRefusal(device(me), msg(mine.command)), null);
      if (other !== me) {
        for (const topic of Object.values(deviceTopics(other))) assert.notEqual(publishRefusal(device(me), msg(topic, retain)), null, topic);
      }
    }));
  });

  test('property: a device subscribes only to its own command topic', () => {
    fc.assert(fc.property(deviceId, deviceId, (me, other) => {
      assert.equal(subscribeRefusal(device(me), deviceTopics(me).command), null);
      for (const filter of ['#', '+/#', 'firmward/#', 'firmward/v1/d/+/cmd', `firmward/v1/d/${me}/+`, `firmward/v1/d/${me}/#`, deviceTopics(me).state, ...HUB_TOPIC_FILTERS]) {
        assert.notEqual(subscribeRefusal(device(me), filter), null, filter);
      }
      if (other !== me) assert.notEqual(subscribeRefusal(device(me), deviceTopics(other).command), null);
    }));
  });

  test('the hub reads device topics and writes only unretained commands', () => {
    for (const filter of HUB_TOPIC_FILTERS) assert.equal(subscribeRefusal(hub, filter), null);
    assert.equal(subscribeRefusal(hub, deviceTopics('plug-1').event), null);
    for (const filter of ['#', 'firmward/#', 'firmward/v1/d/+/cmd', 'firmward/v1/d/+/+', deviceTopics('plug-1').command, '$SYS/#', '$share/g/firmward/v1/d/+/state']) {
      assert.notEqual(subscribeRefusal(hub, filter), null, filter);
    }
    assert.equal(publishRefusal(hub, msg(deviceTopics('plug-1').command)), null);
    assert.match(publishRefusal(hub, msg(deviceTopics('plug-1').command, true)) ?? '', /never retained/);
    for (const topic of [deviceTopics('plug-1').state, deviceTopics('plug-1').availability, deviceTopics('plug-1').event, 'other/topic', '$SYS/x']) {
      assert.notEqual(publishRefusal(hub, msg(topic)), null, topic);
    }
  });

  test('events are never retained, and no payload may exceed the limit', () => {
    assert.match(publishRefusal(device('p'), msg(deviceTopics('p').event, true)) ?? '', /never retained/);
    assert.equal(publishRefusal(device('p'), msg(deviceTopics('p').state, true, MAX_PAYLOAD_BYTES)), null);
    assert.match(publishRefusal(device('p'), msg(deviceTopics('p').state, true, MAX_PAYLOAD_BYTES + 1)) ?? '', /limit/);
    assert.match(publishRefusal(hub, msg(deviceTopics('p').command, false, MAX_PAYLOAD_BYTES + 1)) ?? '', /limit/);
  });

  test('client ids: a device uses its own id, the hub the hub/ prefix', () => {
    assert.equal(clientIdRefusal(device('plug-1'), 'plug-1'), null);
    assert.notEqual(clientIdRefusal(device('plug-1'), 'plug-2'), null);
    assert.notEqual(clientIdRefusal(device('plug 1'), 'plug 1'), null, 'an invalid device id from the credential store is refused');
    assert.equal(clientIdRefusal(hub, 'hub/123'), null);
    assert.notEqual(clientIdRefusal(hub, 'hub/'), null);
    assert.notEqual(clientIdRefusal(hub, 'plug-1'), null);
  });

  test('last will: only a device\'s own retained "offline" availability', () => {
    const offline = encode({ v: 1, online: false });
    const own = deviceTopics('p').availability;
    assert.equal(willRefusal(device('p'), null), null);
    assert.equal(willRefusal(device('p'), { topic: own, retain: true, payload: offline }), null);
    assert.equal(willRefusal(device('p'), { topic: own, retain: true, payload: new TextEncoder().encode(offline) }), null);
    const refused = [
      { topic: deviceTopics('q').availability, retain: true, payload: offline },
      { topic: deviceTopics('p').state, retain: true, payload: offline },
      { topic: own, retain: false, payload: offline },
      { topic: own, retain: true, payload: encode({ v: 1, online: true }) },
      { topic: own, retain: true, payload: '{"v":1,"online":false,"x":1}' },
      { topic: own, retain: true, payload: 'offline' },
    ];
    for (const will of refused) assert.notEqual(willRefusal(device('p'), will), null, JSON.stringify(will));
    assert.notEqual(willRefusal(hub, { topic: deviceTopics('p').command, retain: false, payload: '{}' }), null);
  });
});
