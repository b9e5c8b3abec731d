/**
 * `firmward home …`, `enroll`, `pending`, `approve`, `device …`, `repo …`, `ddi`, `bridges`:
 * setting a household up from the command line, through the hub's setup API only. Nothing is
 * decided here; an irreversible step (deleting a home, removing a device, revoking its access)
 * needs --yes, and without it the person is told what would go.
 */
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import type { Policy } from '@firmward/core';
import type { BridgeUpdate, DdiSettingsPatch, HubClient, NewHomeInput, RegisterDeviceInput } from './client.ts';
import { usageError } from './exit-codes.ts';
import {
  formatBridge, formatBridges, formatCredential, formatDdi, formatDeviceLine, formatEnrollmentCreated, formatEnrollments, formatHomeDeletion,
  formatHomeDetail, formatHomes, formatPending, formatRepositories, formatRepository, localTimeZone,
} from './setup-format.ts';

export interface SetupCommandsIo {
  client: () => HubClient;
  print: (text: string) => void;
  printJson: (value: unknown) => void;
  readFile: (path: string) => string;
  now: () => number;
}

const POLICIES = ['automatic', 'security-only', 'notify', 'manual'] as const satisfies readonly Policy[];
const TIME_OF_DAY = /^([01]\d|2[0-3]):[0-5]\d$/;
const MAX_ENROLLMENT_MINUTES = 7 * 24 * 60;

function timeZoneArg(value: string): string {
  try {
    new Intl.DateTimeFormat('en', { timeZone: value });
  } catch {
    throw new InvalidArgumentError('must be an IANA time zone such as Europe/Berlin.');
  }
  return value;
}

function soakMinutesArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 7 * 24 * 60) throw new InvalidArgumentError('must be a whole number of minutes from 0 to 10080 (a week).');
  return n;
}

function onOffArg(value: string): boolean {
  if (value === 'on' || value === 'off') return value === 'on';
  throw new InvalidArgumentError('must be on or off.');
}

function numberArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`must be a number from ${min} to ${max}.`);
    return n;
  };
}

function quietHoursArg(value: string): { start: string; end: string } {
  const [start, end, ...rest] = value.split('-');
  if (start === undefined || end === undefined || rest.length > 0 || !TIME_OF_DAY.test(start) || !TIME_OF_DAY.test(end)) {
    throw new InvalidArgumentError('must be two times of day (24 h) such as 01:00-05:00.');
  }
  return { start, end };
}

function minutesArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_ENROLLMENT_MINUTES) throw new InvalidArgumentError(`must be a whole number of minutes from 1 to ${MAX_ENROLLMENT_MINUTES} (a week).`);
  return n;
}

function idListArg(value: string): string[] {
  const ids = value.split(',').map((id) => id.trim()).filter((id) => id !== '');
  if (ids.length === 0) throw new InvalidArgumentError('must be controller ids separated by commas, e.g. attic-gw,garage-gw.');
  return ids;
}

interface JsonOpt { json?: boolean }

const jsonOption = (): Option => new Option('--json', 'print the raw JSON');

