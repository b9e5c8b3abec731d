/**
 * What devices say, taken in: a state report (telemetry, a new version, what it is working on),
 * availability, and acknowledgements, progress and results of a job. What a message means for its
 * job is decided in the core (device-report.ts); here it is checked against what the hub knows
 * (the registered identity, the job's device), recorded, and carried out through the job runner.
 */
import { deviceReport, deviceStateReport, isActive, isFirmwardError } from '@firmward/core';
import type { DeviceReport, EpochMs } from '@firmward/core';
import type { Clock, DeviceGateway, GatewayHandler, Logger, Notifier, Store } from '@firmward/ports';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';
import { deviceCodeKind, PROTOCOL_VERSION } from '@firmward/protocol';
import type { KeyedMutex } from '../home-lock.ts';
import { stripRow } from './device-row.ts';
import type { JobRunner } from './job-runner.ts';
import type { UsageTracker } from './usage-tracker.ts';

export interface DeviceInboxDeps {
  store: Store;
  gateway: DeviceGateway;
  clock: Clock;
  log: Logger;
  notifier: Notifier;
  homes: KeyedMutex;
  runner: JobRunner;
  usage: UsageTracker;
  /** What a home's checks see changed (battery, signal, busy, online): it is looked at again. */
  conditionsChanged: (homeId: string) => void;
  unreachableRetrySeconds: number;
  /** A message refused: said once, here, with why. */
  rejected: (info: { deviceId: string | null; topic: string; error: string; at: EpochMs }) => void;
}

export class DeviceInbox implements GatewayHandler {
  readonly #d: DeviceInboxDeps;

  constructor(deps: DeviceInboxDeps) {
    this.#d = deps;
  }

  async onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void> {
    const { store } = this.#d;
    const device = await store.getDevice(deviceId);
    if (!device) return this.onRejected({ deviceId, topic: 'state', error: 'unknown device', at });
    if (state.vendor !== device.vendor || state.model !== device.model || state.hardwareRevision !== device.hardwareRevision) {
      // Identity is provisioned, never taken from the device's word (invariant 2).
      return this.onRejected({ deviceId, topic: 'state', error: `identity ${state.vendor}/${state.model}/${state.hardwareRevision} does not match the registered device`, at });
    }
    await this.#d.homes.run(device.homeId, async () => {
      const report: DeviceReport = {
        at, firmwareVersion: state.firmwareVersion, activeSlot: state.activeSlot, powerSource: state.powerSource,
        batteryPercent: state.batteryPercent, charging: state.charging, signalDbm: state.signalDbm, busy: state.busy,
        freeStorageBytes: state.freeStorageBytes, healthy: state.healthy,
      };
      const usage = this.#d.usage.track(deviceId, state.busy, at);
      const telemetry = {
        report, online: true,
        ...(state.signalDbm !== null && { signalSample: { at, dbm: state.signalDbm } }),
        ...(usage && { usage }),
      };
      if (state.firmwareVersion === device.firmwareVersion) {
        await store.recordTelemetry(deviceId, telemetry);
      } else {
        // A new version: the report and the device row commit together (one commit, and never one without the other).
        await store.transaction(async (tx) => {
          await tx.recordTelemetry(deviceId, telemetry);
          await tx.putDevice({ ...stripRow(device), firmwareVersion: state.firmwareVersion });
        });
        this.#d.notifier.committed({ kind: 'device', deviceId, homeId: device.homeId });
      }
      const job = (await store.listJobs({ deviceId, open: true }))[0];
      // What the checks see may have changed (battery, signal, busy): a home with an update is looked at again.
      if (job) this.#d.conditionsChanged(device.homeId);
      // The home is read only when there is an update to move (most reports are plain telemetry).
      const home = job && isActive(job.state) ? await store.getHome(device.homeId) : null;
      const meant = deviceStateReport(job, state, { homeFound: home !== null });
      switch (meant.kind) {
        case 'event':
          // Only ever for an active job whose home was found.
          if (job && home) await this.#d.runner.apply(home, job, meant.event, 'device');
          break;
        case 'resend-install':
          if (job) await this.#d.runner.resendInstall(job);
          break;
        case 'cancel-on-device':
          await this.#d.gateway.send(deviceId, { v: PROTOCOL_VERSION, type: 'cancel', jobId: meant.jobId, message: meant.message }).catch(() => undefined);
          break;
        case 'none':
          break;
      }
    });
  }

  async onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void> {
    const device = await this.#d.store.getDevice(deviceId);
    if (!device) return this.onRejected({ deviceId, topic: 'availability', error: 'unknown device', at });
    if (device.online === online) return;
    await this.#d.store.recordTelemetry(deviceId, { online, ...(!online && { dropoutAt: at }) });
    this.#d.conditionsChanged(device.homeId);
    await this.#d.runner.record({
      at, homeId: device.homeId, deviceId, jobId: null, kind: 'device', from: null, to: null,
      code: online ? 'online' : 'offline', message: online ? `${device.name} is online.` : `${device.name} went offline.`, actor: 'device',
    });
  }

  async onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
    const { store } = this.#d;
    const device = await store.getDevice(deviceId);
    if (!device) return this.onRejected({ deviceId, topic: 'evt', error: 'unknown device', at });
    await this.#d.homes.run(device.homeId, async () => {
      const job = await store.getJob(event.jobId);
      if (!job || job.deviceId !== deviceId) return this.onRejected({ deviceId, topic: 'evt', error: `unknown job ${event.jobId}`, at });
      const home = await store.getHome(job.homeId);
      if (!home) return;
      const interpreted = deviceReport(job, event, { now: this.#d.clock.now(), unreachableRetrySeconds: this.#d.unreachableRetrySeconds, codeKind: deviceCodeKind });
      // A stale or replayed message changes nothing, and says so: nothing is dropped silently.
      if ('ignored' in interpreted) return this.onRejected({ deviceId, topic: 'evt', error: interpreted.ignored, at });
      try {
        await this.#d.runner.apply(home, job, interpreted.event, 'device');
      } catch (error) {
        // A replayed or out-of-order message: refused, nothing changed.
        if (isFirmwardError(error, 'illegal_transition')) return this.onRejected({ deviceId, topic: 'evt', error: error.message, at });
        throw error;
      }
    });
  }

  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void {
    this.#d.rejected(info);
  }
}
