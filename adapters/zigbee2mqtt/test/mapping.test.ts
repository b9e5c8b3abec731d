/** The pure mapping from Zigbee2MQTT's words to ours. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { releaseId } from '@firmward/core';
import { lqiToDbm, parseFileVersion, powerSourceOf, versionText, zigbee2mqttReleases } from '../src/mapping.ts';

test('link quality maps onto -90…-20 dBm in a straight line, clamped', () => {
  assert.equal(lqiToDbm(0), -90);
  assert.equal(lqiToDbm(255), -20);
  assert.equal(lqiToDbm(66), -72, "the hub's default threshold");
  assert.equal(lqiToDbm(-5), -90);
  assert.equal(lqiToDbm(400), -20);
  for (let lqi = 1; lqi <= 255; lqi++) assert.ok(lqiToDbm(lqi) >= lqiToDbm(lqi - 1), 'never weaker for a better link');
});

test("power sources: Zigbee's names, and a safe guess when unknown", () => {
  assert.equal(powerSourceOf({ power_source: 'Battery', type: 'EndDevice' }), 'battery');
  assert.equal(powerSourceOf({ power_source: 'Mains (single phase)', type: 'Router' }), 'mains');
  assert.equal(powerSourceOf({ power_source: 'Mains (3 phase)', type: 'Router' }), 'mains');
  assert.equal(powerSourceOf({ power_source: 'DC Source', type: 'EndDevice' }), 'mains');
  assert.equal(powerSourceOf({ power_source: 'Emergency mains constantly powered', type: 'EndDevice' }), 'mains');
  assert.equal(powerSourceOf({ power_source: 'Unknown', type: 'Router' }), 'mains', 'routers relay for others, so they are powered');
  assert.equal(powerSourceOf({ power_source: 'Unknown', type: 'EndDevice' }), 'battery');
  assert.equal(powerSourceOf({ power_source: undefined, type: 'Unknown' }), 'battery');
});

test('file versions: the four bytes of a uint32, dotted, so they compare as the integers do', () => {
  assert.equal(versionText(16_777_250), '1.0.0.34');
  assert.equal(parseFileVersion('1.0.0.34'), 16_777_250);
  assert.equal(parseFileVersion('0.0.0.0'), 0);
  assert.equal(parseFileVersion('255.255.255.255'), 0xffff_ffff);
  assert.equal(versionText(0xffff_ffff), '255.255.255.255');
  assert.equal(parseFileVersion('256.0.0.0'), null);
  assert.equal(parseFileVersion('16777250'), null, 'decimal is not how we write them');
  assert.equal(parseFileVersion('1.2.3'), null);
  assert.equal(parseFileVersion('0x01000019'), null);
  assert.equal(parseFileVersion(''), null);
});

test('one release per vendor, model and image; devices of a model share it', () => {
  const releases = zigbee2mqttReleases([
    { vendor: 'IKEA', model: 'E1603', hardwareRevision: 'E1603', latestFileVersion: 16_777_250, releaseNotes: 'Fixes pairing.' },
    { vendor: 'IKEA', model: 'E1603', hardwareRevision: 'E1603', latestFileVersion: 16_777_250, releaseNotes: null },
    { vendor: 'Philips', model: '9290012607', hardwareRevision: '9290012607', latestFileVersion: 33_554_432, releaseNotes: null },
    { vendor: 'IKEA', model: 'E1603', hardwareRevision: 'E1603', latestFileVersion: 16_777_300, releaseNotes: null },
  ]);
  assert.deepEqual(releases.map((r) => r.id), [releaseId('IKEA', 'E1603', versionText(16_777_250)), releaseId('IKEA', 'E1603', versionText(16_777_300)), releaseId('Philips', '9290012607', versionText(33_554_432))]);
  const first = releases[0]!;
  assert.deepEqual(first.hardwareRevisions, ['E1603']);
  assert.equal(first.notes, 'Fixes pairing.');
  assert.equal(first.origin?.ecosystem, 'zigbee2mqtt');
  assert.equal(first.preflightOverrides.minBatteryPercent, 70);
  assert.equal(releases[2]!.notes, undefined);
});