export function registerSetupCommands(program: Command, io: SetupCommandsIo): void {
  const { client, print, printJson } = io;
  /** A hub answer without a body (204): `{}` for --json, else the sentence. */
  const done = (json: boolean | undefined, sentence: string): void => (json === true ? printJson({}) : print(sentence));

  // --- homes ---
  const home = program.command('home').description('list, add, rename or delete homes');
  home.command('list')
    .description('every home, with its devices, time zone and where it stands')
    .addOption(jsonOption())
    .action(async (opts: JsonOpt) => {
      const homes = await client().listHomes();
      if (opts.json === true) printJson(homes);
      else print(formatHomes(homes));
    });
  home.command('add')
    .description('add a home; updates run in its quiet hours, in its time zone')
    .argument('<name>')
    .option('--time-zone <IANA>', 'its time zone (default: this machine\'s)', timeZoneArg)
    .option('--quiet-hours <from-to>', 'when updates may start, e.g. 01:00-05:00', quietHoursArg)
    .addOption(new Option('--policy <policy>', 'which updates install by themselves').choices(POLICIES))
    .option('--soak-minutes <minutes>', 'how long a new version must stay healthy before the next device starts (default 5)', soakMinutesArg)
    .addOption(jsonOption())
    .action(async (name: string, opts: { timeZone?: string; quietHours?: { start: string; end: string }; policy?: Policy; soakMinutes?: number } & JsonOpt) => {
      const input: NewHomeInput = {
        name, timeZone: opts.timeZone ?? localTimeZone(),
        ...(opts.quietHours !== undefined && { window: opts.quietHours }),
        ...(opts.policy !== undefined && { policy: opts.policy }),
        ...(opts.soakMinutes !== undefined && { soakSeconds: opts.soakMinutes * 60 }),
      };
      const created = await client().createHome(input);
      if (opts.json === true) printJson(created);
      else print(formatHomeDetail(created));
    });
  home.command('rename')
    .description('give a home another name (its id stays)')
    .argument('<homeId>')
    .argument('<name>')
    .addOption(jsonOption())
    .action(async (homeId: string, name: string, opts: JsonOpt) => {
      const renamed = await client().renameHome(homeId, name);
      if (opts.json === true) printJson(renamed);
      else print(formatHomeDetail(renamed));
    });
  home.command('set')
    .description('change a home\'s settings: quiet hours, time zone, policy, how long a new version must stay healthy, thresholds')
    .argument('<homeId>')
    .option('--time-zone <IANA>', 'its time zone', timeZoneArg)
    .option('--quiet-hours <from-to>', 'when updates may start, e.g. 01:00-05:00', quietHoursArg)
    .option('--learn-quiet-hours <on|off>', 'narrow the quiet hours to when the home is quietest, once there is enough history', onOffArg)
    .addOption(new Option('--policy <policy>', 'which updates install by themselves').choices(POLICIES))
    .option('--soak-minutes <minutes>', 'how long a new version must stay healthy before the next device starts', soakMinutesArg)
    .option('--min-battery <percent>', 'least battery charge to start an update on battery (unless charging)', numberArg(0, 100))
    .option('--min-signal <dBm>', 'weakest signal to start an update, e.g. -72', numberArg(-150, 0))
    .addOption(jsonOption())
    .action(async (homeId: string, opts: {
      timeZone?: string; quietHours?: { start: string; end: string }; learnQuietHours?: boolean; policy?: Policy; soakMinutes?: number;
      minBattery?: number; minSignal?: number;
    } & JsonOpt) => {
      const thresholds = {
        ...(opts.minBattery !== undefined && { minBatteryPercent: opts.minBattery }),
        ...(opts.minSignal !== undefined && { minSignalDbm: opts.minSignal }),
      };
      const patch = {
        ...(opts.timeZone !== undefined && { timeZone: opts.timeZone }),
        ...(opts.quietHours !== undefined && { window: opts.quietHours }),
        ...(opts.learnQuietHours !== undefined && { learnQuietHours: opts.learnQuietHours }),
        ...(opts.policy !== undefined && { policy: opts.policy }),
        ...(opts.soakMinutes !== undefined && { soakSeconds: opts.soakMinutes * 60 }),
        ...(Object.keys(thresholds).length > 0 && { thresholds }),
      };
      if (Object.keys(patch).length === 0) throw usageError('Say what to change, e.g. --quiet-hours 01:00-05:00 or --soak-minutes 10.');
      const changed = await client().updateHomeSettings(homeId, patch);
      if (opts.json === true) printJson(changed);
      else print(formatHomeDetail(changed));
    });
  home.command('delete')
    .description('delete a home with its devices (refused while one installs)')
    .argument('<homeId>')
    .option('--yes', 'confirm: its devices are removed and lose their access to the hub')
    .addOption(jsonOption())
    .action(async (homeId: string, opts: { yes?: boolean } & JsonOpt) => {
      const hub = client();
      const target = await hub.getHome(homeId);
      if (opts.yes !== true) {
        const devices = target.deviceCount === 0 ? [] : await hub.listDevices({ homeId });
        const what = target.deviceCount === 0
          ? 'it has no devices'
          : `with it go its ${target.deviceCount} device${target.deviceCount === 1 ? '' : 's'} (${devices.map((d) => d.name).join(', ')}), whose access to the hub ends, and their open updates are cancelled`;
        throw usageError(`Deleting ${target.name} (${target.id}) cannot be undone: ${what}. Run it again with --yes if you are sure.`);
      }
      const deleted = await hub.deleteHome(homeId);
      if (opts.json === true) printJson(deleted);
      else print(formatHomeDeletion(target.name, deleted));
    });

  // --- enrollment codes ---
  program.command('enroll')
    .description('make a one-time code a device joins this home with (shown once)')
    .argument('<homeId>')
    .option('--expires <minutes>', 'how long the code works (default 60)', minutesArg)
    .addOption(jsonOption())
    .action(async (homeId: string, opts: { expires?: number } & JsonOpt) => {
      const hub = client();
      const created = await hub.createEnrollment(homeId, opts.expires === undefined ? {} : { expiresInMinutes: opts.expires });
      if (opts.json === true) {
        printJson(created);
        return;
      }
      // The code exists now and is never shown again: a failed look-up of the zone must not hide it.
      let timeZone = localTimeZone();
      try {
        timeZone = (await hub.getHome(created.homeId)).settings.timeZone;
      } catch {
        // this machine's zone, named, is still right
      }
      print(formatEnrollmentCreated(created, timeZone, io.now()));
    });
  program.command('enrollments')
    .description('the enrollment codes made, and whether each is open, used or expired')
    .option('--home <id>', 'only this home\'s')
    .addOption(jsonOption())
    .action(async (opts: { home?: string } & JsonOpt) => {
      const hub = client();
      const list = await hub.listEnrollments(opts.home === undefined ? {} : { homeId: opts.home });
      if (opts.json === true) {
        printJson(list);
        return;
      }
      const zones = new Map((await hub.listHomes()).map((h) => [h.id, h.settings.timeZone]));
      print(formatEnrollments(list, (id) => zones.get(id) ?? localTimeZone(), io.now()));
    });
  const enrollment = program.command('enrollment').description('withdraw an enrollment code');
  enrollment.command('revoke')
    .description('withdraw a code that has not been used: it stops working at once')
    .argument('<id>', 'as "firmward enrollments" lists it')
    .addOption(jsonOption())
    .action(async (id: string, opts: JsonOpt) => {
      await client().revokeEnrollment(id);
      done(opts.json, `Enrollment code ${id} withdrawn; it no longer works.`);
    });

  // --- devices waiting for approval ---
  program.command('pending')
    .description('devices that asked to join and wait for your approval')
    .option('--home <id>', 'only those asking for this home')
    .option('--all', 'also those approved or rejected lately')
    .addOption(jsonOption())
    .action(async (opts: { home?: string; all?: boolean } & JsonOpt) => {
      const list = await client().listPendingDevices({
        ...(opts.home !== undefined && { homeId: opts.home }), ...(opts.all === true && { all: true }),
      });
      if (opts.json === true) printJson(list);
      else print(formatPending(list, opts.all === true));
    });
  program.command('approve')
    .description('let a waiting device join (by its request id or its device id)')
    .argument('<pendingId|deviceId>')
    .option('--name <name>', 'what the household calls it')
    .option('--home <homeId>', 'the home it joins (needed when it asked for none)')
    .addOption(jsonOption())
    .action(async (id: string, opts: { name?: string; home?: string } & JsonOpt) => {
      const device = await client().approve(id, { ...(opts.name !== undefined && { name: opts.name }), ...(opts.home !== undefined && { homeId: opts.home }) });
      if (opts.json === true) printJson(device);
      else print(`Approved: ${formatDeviceLine(device)}`);
    });
  program.command('reject')
    .description('turn a waiting device away (by its request id or its device id)')
    .argument('<pendingId|deviceId>')
    .addOption(jsonOption())
    .action(async (id: string, opts: JsonOpt) => {
      const rejected = await client().reject(id);
      if (opts.json === true) printJson(rejected);
      else print(`${rejected.name} (${rejected.deviceId}): ${rejected.summary}`);
    });

  // --- devices and their credentials ---
  const device = program.command('device').description('add, rename, move, set aside or remove a device; its credentials');
  device.command('add')
    .description('register a device directly (no code): a hawkBit client or a factory-provisioned agent; prints its credential once')
    .argument('<homeId>')
    .addOption(new Option('--protocol <protocol>', 'how the hub reaches it').choices(['hawkbit', 'agent'] as const).makeOptionMandatory())
    .requiredOption('--id <controllerId|deviceId>', 'the hawkBit controller id, or the agent\'s device id')
    .requiredOption('--name <name>', 'what the household calls it')
    .requiredOption('--vendor <vendor>', 'its maker, as in the maker\'s releases')
    .requiredOption('--model <model>')
    .requiredOption('--hardware-revision <revision>')
    .requiredOption('--firmware-version <version>', 'what it runs now')
    .addOption(jsonOption())
    .action(async (homeId: string, opts: Omit<RegisterDeviceInput, 'id'> & { id: string } & JsonOpt) => {
      const hub = client();
      const registered = await hub.registerDevice(homeId, {
        protocol: opts.protocol, id: opts.id, name: opts.name, vendor: opts.vendor, model: opts.model,
        hardwareRevision: opts.hardwareRevision, firmwareVersion: opts.firmwareVersion,
      });
      if (opts.json === true) printJson(registered);
      else print(`Added ${formatDeviceLine(registered.device)}\n${formatCredential(registered.credential, hub.baseUrl)}`);
    });
  device.command('rename')
    .description('give a device another name')
    .argument('<deviceId>')
    .argument('<name>')
    .addOption(jsonOption())
    .action(async (deviceId: string, name: string, opts: JsonOpt) => {
      const changed = await client().changeDevice(deviceId, { name });
      if (opts.json === true) printJson(changed);
      else print(formatDeviceLine(changed));
    });
  device.command('move')
    .description('move a device to another home (not while it installs)')
    .argument('<deviceId>')
    .argument('<homeId>')
    .addOption(jsonOption())
    .action(async (deviceId: string, homeId: string, opts: JsonOpt) => {
      const changed = await client().changeDevice(deviceId, { homeId });
      if (opts.json === true) printJson(changed);
      else print(formatDeviceLine(changed));
    });
  for (const [name, ignored, description] of [
    ['ignore', true, 'leave a device alone: it stays listed and is never updated from here'],
    ['manage', false, 'let Firmward look after a device it was told to leave alone'],
  ] as const) {
    device.command(name)
      .description(description)
      .argument('<deviceId>')
      .addOption(jsonOption())
      .action(async (deviceId: string, opts: JsonOpt) => {
        const changed = await client().changeDevice(deviceId, { ignored });
        if (opts.json === true) printJson(changed);
        else print(formatDeviceLine(changed));
      });
  }
  device.command('remove')
    .description('remove a device: its access to the hub ends at once (refused while it installs)')
    .argument('<deviceId>')
    .option('--yes', 'confirm the removal')
    .addOption(jsonOption())
    .action(async (deviceId: string, opts: { yes?: boolean } & JsonOpt) => {
      const hub = client();
      const target = await hub.getDevice(deviceId);
      if (opts.yes !== true) {
        throw usageError(`Removing ${target.name} (${target.id}) from ${target.homeId} ends its access to the hub at once, and an update not yet installing is cancelled. Run it again with --yes if you are sure.`);
      }
      const removed = await hub.removeDevice(deviceId);
      if (opts.json === true) printJson(removed);
      else print(`Removed ${target.name} (${removed.deviceId}); its access to the hub has ended.`);
    });
  device.command('rotate-secret')
    .description('give a device a new secret or TargetToken (shown once); the old one stops working at once')
    .argument('<deviceId>')
    .addOption(jsonOption())
    .action(async (deviceId: string, opts: JsonOpt) => {
      const hub = client();
      const credential = await hub.rotateCredential(deviceId);
      if (opts.json === true) printJson(credential);
      else print(`${deviceId} has a new credential; the old one no longer works.\n${formatCredential(credential, hub.baseUrl)}`);
    });
  device.command('revoke')
    .description('end a device\'s access to the hub; it stays listed (rotate-secret lets it back in)')
    .argument('<deviceId>')
    .option('--yes', 'confirm the revocation')
    .addOption(jsonOption())
    .action(async (deviceId: string, opts: { yes?: boolean } & JsonOpt) => {
      const hub = client();
      if (opts.yes !== true) {
        const target = await hub.getDevice(deviceId);
        throw usageError(`Revoking ${target.name}'s (${target.id}) access cuts it off the hub at once, and an update not yet installing is cancelled; it stays listed. Run it again with --yes if you are sure.`);
      }
      const revoked = await hub.revokeCredential(deviceId);
      if (opts.json === true) printJson(revoked);
      else print(formatDeviceLine(revoked));
    });

  // --- the makers' signed repositories ---
  const repo = program.command('repo').description('the makers\' signed release repositories the hub trusts');
  repo.command('list')
    .description('each repository: trusted or refused (with why), and how many releases it vouches for')
    .addOption(jsonOption())
    .action(async (opts: JsonOpt) => {
      const list = await client().listRepositories();
      if (opts.json === true) printJson(list);
      else print(formatRepositories(list));
    });
  repo.command('add')
    .description('trust a maker\'s repository, starting from the root.json the maker gave you')
    .argument('<name>')
    .argument('<url>', 'https://, http:// or file:// address of the published repository')
    .requiredOption('--root <root.json>', 'the maker\'s root.json file')
    .addOption(jsonOption())
    .action(async (name: string, url: string, opts: { root: string } & JsonOpt) => {
      let root: string;
      try {
        root = io.readFile(opts.root);
      } catch (error) {
        throw usageError(`Cannot read the root file ${opts.root}: ${error instanceof Error ? error.message : String(error)}`);
      }
      const added = await client().addRepository({ name, url, root });
      if (opts.json === true) printJson(added);
      else print(formatRepository(added));
    });
  repo.command('remove')
    .description('stop trusting a repository added here (those in the config file are removed there)')
    .argument('<name>')
    .addOption(jsonOption())
    .action(async (name: string, opts: JsonOpt) => {
      await client().removeRepository(name);
      done(opts.json, `Removed the repository ${name}; nothing from it is offered any more.`);
    });
  repo.command('refresh')
    .description('read a repository again now')
    .argument('<name>')
    .addOption(jsonOption())
    .action(async (name: string, opts: JsonOpt) => {
      const refreshed = await client().refreshRepository(name);
      if (opts.json === true) printJson(refreshed);
      else print(formatRepository(refreshed));
    });

  // --- who may register as a hawkBit device ---
  const ddi = program.command('ddi').description('hawkBit devices: whether they may register themselves, and which');
  // `firmward ddi` alone shows them (a default subcommand, so `ddi set --json` stays set's own option).
  ddi.command('show', { isDefault: true })
    .description('the hawkBit device API and who may register with the GatewayToken')
    .addOption(jsonOption())
    .action(async (opts: JsonOpt) => {
      const settings = await client().ddiSettings();
      if (opts.json === true) printJson(settings);
      else print(formatDdi(settings));
    });
  ddi.command('set')
    .description('change who may register as a hawkBit device (each still waits for approval)')
    .addOption(new Option('--auto-register <on|off>', 'whether unknown controllers may ask to join with the GatewayToken').choices(['on', 'off'] as const))
    .addOption(new Option('--allow <ids>', 'only these controller ids may ask, e.g. attic-gw,garage-gw').argParser(idListArg).conflicts('allowAny'))
    .addOption(new Option('--allow-any', 'any controller id may ask'))
    .option('--home <homeId>', 'the home a self-registered device is proposed for')
    .option('--no-home', 'propose no home: you pick one when approving')
    .addOption(jsonOption())
    .action(async (opts: { autoRegister?: 'on' | 'off'; allow?: string[]; allowAny?: boolean; home?: string | false } & JsonOpt) => {
      const patch: DdiSettingsPatch = {
        ...(opts.autoRegister !== undefined && { autoRegister: opts.autoRegister === 'on' }),
        ...(opts.allow !== undefined && { allowedControllerIds: opts.allow }),
        ...(opts.allowAny === true && { allowedControllerIds: null }),
        ...(opts.home !== undefined && { homeId: opts.home === false ? '' : opts.home }),
      };
      if (Object.keys(patch).length === 0) throw usageError('Say what to change: --auto-register on|off, --allow <ids> or --allow-any, --home <homeId> or --no-home.');
      const settings = await client().changeDdiSettings(patch);
      if (opts.json === true) printJson(settings);
      else print(formatDdi(settings));
    });

  // --- bridges to other ecosystems ---
  program.command('bridges')
    .description('the bridges to other ecosystems (Zigbee2MQTT, Tasmota, Shelly, Home Assistant) and how each is doing')
    .addOption(jsonOption())
    .action(async (opts: JsonOpt) => {
      const list = await client().listBridges();
      if (opts.json === true) printJson(list);
      else print(formatBridges(list, io.now()));
    });
  const bridge = program.command('bridge').description('turn a bridge on or off, or change its broker, login or home');
  bridge.command('set')
    .description('change one bridge; it restarts with the new settings at once (not while one of its devices installs)')
    .argument('<name>', 'zigbee2mqtt, tasmota, shelly or homeAssistant')
    .addOption(new Option('--on', 'turn it on').conflicts('off'))
    .addOption(new Option('--off', 'turn it off'))
    .option('--url <broker>', 'its broker, e.g. mqtt://192.168.1.5:1883')
    .option('--username <user>', 'its login name at the broker (the password stays in the hub\'s config or environment)')
    .addOption(new Option('--home <homeId>', 'the home its devices join').conflicts('newHome'))
    .option('--new-home <name>', 'make a home for its devices (in this machine\'s time zone) and use it')
    .addOption(jsonOption())
    .action(async (name: string, opts: { on?: boolean; off?: boolean; url?: string; username?: string; home?: string; newHome?: string } & JsonOpt) => {
      const patch: BridgeUpdate = {
        ...(opts.on === true && { enabled: true }),
        ...(opts.off === true && { enabled: false }),
        ...(opts.url !== undefined && { url: opts.url }),
        ...(opts.username !== undefined && { username: opts.username }),
        ...(opts.home !== undefined && { homeId: opts.home }),
        ...(opts.newHome !== undefined && { newHome: { name: opts.newHome, timeZone: localTimeZone() } }),
      };
      if (Object.keys(patch).length === 0) throw usageError('Say what to change: --on or --off, --url, --username, --home or --new-home.');
      const changed = await client().updateBridge(name, patch);
      if (opts.json === true) printJson(changed);
      else print(formatBridge(changed, io.now()));
    });
}
