/**
 * Several hub instances on one Mosquitto split the device traffic (DESIGN, scale-out): each
 * joins the shared subscription group `$share/<group>/…` (adapters/mqtt/src/hub-subscriptions.ts),
 * so the broker hands every device message to one of them. Three gateways, each in its own
 * process (test-services/shared-gateway-process.ts, which prints a line for each message it hands
 * on), on a real Mosquitto 2 with the production rules (mosquittoConfig, mosquittoAclFile: the
 * hub's read rules cover the shared filters, since Mosquitto checks the topic behind the prefix),
 * and real device clients:
 *  - every device message is handled exactly once in all, and by each member some of the time;
 *  - each member catches up at its start on every device's retained state and availability, once
 *    each, although a shared subscription brings no retained copy by the specification (and
 *    Mosquitto sends them anyway: the gateway hands on one of the two copies);
 *  - one member SIGKILLed mid-stream: every QoS 1 message published after the broker dropped it
 *    reaches one of the others, once; nothing before is handled twice;
 *  - a member that starts later still gets the retained state, without the others getting it
 *    again, and then takes its share.
 */
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectDevice, generateDeviceSecret } from '@firmward/mqtt';
import type { DeviceConnection } from '@firmward/mqtt';
import { silentLogger } from '@firmward/ports';
import { ackEvent, sampleState } from '../adapters/mqtt/test/helpers.ts';
import { Child } from '../apps/hub/test/fixtures/child-process.ts';
import { startMosquitto } from './mosquitto-broker.ts';
import type { RunningMosquitto } from './mosquitto-broker.ts';

const GROUP = 'firmward-hub';
const DEVICE_IDS = ['plug-1', 'plug-2', 'plug-3'];
const MEMBER_MAIN = path.join(import.meta.dirname, 'shared-gateway-process.ts');
const hubLogin = { username: 'hub', password: generateDeviceSecret() };
const secrets = new Map(DEVICE_IDS.map((id) => [id, generateDeviceSecret()]));

/** What a member printed for one message it handed on. */
type Line =
  | { kind: 'started' }
  | { kind: 'state'; deviceId: string; version: string }
  | { kind: 'availability'; deviceId: string; online: boolean }
  | { kind: 'event'; deviceId: string; jobId: string }
  | { kind: 'rejected'; deviceId: string | null; error: string };

interface Member {
  name: string;
  clientId: string;
  child: Child;
  lines: Line[];
}

let broker: RunningMosquitto;
const devices: DeviceConnection[] = [];
const members: Member[] = [];

before(async () => {
  broker = await startMosquitto({ hub: hubLogin, devices: [...secrets].map(([username, password]) => ({ username, password })) });
  for (const deviceId of DEVICE_IDS) devices.push(await connectDevice({ url: broker.url, deviceId, password: secrets.get(deviceId)!, logger: silentLogger }));
});
after(async () => {
  await Promise.all(members.map((m) => m.child.kill('SIGKILL')));
  for (const device of devices) await device.close().catch(() => undefined);
  await broker.stop();
});

