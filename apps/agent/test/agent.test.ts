import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ManualClock } from '@firmward/ports';
import type { AckEvent, DeviceEvent, ProgressEvent, ResultEvent } from '@firmward/protocol';
import { Agent, InProcessTransport, parseJournal } from '../src/index.ts';
import type { AgentTransition, MemoryHardware, MemoryPlatformHooks } from '../src/index.ts';
import type { AgentConfig } from '../src/config.ts';
import { IDENTITY, IMAGE_BYTES, image, newHardware, nextBoot, offerFor, sha256, startImageServer } from './helpers.ts';
import type { ImageServer } from './helpers.ts';

const T0 = Date.UTC(2026, 2, 1, 2, 0);
const NEW = image('1.1.0');
const CONFIG = { downloadChunkBytes: 8 * 1024, stateReportIntervalMs: 60_000, healthCheckTimeoutMs: 5_000 };

let server: ImageServer;
before(async () => {
  server = await startImageServer({ '/plug-1.1.0.bin': NEW, '/bigger.bin': image('1.1.0', IDENTITY, IMAGE_BYTES + 4096) });
});
after(async () => {
  await server.close();
});
beforeEach(() => {
  server.release();
  Object.assign(server.behaviour, {
    ignoreRange: false, extraBytes: 0, chunked: false, flipByteAt: null, holdAfterBytes: null, dropAfterBytes: null, failNext: 0,
  });
  server.requests.length = 0;
});

const isAck = (jobId: string) => (e: DeviceEvent): e is AckEvent => e.type === 'ack' && e.jobId === jobId;
const isProgress = (phase: ProgressEvent['phase']) => (e: DeviceEvent): e is ProgressEvent => e.type === 'progress' && e.phase === phase;
const isResult = (e: DeviceEvent): e is ResultEvent => e.type === 'result';

interface Rig {
  hardware: MemoryHardware;
  transport: InProcessTransport;
  clock: ManualClock;
  agent: Agent;
  transitions: AgentTransition[];
  /** Starts a new agent over the same hardware (after a restart of the device or the agent). */
  restart(): Promise<Agent>;
}

async function rig(options: { hardware?: MemoryHardware; hooks?: MemoryPlatformHooks; config?: Partial<AgentConfig> } = {}): Promise<Rig> {
  const hardware = options.hardware ?? newHardware();
  const transport = new InProcessTransport();
  const clock = new ManualClock(T0);
  const transitions: AgentTransition[] = [];
  const make = () => {
    const platform = hardware.platform();
    if (options.hooks) platform.setHooks(options.hooks);
    const agent = new Agent({ platform, transport, clock, config: { ...CONFIG, ...options.config } });
    agent.onTransition((t) => transitions.push(t));
    return agent;
  };
  const r: Rig = {
    hardware, transport, clock, transitions, agent: make(),
    async restart() {
      await r.agent.stop();
      r.agent = make();
      await r.agent.start();
      return r.agent;
    },
  };
  await r.agent.start();
  return r;
}

function journalOf(hardware: MemoryHardware) {
  return parseJournal(hardware.loadJournal()).journal;
}

async function downloaded(r: Rig, jobId = 'job-1', url = server.url('/plug-1.1.0.bin')): Promise<void> {
  r.transport.send(offerFor(NEW, url, { jobId }));
  const ack = await r.transport.waitForEvent(isAck(jobId));
  assert.equal(ack.accepted, true, ack.message ?? '');
  await r.transport.waitForEvent((e) => isProgress('downloaded')(e) && e.jobId === jobId);
}

