/**
 * A device's life on the hub after it joined: registered directly (a hawkBit client with its own
 * TargetToken, an agent provisioned in the factory), renamed, moved to another home, set aside,
 * removed, its credential rotated or revoked. Anything that takes a device away from its update
 * is refused from the install step on and cancels a not yet started one (invariant 6), and every
 * credential change is in force on the broker at once.
 */
import { FirmwardError, checkName, isFirmwardError } from '@firmward/core';
import type { DeviceChange } from '@firmward/core';
import type { DeviceRow } from '@firmward/ports';
import { generateDeviceSecret, hashDeviceSecret } from '@firmward/mqtt';
import { DDI_REVOKED } from '@firmward/hawkbit';
import { stripRow } from '../engine.ts';
import type { DeviceView } from '../service.ts';
import { aOrAn, agentIdRefusal, commit, deviceOf, endOpenUpdate, homeOf, personEvent, record, who } from './context.ts';
import type { SetupDeps } from './context.ts';
import type { DevicePatch, IssuedCredential, RegisterDeviceInput, RegisteredDevice } from './types.ts';

/** Devices of an ecosystem bridge take their names from the ecosystem (Zigbee2MQTT's friendly name …). */
const NAMED_BY_ECOSYSTEM = new Set(['zigbee2mqtt', 'tasmota', 'shelly']);

export class DeviceDirectory {
  readonly #d: SetupDeps;

  constructor(d: SetupDeps) {
    this.#d = d;
  }