/** Fails with the members' and the broker's output when `check` does not hold within `ms`. */
async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${members.map((m) => m.child.tail(10)).join('\n')}\n--- mosquitto (end) ---\n${broker.log().split('\n').slice(-20).join('\n')}`);
    await sleep(20);
  }
}

async function startMember(n: number): Promise<Member> {
  const clientId = `hub/shared-${n}`;
  const child = new Child(`gateway ${n}`, [MEMBER_MAIN, broker.url, clientId, GROUP], { ...process.env, FIRMWARD_TEST_MQTT_PASSWORD: hubLogin.password });
  const member: Member = { name: child.name, clientId, child, lines: [] };
  child.onLine((line) => member.lines.push(JSON.parse(line) as Line));
  members.push(member);
  await until(`${member.name} to start`, () => {
    if (!child.running) assert.fail(`${member.name} exited\n${child.tail()}`);
    return member.lines.some((l) => l.kind === 'started');
  });
  return member;
}

/** One key per message a member handed on: the event's job id, the state's device and version. */
function keysOf(lines: readonly Line[]): string[] {
  return lines.flatMap((l) => {
    switch (l.kind) {
      case 'event': return [`event ${l.jobId}`];
      case 'state': return [`state ${l.deviceId} ${l.version}`];
      case 'availability': return [`availability ${l.deviceId} ${l.online}`];
      case 'rejected': return [`rejected ${String(l.deviceId)} ${l.error}`];
      case 'started': return [];
    }
  });
}

/** How often each key was handed on, over the given members, from each one's `from`-th line on. */
function tally(of: readonly { member: Member; from: number }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { member, from } of of) for (const key of keysOf(member.lines.slice(from))) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

function twice(counts: Map<string, number>): string[] {
  return [...counts].filter(([, n]) => n > 1).map(([key, n]) => `${key} ×${n}`);
}

function device(i: number): DeviceConnection {
  return devices[i % devices.length]!;
}

/** A bookmark in every member's lines: what they handled from here on is counted. */
function mark(of: readonly Member[]): { member: Member; from: number }[] {
  return of.map((member) => ({ member, from: member.lines.length }));
}

/** Each device's newest retained state, as the tests publish them. */
const newest = new Map<string, string>();

test('three gateways in one group on Mosquitto: each catches up on the retained state once, and each live message is handled by exactly one of them', { timeout: 90_000 }, async (t: TestContext) => {
  for (const d of devices) {
    await d.publishState(sampleState({ firmwareVersion: '1.0.0' }));
    newest.set(d.deviceId, '1.0.0');
  }
  const three = [await startMember(1), await startMember(2), await startMember(3)];

  // The catch-up: every member, on its own, has every device's retained state and availability, once.
  const retained = DEVICE_IDS.flatMap((id) => [`availability ${id} true`, `state ${id} 1.0.0`]).sort();
  for (const member of three) {
    await until(`${member.name} to catch up`, () => keysOf(member.lines).length >= retained.length);
    assert.deepEqual(keysOf(member.lines).sort(), retained, `${member.name} caught up on each retained message once`);
  }

  // Live: events and (retained) state reports, each handled by exactly one member.
  const from = mark(three);
  const sent: string[] = [];
  for (let i = 0; i < 60; i++) {
    const d = device(i);
    if (i % 4 === 3) {
      const version = `1.1.${i}`;
      await d.publishState(sampleState({ firmwareVersion: version }));
      sent.push(`state ${d.deviceId} ${version}`);
      newest.set(d.deviceId, version);
    } else {
      await d.publishEvent(ackEvent(`live-${i}`));
      sent.push(`event live-${i}`);
    }
  }
  await until('every live message to be handled', () => [...tally(from).values()].reduce((a, b) => a + b, 0) >= sent.length);
  // Long enough for a second copy of anything, had the broker sent one.
  await sleep(500);
  const counts = tally(from);
  assert.deepEqual(twice(counts), [], 'no message was handled twice');
  assert.deepEqual([...counts.keys()].sort(), [...sent].sort(), 'every message was handled, and nothing else');
  const shares = from.map(({ member, from: start }) => keysOf(member.lines.slice(start)).length);
  t.diagnostic(`live messages per member: ${three.map((m, i) => `${m.name} ${shares[i]}`).join(', ')} of ${sent.length}`);
  for (const [i, share] of shares.entries()) assert.ok(share > 0, `${three[i]!.name} took its share of the traffic`);
});

test('one member SIGKILLed mid-stream: every message published after the broker dropped it is handled once by the others', { timeout: 90_000 }, async (t: TestContext) => {
  assert.equal(members.length, 3, 'the three members of the test before');
  const [victim, ...survivors] = members as [Member, Member, Member];
  const from = mark(members);
  const total = 300;
  let dropped = -1;
  const dropLine = new RegExp(`(Client ${victim.clientId.replace('/', '\\/')} (closed its connection|disconnected)|Socket error on client ${victim.clientId.replace('/', '\\/')})`);
  for (let i = 0; i < total; i++) {
    if (i === 100) {
      const exit = await victim.child.kill('SIGKILL');
      assert.equal(exit.signal, 'SIGKILL');
      // From the moment the broker has dropped the session, it hands the group's messages to the others.
      await until(`Mosquitto to drop ${victim.clientId}`, () => dropLine.test(broker.log()));
      dropped = i;
    }
    await device(i).publishEvent(ackEvent(`kill-${i}`));
  }
  const after = Array.from({ length: total - dropped }, (_, k) => `event kill-${dropped + k}`);
  await until('every message published after the drop to be handled by the survivors', () => {
    const counts = tally(from.filter((f) => f.member !== victim));
    return after.every((key) => counts.has(key));
  });
  await sleep(500);
  const all = tally(from);
  assert.deepEqual(twice(all), [], 'nothing was handled twice, before the kill or after');
  const bySurvivors = tally(from.filter((f) => f.member !== victim));
  for (const key of after) assert.equal(bySurvivors.get(key), 1, `${key} was handled once by a survivor`);
  const before = Array.from({ length: dropped }, (_, k) => `event kill-${k}`);
  const lost = before.filter((key) => !all.has(key));
  // QoS 1 messages the broker had handed to the victim and it had not handled yet die with it
  // (Mosquitto gives a clean session's queue to no other member): the protocol's retained state
  // and re-sent commands make up for them (docs/protocol.md), which is not what this test is about.
  t.diagnostic(`before the drop: ${dropped - lost.length} of ${dropped} handled (${lost.length} lost with the victim: ${lost.slice(0, 10).join(', ')}); after: ${after.length} of ${after.length}; per survivor: ${survivors.map((m) => `${m.name} ${keysOf(m.lines.slice(from.find((f) => f.member === m)!.from)).length}`).join(', ')}`);
});

test('a member that starts later catches up on the retained state alone, then takes its share', { timeout: 90_000 }, async (t: TestContext) => {
  const survivors = members.filter((m) => m.child.running);
  assert.equal(survivors.length, 2, 'the survivors of the test before');
  const quiet = mark(survivors);
  const late = await startMember(4);
  // Each device's newest retained state (the first test's last reports) and availability, once each.
  const retained = DEVICE_IDS.flatMap((id) => [`availability ${id} true`, `state ${id} ${newest.get(id)}`]).sort();
  await until(`${late.name} to catch up`, () => keysOf(late.lines).length >= retained.length);
  await sleep(500);
  assert.deepEqual(keysOf(late.lines).sort(), retained, `${late.name} caught up on each retained message once`);
  // Its catch-up went to it alone: the members already running got nothing meanwhile.
  assert.deepEqual([...tally(quiet).keys()], [], 'the running members handled nothing while the new one caught up');

  const from = mark([...survivors, late]);
  const sent = Array.from({ length: 30 }, (_, i) => `event late-${i}`);
  for (let i = 0; i < sent.length; i++) await device(i).publishEvent(ackEvent(`late-${i}`));
  await until('every message to be handled', () => [...tally(from).values()].reduce((a, b) => a + b, 0) >= sent.length);
  await sleep(500);
  const counts = tally(from);
  assert.deepEqual(twice(counts), []);
  assert.deepEqual([...counts.keys()].sort(), [...sent].sort());
  const mine = keysOf(late.lines.slice(from.find((f) => f.member === late)!.from)).length;
  t.diagnostic(`after joining, ${late.name} handled ${mine} of ${sent.length}`);
  assert.ok(mine > 0, `${late.name} took its share`);
});