describe('Agent: the whole update', () => {
  test('happy path: download, install, reboot, health check, commit, result', { timeout: 10_000 }, async () => {
    const r = await rig();
    await downloaded(r);
    assert.deepEqual(r.hardware.slotBytes('b', NEW.byteLength), NEW, 'the inactive slot holds exactly the image');
    assert.equal(sha256(r.hardware.slotBytes('b', NEW.byteLength)), sha256(NEW));
    assert.equal(r.hardware.bootState().trial, null, 'nothing switched before the go-ahead');
    assert.equal(journalOf(r.hardware).job?.phase, 'downloaded');

    const booted = nextBoot(r.hardware);
    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    await r.transport.waitForEvent(isProgress('rebooting'));
    await booted;
    assert.equal(r.hardware.running.slot, 'b');
    assert.equal(r.hardware.bootState().trial?.slot, 'b', 'the new slot runs on trial until its health check passes');

    await r.restart();
    const result = await r.transport.waitForEvent(isResult);
    await r.agent.settled();
    assert.equal(result.outcome, 'installed');
    assert.equal(result.firmwareVersion, '1.1.0');
    assert.equal(result.healthy, true);
    assert.equal(r.hardware.committedSlot, 'b');
    assert.equal(r.hardware.bootState().trial, null);
    assert.equal(journalOf(r.hardware).job, null);
    const state = await r.transport.waitForState((s) => s.firmwareVersion === '1.1.0');
    assert.equal(state.activeSlot, 'b');
    assert.equal(state.healthy, true);
    assert.equal(state.job, null);

    const phases = r.transport.events.filter((e) => e.type === 'progress').map((e) => e.phase);
    assert.deepEqual([...new Set(phases)], ['downloading', 'downloaded', 'installing', 'rebooting']);
    assert.deepEqual(r.transitions.map((t) => `${t.from}>${t.to}`), [
      'idle>downloading', 'downloading>downloaded', 'downloaded>installing', 'installing>rebooting', 'rebooting>idle',
    ]);
    await r.agent.stop();
  });

  test('the periodic state report follows the clock and tells what runs', { timeout: 10_000 }, async () => {
    const r = await rig();
    await r.transport.waitForState(() => true);
    for (let i = 0; i < 3; i++) {
      const before = r.transport.states.length;
      const next = new Promise<void>((resolve) => {
        const off = r.transport.observe((m) => {
          if (m.kind === 'state') {
            off();
            resolve();
          }
        });
      });
      // The loop has gone to sleep on the clock before time moves on.
      while (r.clock.pending === 0) await new Promise((resolve) => setImmediate(resolve));
      await r.clock.advance(CONFIG.stateReportIntervalMs);
      await next;
      assert.equal(r.transport.states.length, before + 1);
    }
    const last = r.transport.states.at(-1)!;
    assert.equal(last.firmwareVersion, '1.0.0');
    assert.equal(last.activeSlot, 'a');
    assert.equal(last.vendor, 'Acme');
    assert.equal(last.job, null);
    await r.agent.stop();
  });
});

