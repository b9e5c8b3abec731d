/**
 * Plain-text rendering of a household's setup: homes, enrollment codes, devices waiting, devices
 * and their credentials, repositories, hawkBit registration, bridges. Times are shown in the
 * home's own time zone, named, because that is the clock the household lives by.
 */
import type {
  BridgeView, DdiSettingsView, DeviceView, EnrollmentCreated, EnrollmentView, HomeDeletion, HomeView, IssuedCredential, PendingDeviceView,
  RepositoryView,
} from './client.ts';
import { table } from './format.ts';

function partsIn(ms: number, timeZone: string): { day: string; time: string } {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(ms));
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  return { day: `${part('year')}-${part('month')}-${part('day')}`, time: `${part('hour')}:${part('minute')}` };
}

/**
 * "14:05 (Europe/Berlin)" today in that zone, else "2026-05-02 14:05 (Europe/Berlin)".
 *
 * @example
 * zonedTime(Date.UTC(2026, 4, 1, 12, 5), 'Europe/Berlin', Date.UTC(2026, 4, 1, 9)); // '14:05 (Europe/Berlin)'
 */
export function zonedTime(ms: number, timeZone: string, nowMs: number): string {
  let zone = timeZone;
  let at: { day: string; time: string };
  let today: string;
  try {
    at = partsIn(ms, zone);
    today = partsIn(nowMs, zone).day;
  } catch {
    // A zone this machine's Intl does not know: UTC, named as such, rather than a wrong local time.
    zone = 'UTC';
    at = partsIn(ms, zone);
    today = partsIn(nowMs, zone).day;
  }
  return `${at.day === today ? at.time : `${at.day} ${at.time}`} (${zone})`;
}

/** This machine's IANA time zone: the default for a new home. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

export function formatHomes(homes: readonly HomeView[]): string {
  if (homes.length === 0) return 'No homes yet. Add one with "firmward home add <name>".';
  return table(['HOME', 'NAME', 'DEVICES', 'TIME ZONE', 'UPDATES START', 'WHERE IT STANDS'], homes.map((h) => [
    h.id, h.name, String(h.deviceCount), h.settings.timeZone,
    `${h.effectiveWindow.start}-${h.effectiveWindow.end}${h.effectiveWindow.learned ? ' (learned)' : ''}`, h.summary,
  ]));
}

/** A home just made or renamed: what it is called, its id for later commands, and its sentence. */
export function formatHomeDetail(home: HomeView): string {
  const w = home.effectiveWindow;
  return [
    `${home.name} (${home.id}): ${home.summary}`,
    `Updates start between ${w.start} and ${w.end} (${home.settings.timeZone}), policy ${home.settings.policy}.`,
  ].join('\n');
}

export function formatHomeDeletion(name: string, d: HomeDeletion): string {
  const devices = d.devicesRemoved.length === 0 ? 'it had no devices' : `${d.devicesRemoved.length} device${d.devicesRemoved.length === 1 ? '' : 's'} removed (${d.devicesRemoved.join(', ')}), whose access to the hub ended`;
  const cancelled = d.updatesCancelled === 0 ? '' : `; ${d.updatesCancelled} open update${d.updatesCancelled === 1 ? '' : 's'} cancelled`;
  return `Deleted ${name} (${d.homeId}): ${devices}${cancelled}.`;
}

/** The code is shown this once: everything the person needs to get the device in is here. */
export function formatEnrollmentCreated(e: EnrollmentCreated, timeZone: string, nowMs: number): string {
  return [
    `Enrollment code for ${e.homeName}: ${e.code}`,
    `It works once and expires ${zonedTime(e.expiresAt, timeZone, nowMs)}. It is shown only now; the hub keeps no copy.`,
    'On the device, run:',
    `  ${e.agentCommand}`,
    `(or enter hub ${e.hubUrl}, home ${e.homeId} and the code by hand). Then approve it with "firmward approve <device id>".`,
  ].join('\n');
}

export function formatEnrollments(list: readonly EnrollmentView[], zoneOf: (homeId: string) => string, nowMs: number): string {
  if (list.length === 0) return 'No enrollment codes. Make one with "firmward enroll <homeId>".';
  return table(['ID', 'HOME', 'STATE', 'EXPIRES', 'MADE BY'], list.map((e) => [
    e.id, e.homeId, e.state, zonedTime(e.expiresAt, zoneOf(e.homeId), nowMs), e.createdBy,
  ]));
}

export function formatPending(list: readonly PendingDeviceView[], all: boolean): string {
  if (list.length === 0) return all ? 'No device has asked to join.' : 'No device is waiting for approval.';
  const rows = list.map((p) => [p.deviceId, p.name, p.homeId ?? '-', p.protocol, p.state, p.summary]);
  const hint = list.some((p) => p.state === 'waiting') ? '\nApprove one with "firmward approve <device id>", or turn it away with "firmward reject <device id>".' : '';
  return table(['DEVICE', 'NAME', 'HOME', 'PROTOCOL', 'STATE', 'WHAT'], rows) + hint;
}

/** A device in one line: its name and id, its home, and the hub's sentence about it. */
export function formatDeviceLine(d: DeviceView): string {
  return `${d.name} (${d.id}) in ${d.homeId}${d.ignored ? ', left alone by Firmward' : ''}: ${d.update.summary}`;
}