  async register(homeId: string, input: RegisterDeviceInput, actor: string, hubUrl: string): Promise<RegisteredDevice> {
    const name = checkName('device', input.name);
    const ddi = input.protocol === 'hawkbit' ? this.#requireDdi() : null;
    const deviceId = ddi ? ddi.deviceIdOf(input.id) : input.id;
    const taken = ddi ? null : agentIdRefusal(this.#d, deviceId);
    if (taken) throw taken;
    let credential: IssuedCredential | null = null;
    await this.#d.engine.withHome(homeId, async () => {
      const home = await homeOf(this.#d.store, homeId);
      if (await this.#d.store.getDevice(deviceId)) throw new FirmwardError('conflict', `A device "${deviceId}" is on the hub already.`);
      if ((await this.#d.store.listPendingDevices({ deviceId, states: ['waiting'] })).length > 0) {
        throw new FirmwardError('conflict', `A device "${deviceId}" is waiting for approval; approve or reject it instead.`);
      }
      const event = personEvent({
        at: this.#d.clock.now(), homeId, deviceId, code: 'device_registered', actor,
        message: `${who(actor)} added ${name} to ${home.name} as ${aOrAn(`${input.vendor} ${input.model}`)} (hardware revision ${input.hardwareRevision}), reached through ${ddi ? 'hawkBit' : 'the Firmward agent'}.`,
      });
      const secret = ddi ? null : generateDeviceSecret();
      await commit(this.#d, [event], async (tx) => {
        await tx.putDevice({
          id: deviceId, homeId, name, vendor: input.vendor, model: input.model, hardwareRevision: input.hardwareRevision,
          firmwareVersion: input.firmwareVersion, policy: null, thresholds: {}, schedules: [],
        });
        if (secret !== null) await tx.setDeviceSecret(deviceId, await hashDeviceSecret(secret));
      });
      // The TargetToken goes to the store through the gateway, which keeps only its digest.
      credential = ddi
        ? { kind: 'hawkbit', deviceId, controllerId: input.id, targetToken: await ddi.issueTargetToken(input.id), tenant: ddi.tenant, hubUrl }
        : { kind: 'mqtt', deviceId, username: deviceId, secret: secret!, broker: this.#d.broker, hubUrl };
    });
    await this.#brokerAgrees(deviceId);
    this.#d.engine.notifier.committed({ kind: 'device', deviceId, homeId });
    return { device: await this.#d.views.device(deviceId), credential: credential! };
  }

  async change(deviceId: string, patch: DevicePatch, actor: string): Promise<DeviceView> {
    const device = await deviceOf(this.#d.store, deviceId);
    if (patch.name !== undefined) await this.#rename(device, patch.name, actor);
    if (patch.ignored !== undefined) await this.#setIgnored(deviceId, patch.ignored, actor);
    if (patch.homeId !== undefined) await this.#move(deviceId, patch.homeId, actor);
    return this.#d.views.device(deviceId);
  }

  async remove(deviceId: string, actor: string): Promise<{ deviceId: string }> {
    const device = await deviceOf(this.#d.store, deviceId);
    await this.#d.engine.withHome(device.homeId, async () => {
      const fresh = await deviceOf(this.#d.store, deviceId);
      const home = await homeOf(this.#d.store, fresh.homeId);
      await endOpenUpdate(this.#d, home, fresh, 'remove', actor);
      const protocol = this.#d.gateway.protocolOf(deviceId);
      const again = NAMED_BY_ECOSYSTEM.has(protocol) ? ` ${protocol} still knows it, so it comes back when ${protocol} announces it; set it aside instead to keep Firmward away from it.` : '';
      const event = personEvent({ at: this.#d.clock.now(), homeId: home.id, deviceId, code: 'device_removed', actor, message: `${who(actor)} removed ${fresh.name}; its access to the hub ends now.${again}` });
      await commit(this.#d, [event], (tx) => tx.deleteDevice(deviceId));
    });
    this.#d.gateway.forget(deviceId);
    await this.#brokerAgrees(deviceId);
    this.#d.engine.notifier.committed({ kind: 'device', deviceId, homeId: device.homeId });
    return { deviceId };
  }

  async rotate(deviceId: string, actor: string, hubUrl: string): Promise<IssuedCredential> {
    const device = await deviceOf(this.#d.store, deviceId);
    const protocol = this.#d.gateway.protocolOf(deviceId);
    let credential: IssuedCredential;
    if (protocol === 'ddi') {
      const ddi = this.#requireDdi();
      const controllerId = ddi.controllerIdOf(deviceId);
      credential = { kind: 'hawkbit', deviceId, controllerId, targetToken: await ddi.issueTargetToken(controllerId), tenant: ddi.tenant, hubUrl };
    } else if (protocol === 'agent') {
      const secret = generateDeviceSecret();
      await this.#d.store.setDeviceSecret(deviceId, await hashDeviceSecret(secret));
      credential = { kind: 'mqtt', deviceId, username: deviceId, secret, broker: this.#d.broker, hubUrl };
    } else {
      throw new FirmwardError('invalid_input', `${device.name} is reached through ${protocol}; its credentials are ${protocol}'s, not the hub's.`);
    }
    await record(this.#d, personEvent({ at: this.#d.clock.now(), homeId: device.homeId, deviceId, code: 'credential_rotated', actor, message: `${who(actor)} gave ${device.name} a new secret; the old one stopped working.` }));
    // The old secret stops now: a live session made with it is closed and must log in again.
    await this.#brokerAgrees(deviceId);
    if (protocol === 'agent') await this.#d.markOffline(deviceId);
    return credential;
  }

  async revoke(deviceId: string, actor: string): Promise<DeviceView> {
    const device = await deviceOf(this.#d.store, deviceId);
    const protocol = this.#d.gateway.protocolOf(deviceId);
    if (protocol !== 'agent' && protocol !== 'ddi') {
      throw new FirmwardError('invalid_input', `${device.name} is reached through ${protocol}; its credentials are ${protocol}'s, not the hub's.`);
    }
    await this.#d.engine.withHome(device.homeId, async () => {
      const fresh = await deviceOf(this.#d.store, deviceId);
      await endOpenUpdate(this.#d, await homeOf(this.#d.store, fresh.homeId), fresh, 'revoke', actor);
      // A hawkBit device keeps a marker that refuses the tenant's GatewayToken too (it would otherwise just register again).
      if (protocol === 'ddi') await this.#d.store.setDeviceSecret(deviceId, DDI_REVOKED);
      else await this.#d.store.deleteDeviceSecret(deviceId);
      await record(this.#d, personEvent({ at: this.#d.clock.now(), homeId: fresh.homeId, deviceId, code: 'credential_revoked', actor, message: `${who(actor)} revoked ${fresh.name}'s access to the hub; it stays listed. Rotate its secret to let it back in.` }));
    });
    this.#d.gateway.forget(deviceId);
    await this.#brokerAgrees(deviceId);
    await this.#d.markOffline(deviceId);
    return this.#d.views.device(deviceId);
  }

  async #rename(device: DeviceRow, newName: string, actor: string): Promise<void> {
    const name = checkName('device', newName);
    const protocol = this.#d.gateway.protocolOf(device.id);
    if (NAMED_BY_ECOSYSTEM.has(protocol)) {
      throw new FirmwardError('invalid_input', `${device.name} takes its name from ${protocol}; rename it there and Firmward shows the new name.`);
    }
    await this.#d.engine.withHome(device.homeId, async () => {
      const fresh = await deviceOf(this.#d.store, device.id);
      if (fresh.name === name) return;
      const event = personEvent({ at: this.#d.clock.now(), homeId: fresh.homeId, deviceId: device.id, code: 'device_renamed', actor, message: `${who(actor)} renamed ${fresh.name} to ${name}.` });
      await commit(this.#d, [event], (tx) => tx.putDevice({ ...stripRow(fresh), name }));
    });
  }

  async #setIgnored(deviceId: string, ignored: boolean, actor: string): Promise<void> {
    const device = await deviceOf(this.#d.store, deviceId);
    await this.#d.engine.withHome(device.homeId, async () => {
      const fresh = await deviceOf(this.#d.store, deviceId);
      if (fresh.ignored === ignored) return;
      if (ignored) await endOpenUpdate(this.#d, await homeOf(this.#d.store, fresh.homeId), fresh, 'ignore', actor);
      await this.#d.store.setDeviceIgnored(deviceId, ignored);
      await record(this.#d, personEvent({
        at: this.#d.clock.now(), homeId: fresh.homeId, deviceId, code: ignored ? 'device_ignored' : 'device_managed', actor,
        message: ignored ? `${who(actor)} asked Firmward to leave ${fresh.name} alone: it stays listed and is never updated from here.` : `${who(actor)} asked Firmward to look after ${fresh.name} again.`,
      }));
    });
    this.#d.engine.notifier.committed({ kind: 'device', deviceId, homeId: device.homeId });
  }

  async #move(deviceId: string, toHomeId: string, actor: string): Promise<void> {
    const device = await deviceOf(this.#d.store, deviceId);
    if (device.homeId === toHomeId) return;
    const target = await homeOf(this.#d.store, toHomeId);
    // Both homes' locks, always in the same order, so two moves the other way round cannot deadlock.
    const [first, second] = [device.homeId, toHomeId].sort();
    await this.#d.engine.withHome(first!, () => this.#d.engine.withHome(second!, async () => {
      const fresh = await deviceOf(this.#d.store, deviceId);
      const from = await homeOf(this.#d.store, fresh.homeId);
      await endOpenUpdate(this.#d, from, fresh, 'move' satisfies DeviceChange, actor);
      const message = `${who(actor)} moved ${fresh.name} from ${from.name} to ${target.name}; it follows ${target.name}'s quiet hours and takes its turn there.`;
      const events = [from.id, target.id].map((homeId) => personEvent({ at: this.#d.clock.now(), homeId, deviceId, code: 'device_moved', actor, message }));
      await commit(this.#d, events, (tx) => tx.putDevice({ ...stripRow(fresh), homeId: toHomeId }));
    }));
    this.#d.engine.notifier.committed({ kind: 'device', deviceId, homeId: toHomeId });
    this.#d.engine.notifier.committed({ kind: 'home', homeId: device.homeId });
  }

  #requireDdi() {
    if (!this.#d.ddi) throw new FirmwardError('invalid_input', 'hawkBit devices need the hub\'s hawkBit device API turned on (ddi.enabled in the config file).');
    return this.#d.ddi;
  }

  async #brokerAgrees(deviceId: string): Promise<void> {
    try {
      await this.#d.access.credentialsChanged(deviceId);
    } catch (error) {
      // The store is right already; the broker is told again at the next change or start.
      this.#d.log.error('the broker did not take a credential change', { deviceId, error: isFirmwardError(error) ? error.message : String(error) });
      throw error;
    }
  }
}
