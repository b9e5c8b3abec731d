/**
 * Homes come and go: created with the home defaults (or what the person chose), renamed, deleted.
 * A home is deleted only when none of its devices is installing (invariant 6); its open updates
 * end as cancelled with the reason first, its devices lose their credentials at once.
 */
import { changeRefusal, checkName, homeIdFor, isFirmwardError, newHomeSettings } from '@firmward/core';
import type { Home, HomeSettings } from '@firmward/core';
import { checkHomeSettings, definedOnly } from '../home-settings.ts';
import type { HomeView } from '../service.ts';
import { commit, endOpenUpdate, homeOf, personEvent, who } from './context.ts';
import type { SetupDeps } from './context.ts';
import type { HomeDeletion, NewHomeInput } from './types.ts';

export async function createHome(d: SetupDeps, input: NewHomeInput, actor: string): Promise<HomeView> {
  const name = checkName('home', input.name);
  const base = newHomeSettings({ timeZone: input.timeZone ?? d.defaultTimeZone, silenceTimeoutSeconds: d.silenceTimeoutSeconds });
  const settings: HomeSettings = {
    ...base,
    ...(input.window !== undefined && { window: input.window }),
    ...(input.learnQuietHours !== undefined && { learnQuietHours: input.learnQuietHours }),
    ...(input.policy !== undefined && { policy: input.policy }),
    ...(input.soakSeconds !== undefined && { soakSeconds: input.soakSeconds }),
    thresholds: { ...base.thresholds, ...definedOnly(input.thresholds ?? {}) },
  };
  checkHomeSettings(settings);
  // Two people creating "Flat" at once each get their own id: the insert is retried on a clash.
  for (let attempt = 0; ; attempt++) {
    const taken = new Set((await d.store.listHomes()).map((h) => h.id));
    const home: Home = { id: homeIdFor(name, taken), name, settings, halt: null };
    const event = personEvent({ at: d.clock.now(), homeId: home.id, code: 'home_created', message: `${who(actor)} created the home ${name}.`, actor });
    try {
      // An insert, not an upsert: two people making "Flat" at once on two hubs get two homes.
      await commit(d, [event], (tx) => tx.insertHome(home));
    } catch (error) {
      if (isFirmwardError(error, 'conflict') && attempt < 5) continue;
      throw error;
    }
    d.engine.notifier.committed({ kind: 'home', homeId: home.id });
    d.log.info('home created', { homeId: home.id, actor });
    return d.views.home(home.id);
  }
}

export async function renameHome(d: SetupDeps, homeId: string, newName: string, actor: string): Promise<HomeView> {
  const name = checkName('home', newName);
  await d.engine.withHome(homeId, async () => {
    const home = await homeOf(d.store, homeId);
    if (home.name === name) return;
    const event = personEvent({ at: d.clock.now(), homeId, code: 'home_renamed', message: `${who(actor)} renamed the home from ${home.name} to ${name}.`, actor });
    await commit(d, [event], async (tx) => {
      // putHome writes the whole row: read again inside the transaction so a halt set meanwhile is kept.
      await tx.putHome({ ...((await tx.getHome(homeId)) ?? home), name });
    });
  });
  return d.views.home(homeId);
}

export async function deleteHome(d: SetupDeps, homeId: string, actor: string): Promise<HomeDeletion> {
  return d.engine.withHome(homeId, async () => {
    const home = await homeOf(d.store, homeId);
    const devices = await d.store.listDevices({ homeId });
    // Every device is checked before anything is cancelled: a refusal changes nothing.
    for (const device of devices) {
      const [open] = await d.store.listJobs({ deviceId: device.id, open: true, limit: 1 });
      const refusal = changeRefusal('delete-home', device.name, open ?? null);
      if (refusal) throw refusal;
    }
    let cancelled = 0;
    for (const device of devices) if (await endOpenUpdate(d, home, device, 'delete-home', actor)) cancelled++;
    const removed = devices.map((dev) => dev.id);
    // The history outlives the home: who deleted it, and which devices went with it.
    const event = personEvent({
      at: d.clock.now(), homeId, code: 'home_deleted', actor,
      message: `${who(actor)} deleted the home ${home.name}${removed.length ? ` with ${removed.length} device${removed.length === 1 ? '' : 's'} (${devices.map((dev) => dev.name).join(', ')}), whose access to the hub ends now` : ''}.`,
    });
    await commit(d, [event], (tx) => tx.deleteHome(homeId));
    for (const deviceId of removed) {
      d.gateway.forget(deviceId);
      await d.access.credentialsChanged(deviceId).catch((error: unknown) => d.log.warn('the broker did not take the revocation yet', { deviceId, error: String(error) }));
    }
    d.engine.notifier.committed({ kind: 'home', homeId });
    d.log.info('home deleted', { homeId, devices: removed.length, cancelled, actor });
    return { homeId, devicesRemoved: removed, updatesCancelled: cancelled };
  });
}