/** mqtt://host:port for a broker address that names only the port (the hub's own host). */
function brokerUrl(broker: { url: string | null; port: number }, hubUrl: string): string {
  if (broker.url !== null) return broker.url;
  let host = '127.0.0.1';
  try {
    host = new URL(hubUrl).hostname;
  } catch {
    // keep loopback
  }
  return `mqtt://${host}:${broker.port}`;
}

/**
 * A credential, shown once with a warning, and how the device uses it.
 *
 * @example
 * formatCredential({ kind: 'hawkbit', deviceId: 'ddi-gw', controllerId: 'gw', targetToken: 't', tenant: 'DEFAULT' }, 'http://hub:8080');
 */
export function formatCredential(c: IssuedCredential, hubUrl: string): string {
  const warning = 'Write it down now: it is shown only this once and the hub keeps no copy (rotate it with "firmward device rotate-secret" if it is lost).';
  switch (c.kind) {
    case 'mqtt':
      return [
        `The device's credentials (Firmward agent): ${warning}`,
        `  user name: ${c.username}`,
        `  secret:    ${c.secret}`,
        `  broker:    ${brokerUrl(c.broker, hubUrl)}`,
        'Put the secret alone on one line of the agent\'s hub.passwordFile and the broker in hub.url (docs/agent.md).',
      ].join('\n');
    case 'hawkbit':
      return [
        `The device's hawkBit TargetToken: ${warning}`,
        `  TargetToken:   ${c.targetToken}`,
        `  controller id: ${c.controllerId}`,
        `  tenant:        ${c.tenant}`,
        'SWUpdate (suricatta) sends it with -k, e.g.:',
        `  swupdate … -u '-t ${c.tenant} -u ${hubUrl} -i ${c.controllerId} -k ${c.targetToken}'`,
        '(use the address the device reaches the hub at, if it is not this one).',
      ].join('\n');
  }
}

export function formatRepository(r: RepositoryView): string {
  const state = r.trusted ? `trusted, ${r.releases} release${r.releases === 1 ? '' : 's'}` : `refused (${r.code ?? 'unknown'}): ${r.message ?? 'no reason given'}`;
  return `${r.name} (${r.url}): ${state}.`;
}

export function formatRepositories(list: readonly RepositoryView[]): string {
  if (list.length === 0) return 'No makers\' repositories: nothing can be offered. Add one with "firmward repo add <name> <url> --root <root.json>".';
  return table(['NAME', 'ORIGIN', 'TRUSTED', 'RELEASES', 'URL', 'WHY NOT'], list.map((r) => [
    r.name, r.origin, r.trusted ? 'yes' : 'no', String(r.releases), r.url, r.trusted ? '' : `${r.code ?? 'unknown'}: ${r.message ?? ''}`,
  ]));
}

export function formatDdi(s: DdiSettingsView): string {
  if (!s.enabled) return 'The hawkBit device API is off (ddi.enabled in the hub\'s config file): no hawkBit device can reach the hub.';
  const who = !s.autoRegister ? 'off: only devices added with "firmward device add --protocol hawkbit" get in.'
    : `on, ${s.allowedControllerIds === null ? 'for any controller id' : `only for ${s.allowedControllerIds.length === 0 ? 'no controller id' : s.allowedControllerIds.join(', ')}`}; each such device waits for your approval.`;
  return [
    `The hawkBit device API is on, tenant ${s.tenant}.`,
    `Self-registration with the GatewayToken is ${who}`,
    `The GatewayToken is ${s.gatewayTokenSet ? 'set' : 'not set (ddi.gatewayToken or FIRMWARD_DDI_GATEWAY_TOKEN)'}.`,
    s.homeId === '' ? 'A device that registers itself is proposed for no home: you pick one when approving.' : `A device that registers itself is proposed for home ${s.homeId}.`,
    s.changedHere ? 'These settings were changed here and win over the config file.' : 'These settings come from the config file.',
  ].join('\n');
}

function bridgeState(b: BridgeView, nowMs: number): string {
  const s = b.status;
  const next = s.nextAttemptAt === null ? '' : `, tries again ${zonedTime(s.nextAttemptAt, localTimeZone(), nowMs)}`;
  const why = s.message === null ? '' : `: ${s.message}`;
  // Turned off and stopped says it all; otherwise how it is doing (a bridge being stopped, or one that is on).
  if (!b.enabled && s.state === 'off') return `off${why}`;
  return `${b.enabled ? 'on' : 'off'}, ${s.state}${next}${why}`;
}

export function formatBridges(list: readonly BridgeView[], nowMs: number): string {
  if (list.length === 0) return 'This hub has no bridges.';
  return table(['BRIDGE', 'BROKER', 'USER', 'HOME', 'STATUS'], list.map((b) => [
    b.name, b.url === '' ? '-' : b.url, b.username === '' ? '-' : `${b.username}${b.passwordSet ? '' : ' (no password)'}`, b.homeId === '' ? '-' : b.homeId, bridgeState(b, nowMs),
  ]));
}

export function formatBridge(b: BridgeView, nowMs: number): string {
  const home = b.homeId === '' ? '' : `; its devices join ${b.homeId}`;
  return `${b.name}: ${bridgeState(b, nowMs)}${home}.`;
}