describe('Agent: resumable, bounded, verified download', () => {
  test('resumes with Range from the journal after the agent is stopped mid-download', { timeout: 10_000 }, async () => {
    server.behaviour.holdAfterBytes = 24 * 1024;
    const r = await rig();
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    await server.held();
    await r.transport.waitForEvent((e) => isProgress('downloading')(e) && (e.percent ?? 0) > 0);
    await r.agent.stop();
    const saved = journalOf(r.hardware).job;
    assert.equal(saved?.phase, 'downloading');
    assert.ok(saved.bytesWritten > 0 && saved.bytesWritten < NEW.byteLength, `journalled ${saved.bytesWritten} bytes`);

    server.release();
    await r.restart();
    await r.transport.waitForEvent(isProgress('downloaded'));
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[1]?.range, `bytes=${saved.bytesWritten}-`);
    assert.equal(server.requests[1]?.status, 206);
    assert.deepEqual(r.hardware.slotBytes('b', NEW.byteLength), NEW);
    await r.agent.stop();
  });

  test('a server that ignores Range (200 instead of 206) makes it start over from byte 0', { timeout: 10_000 }, async () => {
    server.behaviour.holdAfterBytes = 24 * 1024;
    const r = await rig();
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    await server.held();
    await r.transport.waitForEvent((e) => isProgress('downloading')(e) && (e.percent ?? 0) > 0);
    await r.agent.stop();
    const resumeFrom = journalOf(r.hardware).job?.bytesWritten ?? 0;
    assert.ok(resumeFrom > 0);

    server.release();
    server.behaviour.ignoreRange = true;
    await r.restart();
    await r.transport.waitForEvent(isProgress('downloaded'));
    assert.equal(server.requests[1]?.range, `bytes=${resumeFrom}-`);
    assert.equal(server.requests[1]?.status, 200);
    assert.deepEqual(r.hardware.slotBytes('b', NEW.byteLength), NEW, 'the whole body was written from byte 0, not appended');
    await r.agent.stop();
  });

  /** Moves the clock (retry pauses are on it) until `done`, letting real I/O run in between. */
  async function runUntil(r: Rig, done: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !done(); i++) {
      await r.clock.advance(1_000);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  test('a connection dropped mid-download resumes with Range after the retry pause', { timeout: 10_000 }, async () => {
    server.behaviour.dropAfterBytes = 24 * 1024;
    const r = await rig();
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    await runUntil(r, () => r.transport.events.some(isProgress('downloaded')));
    assert.equal(server.requests.length, 2);
    assert.match(server.requests[1]?.range ?? '', /^bytes=[1-9]\d*-$/);
    assert.equal(server.requests[1]?.status, 206);
    assert.deepEqual(r.hardware.slotBytes('b', NEW.byteLength), NEW);
    await r.agent.stop();
  });

  test('503 answers are retried; a 404 is not retried in place: the device keeps the job, says image_unavailable, and resumes on the next offer', { timeout: 10_000 }, async () => {
    server.behaviour.failNext = 2;
    const r = await rig();
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    await runUntil(r, () => r.transport.events.some(isProgress('downloaded')));
    assert.deepEqual(server.requests.map((q) => q.status), [503, 503, 200]);

    const other = await rig();
    other.transport.send(offerFor(NEW, server.url('/missing.bin'), { jobId: 'job-404', offerSeq: 1 }));
    const refusal = await other.transport.waitForEvent((e): e is AckEvent => e.type === 'ack' && !e.accepted);
    assert.equal(refusal.code, 'image_unavailable');
    assert.equal(refusal.offerSeq, 1, 'the refusal names the offer it answers');
    await other.agent.settled();
    assert.equal(other.transport.events.filter(isResult).length, 0, 'nothing ended: the hub offers it again');
    assert.equal(journalOf(other.hardware).job?.phase, 'downloading');
    await r.agent.stop();
    await other.agent.stop();
  });

  test('a hub away longer than the retry budget: the device keeps the job and its bytes, says hub_unreachable, and resumes where it stopped on the next offer', { timeout: 10_000 }, async () => {
    const r = await rig({ config: { downloadRetryBudgetMs: 5 * 60_000, downloadRetryDelayMs: 1_000 } });
    server.behaviour.dropAfterBytes = 24 * 1024;
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin'), { offerSeq: 1 }));
    await r.transport.waitForEvent((e): e is AckEvent => isAck('job-1')(e) && e.accepted);
    await runUntil(r, () => server.requests.length >= 1 && journalOf(r.hardware).job?.bytesWritten !== 0);
    server.behaviour.failNext = 1_000_000;
    const startedAt = r.clock.now();
    await runUntil(r, () => r.transport.events.some((e) => e.type === 'ack' && !e.accepted));
    const refusal = r.transport.events.find((e): e is AckEvent => e.type === 'ack' && !e.accepted)!;
    assert.equal(refusal.code, 'hub_unreachable');
    assert.equal(refusal.offerSeq, 1);
    const waited = r.clock.now() - startedAt;
    assert.ok(waited >= 5 * 60_000 && waited <= 7 * 60_000, `gave up after the budget, not after a count of tries (${waited} ms)`);
    const tries = server.requests.length;
    assert.ok(tries < 20, `tries back off (${tries} in ${waited} ms)`);
    await r.agent.settled();
    const kept = journalOf(r.hardware).job;
    assert.equal(kept?.phase, 'downloading');
    assert.ok((kept?.bytesWritten ?? 0) > 0, 'what was downloaded is kept');
    assert.equal(r.transport.events.filter(isResult).length, 0, 'the job did not end on the device');

    server.behaviour.failNext = 0;
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin'), { offerSeq: 2 }));
    const again = await r.transport.waitForEvent((e): e is AckEvent => isAck('job-1')(e) && e.accepted && e.offerSeq === 2);
    assert.equal(again.code, null);
    await runUntil(r, () => r.transport.events.some(isProgress('downloaded')));
    const resumed = server.requests.slice(tries).find((q) => q.status === 206);
    assert.match(resumed?.range ?? '', /^bytes=[1-9]\d*-$/, 'resumed with Range where it stopped');
    assert.deepEqual(r.hardware.slotBytes('b', NEW.byteLength), NEW);
    assert.equal(journalOf(r.hardware).job?.offer.offerSeq, 2, 'later answers name the newest offer');
    await r.agent.stop();
  });

  for (const chunked of [false, true]) {
    test(`more bytes than the signed length (${chunked ? 'no Content-Length' : 'Content-Length too big'}) fails cleanly`, { timeout: 10_000 }, async () => {
      server.behaviour.extraBytes = 10_000;
      server.behaviour.chunked = chunked;
      const r = await rig();
      r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
      const result = await r.transport.waitForEvent(isResult);
      await r.agent.settled();
    await r.agent.settled();
      assert.equal(result.outcome, 'failed');
      assert.equal(result.code, 'image_length_mismatch');
      assert.equal(result.firmwareVersion, '1.0.0');
      const boot = r.hardware.bootState();
      assert.equal(boot.versions.b, null, 'the half-written slot is never marked bootable');
      assert.equal(boot.trial, null);
      const tail = r.hardware.slotBytes('b', 256 * 1024).subarray(NEW.byteLength);
      assert.ok(tail.every((b) => b === 0), 'nothing was written past the signed length');
      assert.equal(journalOf(r.hardware).job, null);
      assert.equal(r.transport.events.some(isProgress('downloaded')), false);
      await r.agent.stop();
    });
  }

  test('one flipped byte: image_hash_mismatch, nothing switched, install refused', { timeout: 10_000 }, async () => {
    server.behaviour.flipByteAt = 40_000;
    const r = await rig();
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    const result = await r.transport.waitForEvent(isResult);
    await r.agent.settled();
    assert.equal(result.outcome, 'failed');
    assert.equal(result.code, 'image_hash_mismatch');
    assert.equal(result.firmwareVersion, '1.0.0');
    assert.deepEqual(r.hardware.bootState(), { activeSlot: 'a', trial: null, versions: { a: '1.0.0', b: null } });

    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    const refusal = await r.transport.waitForEvent((e): e is AckEvent => isAck('job-1')(e) && !e.accepted);
    assert.equal(refusal.code, 'job_finished');
    await r.agent.settled();
    assert.equal(r.transport.events.filter(isResult).length, 2, 'the result is sent again, nothing restarts');
    assert.equal(server.requests.length, 1);
    assert.equal(r.hardware.bootState().trial, null);
    assert.equal(r.hardware.running.slot, 'a');
    await r.agent.stop();
  });

  test('an image changed on the slot after download is caught by the check right before the switch', { timeout: 10_000 }, async () => {
    const r = await rig();
    await downloaded(r);
    // Bit rot (or tampering) in storage between download and install.
    const hw = r.hardware;
    const writer = await hw.platform().openSlotWriter('b', { offset: 100 });
    await writer.write(new Uint8Array([1, 2, 3]));
    await writer.sync();
    await r.restart();
    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    const result = await r.transport.waitForEvent(isResult);
    await r.agent.settled();
    assert.equal(result.code, 'image_hash_mismatch');
    assert.equal(hw.bootState().trial, null, 'nothing switched');
    await r.agent.stop();
  });
});

