import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_PREFIXES, isIntermediateImage, parseTasmotaTopic, parseTasmotaVersion, readUpgradeReply, signalDbm } from '../src/messages.ts';

describe('Tasmota messages', () => {
  test('versions: the numbers are compared, the image name says which build runs', () => {
    assert.deepEqual(parseTasmotaVersion('14.2.0(release-tasmota)'), { version: '14.2.0', image: 'tasmota' });
    assert.deepEqual(parseTasmotaVersion('14.2.0.3(tasmota32-bluetooth)[2.0.14]'), { version: '14.2.0.3', image: 'tasmota32-bluetooth' });
    assert.deepEqual(parseTasmotaVersion('9.0.0.2(sonoff)'), { version: '9.0.0.2', image: 'sonoff' });
    assert.deepEqual(parseTasmotaVersion('13.4.0'), { version: '13.4.0', image: null });
    assert.equal(parseTasmotaVersion('banana'), null);
    assert.equal(parseTasmotaVersion(''), null);
  });

  test('minimal and safeboot are intermediate images, the rest are not', () => {
    assert.ok(isIntermediateImage('minimal'));
    assert.ok(isIntermediateImage('tasmota32-safeboot'));
    assert.ok(!isIntermediateImage('tasmota'));
    assert.ok(!isIntermediateImage(null));
  });

  test('signal: Wifi.Signal is dBm as it is; Wifi.RSSI percent inverts Tasmota\'s 2 × (dBm + 100)', () => {
    assert.equal(signalDbm({ RSSI: 86, Signal: -57 }), -57);
    assert.equal(signalDbm({ RSSI: 86 }), -57);
    assert.equal(signalDbm({ RSSI: 100 }), -50);
    assert.equal(signalDbm({ RSSI: 0 }), -100);
    assert.equal(signalDbm({ Signal: 12 }), null);
    assert.equal(signalDbm({}), null);
    assert.equal(signalDbm(undefined), null);
  });

  test('property: converting Tasmota\'s own quality back never reports a stronger signal than the radio had', () => {
    // WifiGetRssiAsQuality, as Tasmota computes it (reference section 3.4).
    const quality = (dbm: number) => (dbm <= -100 ? 0 : dbm >= -50 ? 100 : 2 * (dbm + 100));
    fc.assert(fc.property(fc.integer({ min: -130, max: -20 }), (dbm) => {
      const back = signalDbm({ RSSI: quality(dbm) })!;
      if (dbm > -100 && dbm < -50) assert.equal(back, dbm);
      else assert.ok(dbm >= -50 ? back <= dbm : back >= -100);
    }));
  });

  test('upgrade replies as Tasmota writes them', () => {
    assert.equal(readUpgradeReply('Version 14.2.0(release-tasmota) from http://hub/fw').kind, 'started');
    assert.deepEqual(readUpgradeReply('1 or >14.2.0(release-tasmota) to upgrade'), { kind: 'refused', detail: '1 or >14.2.0(release-tasmota) to upgrade' });
    assert.equal(readUpgradeReply('Successful. Restarting').kind, 'written');
    assert.deepEqual(readUpgradeReply('Failed Not Enough Space'), { kind: 'failed', detail: 'Not Enough Space' });
    assert.equal(readUpgradeReply('Safeboot').kind, 'other');
  });

  test('topics: the ones the bridge reads, and nothing else', () => {
    const read = (t: string) => parseTasmotaTopic(t, DEFAULT_PREFIXES, 'tasmota/discovery');
    assert.deepEqual(read('tasmota/discovery/A1B2C3D4E5F6/config'), { kind: 'discovery', mac: 'A1B2C3D4E5F6' });
    assert.equal(read('tasmota/discovery/A1B2C3D4E5F6/sensors'), null);
    assert.deepEqual(read('tele/plug/LWT'), { kind: 'lwt', topic: 'plug' });
    assert.deepEqual(read('tele/plug/STATE'), { kind: 'telemetry', topic: 'plug' });
    assert.deepEqual(read('stat/plug/RESULT'), { kind: 'reply', topic: 'plug', command: 'RESULT' });
    assert.deepEqual(read('stat/plug/Upgrade'), { kind: 'reply', topic: 'plug', command: 'UPGRADE' });
    assert.deepEqual(read('stat/plug/STATUS11'), { kind: 'reply', topic: 'plug', command: 'STATUS11' });
    assert.equal(read('stat/plug/POWER'), null);
    assert.equal(read('tele/plug/SENSOR'), null);
    assert.equal(read('cmnd/plug/Upgrade'), null);
    assert.equal(read('stat/a/b/RESULT'), null);
  });
});