describe('Agent: refuses what is not for it', () => {
  const cases: { name: string; overrides: Parameters<typeof offerFor>[2]; code: string }[] = [
    { name: 'another model', overrides: { model: 'Bulb' }, code: 'model_mismatch' },
    { name: 'another vendor', overrides: { vendor: 'Other' }, code: 'model_mismatch' },
    { name: 'a hardware revision not listed', overrides: { hardwareRevisions: ['rev1'] }, code: 'hardware_mismatch' },
    { name: 'a downgrade', overrides: { version: '0.9.0' }, code: 'downgrade' },
    { name: 'the same version', overrides: { version: '1.0.0' }, code: 'already_up_to_date' },
    { name: 'an installed version below applicableFrom', overrides: { applicableFrom: '1.0.5' }, code: 'not_applicable_from' },
    { name: 'an installed version above applicableTo', overrides: { applicableTo: '0.9.9' }, code: 'not_applicable_from' },
    { name: 'a version that cannot be compared', overrides: { version: '20260315' }, code: 'version_ambiguous' },
  ];
  for (const c of cases) {
    test(`${c.name} → ${c.code}, nothing downloaded`, { timeout: 10_000 }, async () => {
      const r = await rig();
      r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin'), c.overrides));
      const ack = await r.transport.waitForEvent(isAck('job-1'));
      assert.equal(ack.accepted, false);
      assert.equal(ack.code, c.code);
      assert.ok(ack.message && ack.message.length > 10);
      await r.agent.settled();
      assert.equal(server.requests.length, 0);
      assert.equal(journalOf(r.hardware).job, null);
      await r.agent.stop();
    });
  }

  const preflight: { name: string; hooks: MemoryPlatformHooks; code: string | null }[] = [
    { name: 'battery 15 % not charging', code: 'battery_low', hooks: { conditions: () => ({ powerSource: 'battery', batteryPercent: 15, charging: false, signalDbm: -60, busy: false, freeStorageBytes: 1e6 }) } },
    { name: 'battery 15 % but charging', code: null, hooks: { conditions: () => ({ powerSource: 'battery', batteryPercent: 15, charging: true, signalDbm: -60, busy: false, freeStorageBytes: 1e6 }) } },
    { name: 'in use', code: 'device_busy', hooks: { conditions: () => ({ powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: null, busy: true, freeStorageBytes: 1e6 }) } },
    { name: 'no room', code: 'insufficient_storage', hooks: { conditions: () => ({ powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: null, busy: false, freeStorageBytes: 1000 }) } },
    { name: 'signal −90 dBm', code: 'signal_weak', hooks: { conditions: () => ({ powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: -90, busy: false, freeStorageBytes: 1e6 }) } },
    { name: 'power unstable', code: 'power_unstable', hooks: { conditions: () => ({ powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: -60, busy: false, freeStorageBytes: 1e6, powerStable: false }) } },
  ];
  for (const c of preflight) {
    test(`own preflight: ${c.name} → ${c.code ?? 'accepted'}`, { timeout: 10_000 }, async () => {
      const r = await rig({ hooks: c.hooks });
      r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
      const ack = await r.transport.waitForEvent(isAck('job-1'));
      assert.equal(ack.accepted, c.code === null);
      assert.equal(ack.code, c.code);
      await r.agent.settled();
      await r.agent.stop();
    });
  }
});

describe('Agent: its own checks again right before the install step', () => {
  test('the go-ahead is refused while the battery is low; nothing is switched; a later go-ahead installs', { timeout: 10_000 }, async () => {
    let battery = 80;
    const r = await rig({ hooks: { conditions: () => ({ powerSource: 'battery', batteryPercent: battery, charging: false, signalDbm: -60, busy: false, freeStorageBytes: 1e6 }) } });
    await downloaded(r);
    battery = 12;
    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    const refused = await r.transport.waitForEvent((e): e is AckEvent => isAck('job-1')(e) && !e.accepted);
    assert.equal(refused.code, 'battery_low');
    await r.agent.settled();
    assert.equal(journalOf(r.hardware).job?.phase, 'downloaded', 'the download is kept for the next go-ahead');
    assert.equal(r.hardware.bootState().trial, null, 'nothing may be switched on a refusal');
    battery = 70;
    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    await r.transport.waitForEvent(isProgress('rebooting'));
    await r.agent.stop();
  });
});

describe('Agent: idempotent commands, cancel only before the install step', () => {
  test('a duplicate offer with the same job id is acknowledged again and does not restart anything', { timeout: 10_000 }, async () => {
    server.behaviour.holdAfterBytes = 16 * 1024;
    const r = await rig();
    const offer = offerFor(NEW, server.url('/plug-1.1.0.bin'));
    r.transport.send(offer);
    await server.held();
    r.transport.send(offer);
    await r.agent.settled();
    server.release();
    await r.transport.waitForEvent(isProgress('downloaded'));
    r.transport.send(offer);
    await r.agent.settled();
    const acks = r.transport.events.filter(isAck('job-1'));
    assert.equal(acks.length, 3);
    assert.ok(acks.every((a) => a.accepted));
    assert.equal(server.requests.length, 1, 'downloaded once');
    assert.equal(r.transitions.filter((t) => t.to === 'downloading').length, 1);
    assert.equal(journalOf(r.hardware).job?.phase, 'downloaded');
    await r.agent.stop();
  });

  test('cancel while downloading stops the download and is acknowledged', { timeout: 10_000 }, async () => {
    server.behaviour.holdAfterBytes = 16 * 1024;
    const r = await rig();
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    await server.held();
    r.transport.send({ v: 1, type: 'cancel', jobId: 'job-1', message: 'Cancelled by the owner.' });
    await r.agent.settled();
    const acks = r.transport.events.filter(isAck('job-1'));
    assert.equal(acks.at(-1)?.accepted, true);
    assert.equal(journalOf(r.hardware).job, null);
    assert.equal(r.agent.phase, 'idle');
    server.release();
    await r.agent.settled();
    assert.equal(r.transport.events.some(isProgress('downloaded')), false);
    assert.equal(r.transport.events.some(isResult), false);
    assert.equal(r.hardware.bootState().versions.b, null);

    // A late copy of the offer does not bring the cancelled job back; a repeated cancel is fine.
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    r.transport.send({ v: 1, type: 'cancel', jobId: 'job-1', message: 'Again.' });
    await r.agent.settled();
    const [late, again] = r.transport.events.filter(isAck('job-1')).slice(-2);
    assert.equal(late?.accepted, false);
    assert.equal(late?.code, 'job_cancelled');
    assert.equal(again?.accepted, true);
    assert.equal(journalOf(r.hardware).job, null);
    assert.equal(server.requests.length, 1);
    await r.agent.stop();
  });

  test('cancel after the install go-ahead is refused with cancel_too_late and the install goes on', { timeout: 10_000 }, async () => {
    const r = await rig();
    await downloaded(r);
    const booted = nextBoot(r.hardware);
    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    r.transport.send({ v: 1, type: 'cancel', jobId: 'job-1', message: 'Too late.' });
    await r.transport.waitForEvent(isProgress('rebooting'));
    const refusal = r.transport.events.filter(isAck('job-1')).at(-1);
    assert.equal(refusal?.accepted, false);
    assert.equal(refusal?.code, 'cancel_too_late');
    await booted;
    await r.restart();
    const result = await r.transport.waitForEvent(isResult);
    await r.agent.settled();
    assert.equal(result.outcome, 'installed');
    await r.agent.stop();
  });

  test('a new job id before the install step replaces the old download', { timeout: 10_000 }, async () => {
    server.behaviour.holdAfterBytes = 16 * 1024;
    const r = await rig();
    r.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin'), { jobId: 'job-1' }));
    await server.held();
    server.release();
    await downloaded(r, 'job-2');
    assert.equal(journalOf(r.hardware).job?.jobId, 'job-2');
    await r.agent.stop();
  });
});

describe('Agent: rollback reports the truth', () => {
  test('the new version fails its health check: rolled back, old version reported', { timeout: 10_000 }, async () => {
    const hooks: MemoryPlatformHooks = {
      healthCheck: (running) => running.version === '1.1.0'
        ? { healthy: false, detail: 'The relay did not answer' }
        : { healthy: true, detail: 'All good.' },
    };
    const r = await rig({ hooks });
    await downloaded(r);
    let booted = nextBoot(r.hardware);
    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    await booted;
    booted = nextBoot(r.hardware);
    await r.restart();
    await booted;
    assert.equal(r.hardware.running.slot, 'a', 'the bootloader went back to the committed slot');
    assert.equal(r.transport.states.some((s) => s.firmwareVersion === '1.1.0' && s.healthy), false, 'never claimed a healthy new version');
    await r.restart();
    const result = await r.transport.waitForEvent(isResult);
    await r.agent.settled();
    assert.equal(result.outcome, 'rolled-back');
    assert.equal(result.code, 'unhealthy');
    assert.match(result.message ?? '', /relay/);
    assert.equal(result.firmwareVersion, '1.0.0');
    const state = r.transport.states.at(-1)!;
    assert.equal(state.firmwareVersion, '1.0.0');
    assert.equal(state.activeSlot, 'a');
    assert.deepEqual(r.hardware.bootState(), { activeSlot: 'a', trial: null, versions: { a: '1.0.0', b: null } });
    assert.equal(journalOf(r.hardware).job, null);
    await r.agent.stop();
  });

  test('the new version does not start at all: the bootloader falls back, result rolled-back boot_failed', { timeout: 10_000 }, async () => {
    const hardware = newHardware({ imageStarts: (h) => h.version !== '1.1.0' });
    const r = await rig({ hardware });
    await downloaded(r);
    const booted = nextBoot(r.hardware);
    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    await booted;
    assert.equal(hardware.boots.at(-1)?.fellBack, true);
    assert.deepEqual(hardware.bootState().trial, { slot: 'b', attemptsLeft: 0 });
    await r.restart();
    const result = await r.transport.waitForEvent(isResult);
    await r.agent.settled();
    assert.equal(result.outcome, 'rolled-back');
    assert.equal(result.code, 'boot_failed');
    assert.equal(result.firmwareVersion, '1.0.0');
    assert.equal(hardware.bootState().trial, null, 'the fallback record was cleared');
    await r.agent.stop();
  });

  test('a power cut while the new version runs on trial counts as a boot attempt; it still commits when healthy', { timeout: 10_000 }, async () => {
    const r = await rig();
    await downloaded(r);
    const booted = nextBoot(r.hardware);
    r.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    await booted;
    r.hardware.powerCut();
    r.hardware.powerOn();
    assert.deepEqual(r.hardware.bootState().trial, { slot: 'b', attemptsLeft: 1 });
    await r.restart();
    const result = await r.transport.waitForEvent(isResult);
    await r.agent.settled();
    assert.equal(result.outcome, 'installed');
    await r.agent.stop();
  });
});
