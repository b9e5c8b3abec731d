#!/usr/bin/env node
/**
 * `firmward`: the command line for a household or installer. It talks to the hub over its HTTP
 * API only (the same one the dashboard uses), so it never decides anything itself: every answer
 * and every refusal is the hub's sentence.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { JOB_STATES, isFirmwardError } from '@firmward/core';
import type { JobState } from '@firmward/core';
import { registerReleaseCommands } from '@firmward/release-tool/cli';
import { HubClient } from './client.ts';
import { EXIT, EXIT_CODES_HELP, exitCodeOf, usageError } from './exit-codes.ts';
import { formatDevices, formatHistory, formatHome, formatJob, formatRollouts, formatStatus } from './format.ts';
import { resolveHub, resolveOwnerToken } from './hub-address.ts';
import type { HubAddress, OwnerToken } from './hub-address.ts';
import { registerSetupCommands } from './setup-commands.ts';
import { watch } from './watch.ts';

export { DEFAULT_HUB } from './hub-address.ts';

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  readFile: (path: string) => string;
}

/** --token, else FIRMWARD_OWNER_TOKEN, else the token file the hub wrote into its data folder. */
export function resolveToken(flag: string | undefined, io: Pick<CliIo, 'env' | 'readFile'>): string {
  return resolveOwnerToken(flag, io).token;
}

function hubUrl(value: string): string {
  if (!/^https?:\/\/\S+$/.test(value)) throw new InvalidArgumentError('must be the hub\'s web address, such as http://127.0.0.1:8080.');
  return value;
}

function percentList(value: string): number[] {
  const list = value.split(',').map((p) => Number(p.trim()));
  if (list.some((p) => !Number.isFinite(p) || p <= 0 || p > 100)) throw new InvalidArgumentError('must be percentages above 0 and at most 100, e.g. 1,5,25,100.');
  return list;
}

function shareOf(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a share from 0 to 1, e.g. 0.05.');
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 500) throw new InvalidArgumentError('must be a whole number from 1 to 500.');
  return n;
}

/**
 * Runs the CLI and resolves with the exit code (it never calls process.exit, so output is flushed).
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: CliIo = {
  env: process.env, stdout: process.stdout, stderr: process.stderr, readFile: (p) => readFileSync(p, 'utf8'),
}): Promise<number> {
  let exitCode = 0;
  const print = (text: string): void => {
    io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));

  const program = new Command('firmward')
    .description('Safe firmware updates for your devices: see what will happen, when, and why not yet.')
    .option('--hub <url>', 'the hub to talk to (default: FIRMWARD_HUB, else <data dir>/hub-url, else port FIRMWARD_PORT or 8080 here)', hubUrl)
    .option('--token <token>', 'the owner token (default: FIRMWARD_OWNER_TOKEN, else <data dir>/owner-token)')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError();

  // What the last client was made with, to say which hub refused which token.
  const last: { address?: HubAddress; token?: OwnerToken } = {};
  const client = (): HubClient => {
    const globals = program.opts<{ hub?: string; token?: string }>();
    const address = resolveHub(globals.hub, io);
    last.address = address;
    const token = resolveOwnerToken(globals.token, io);
    last.token = token;
    return new HubClient({ baseUrl: address.url, origin: address.origin, token: token.token });
  };
  // `firmward release …` works on local folders: its refusals keep their one exit code, 1.
  let local = false;
  program.hook('preAction', (_program, action) => {
    let top: Command = action;
    while (top.parent !== null && top.parent !== program) top = top.parent;
    local = top.name() === 'release';
  });

  program.command('status')
    .description('homes and devices, with what happens next to each and why')
    .option('--home <id>', 'only this home')
    .option('--json', 'print the raw JSON')
    .action(async (opts: { home?: string; json?: boolean }) => {
      const hub = client();
      const homes = opts.home === undefined ? await hub.listHomes() : [await hub.getHome(opts.home)];
      const devices = await hub.listDevices(opts.home === undefined ? {} : { homeId: opts.home });
      const { repositories } = await hub.health();
      if (opts.json === true) printJson({ homes, devices, repositories });
      else print(formatStatus(homes, devices, repositories));
    });

  program.command('devices')
    .description('every device the hub knows')
    .option('--json', 'print the raw JSON')
    .action(async (opts: { json?: boolean }) => {
      const devices = await client().listDevices();
      if (opts.json === true) printJson(devices);
      else print(formatDevices(devices));
    });

  program.command('history')
    .description('what happened, who did it, and why')
    .option('--device <id>', 'only this device')
    .addOption(new Option('--outcome <state>', 'only updates that ended (or moved) in this state').choices(JOB_STATES))
    .option('--limit <n>', 'at most this many lines (1-500)', positiveInt, 50)
    .option('--json', 'print the raw JSON')
    .action(async (opts: { device?: string; outcome?: JobState; limit: number; json?: boolean }) => {
      const hub = client();
      const events = await hub.listEvents({
        limit: opts.limit,
        ...(opts.device === undefined ? {} : { deviceId: opts.device }),
        ...(opts.outcome === undefined ? {} : { to: opts.outcome }),
      });
      if (opts.json === true) {
        printJson(events);
        return;
      }
      const names = new Map((await hub.listDevices()).map((d) => [d.id, d.name]));
      print(formatHistory(events, names));
    });

  program.command('watch')
    .description('follow running updates with progress bars until they end')
    .option('--device <id>', 'only this device')
    .action(async (opts: { device?: string }) => {
      exitCode = await watch(client(), {
        out: io.stdout, pollMs: 2000, ...(opts.device === undefined ? {} : { deviceId: opts.device }),
      });
    });

  program.command('update')
    .description('update this device now; every safety check still applies')
    .argument('<deviceId>')
    .option('--json', 'print the raw JSON')
    .action(async (deviceId: string, opts: { json?: boolean }) => {
      const job = await client().updateNow(deviceId);
      if (opts.json === true) printJson(job);
      else print(formatJob(job));
    });

  program.command('force')
    .description('start the update even though a safety check fails (battery, signal, use)')
    .argument('<deviceId>')
    .option('--yes', 'confirm that the safety checks may be skipped')
    .option('--json', 'print the raw JSON')
    .action(async (deviceId: string, opts: { yes?: boolean; json?: boolean }) => {
      // Invariant 3: skipping the preflight gate needs an explicit yes from a person.
      if (opts.yes !== true) {
        throw usageError('Forcing skips the safety checks (battery, signal, whether the device is needed soon); run it again with --yes if you are sure.');
      }
      const job = await client().force(deviceId);
      if (opts.json === true) printJson(job);
      else print(formatJob(job));
    });

  program.command('cancel')
    .description('cancel an update before it starts installing')
    .argument('<jobId>')
    .option('--json', 'print the raw JSON')
    .action(async (jobId: string, opts: { json?: boolean }) => {
      const job = await client().cancel(jobId);
      if (opts.json === true) printJson(job);
      else print(formatJob(job));
    });

  program.command('resume')
    .description('let a halted home go on; the failed device is tried again')
    .argument('<homeId>')
    .option('--json', 'print the raw JSON')
    .action(async (homeId: string, opts: { json?: boolean }) => {
      const home = await client().resume(homeId);
      if (opts.json === true) printJson(home);
      else print(formatHome(home));
    });

  program.command('rollouts')
    .description('staged rollouts across homes: which wave, what happened')
    .option('--json', 'print the raw JSON')
    .action(async (opts: { json?: boolean }) => {
      const rollouts = await client().listRollouts();
      if (opts.json === true) printJson(rollouts);
      else print(formatRollouts(rollouts));
    });

  const rollout = program.command('rollout').description('start, pause, resume or abort a staged rollout');
  rollout.command('start')
    .description('roll a release out in growing waves of homes, stopping by itself on failures')
    .argument('<releaseId>', 'e.g. acme/plug/1.2.0')
    .option('--waves <percentages>', 'cumulative share of homes per wave, e.g. 1,5,25,100', percentList)
    .option('--max-failure-rate <share>', 'stop when more than this share of finished updates failed, e.g. 0.05', shareOf)
    .option('--min-finished <n>', 'finished updates before the failure rate counts', positiveInt)
    .option('--max-stuck <n>', 'stop when this many updates are stuck', positiveInt)
    .option('--json', 'print the raw JSON')
    .action(async (releaseId: string, opts: { waves?: number[]; maxFailureRate?: number; minFinished?: number; maxStuck?: number; json?: boolean }) => {
      const started = await client().startRollout({
        releaseId,
        ...(opts.waves !== undefined && { waves: opts.waves }),
        ...(opts.maxFailureRate !== undefined && { maxFailureRate: opts.maxFailureRate }),
        ...(opts.minFinished !== undefined && { minFinished: opts.minFinished }),
        ...(opts.maxStuck !== undefined && { maxStuck: opts.maxStuck }),
      });
      if (opts.json === true) printJson(started);
      else print(formatRollouts([started]));
    });
  for (const action of ['pause', 'resume', 'abort'] as const) {
    rollout.command(action)
      .description(action === 'pause' ? 'hold every update of the rollout that has not started' : action === 'resume' ? 'go on with a paused or stopped rollout' : 'call the rollout off: updates not started are cancelled')
      .argument('<rolloutId>')
      .option('--json', 'print the raw JSON')
      .action(async (rolloutId: string, opts: { json?: boolean }) => {
        const view = await client().actOnRollout(rolloutId, action);
        if (opts.json === true) printJson(view);
        else print(formatRollouts([view]));
      });
  }

  program.command('skip')
    .description('let a halted home go on without the failed device\'s update')
    .argument('<homeId>')
    .option('--json', 'print the raw JSON')
    .action(async (homeId: string, opts: { json?: boolean }) => {
      const home = await client().skip(homeId);
      if (opts.json === true) printJson(home);
      else print(formatHome(home));
    });

  registerSetupCommands(program, {
    client, print, printJson, readFile: io.readFile, now: () => Date.now(),
  });

  // The maker's side (`firmward release …`) works on local folders, not through the hub.
  registerReleaseCommands(program, { env: io.env, stdout: io.stdout, setExitCode: (code) => { exitCode = code; } });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (or the help). Help asked for is 0; help shown
      // because no command was given, and every parsing error, is a usage error.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
      if (error.code === 'commander.help') return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return EXIT.usage;
    }
    if (isFirmwardError(error)) {
      io.stderr.write(`${error.message}\n`);
      if (local) return error.detail?.['usage'] === true ? EXIT.usage : EXIT.refused;
      if (error.code === 'unauthorized' && last.address !== undefined && last.token !== undefined) {
        io.stderr.write(`(asked the hub at ${last.address.url}, ${last.address.origin}, with the owner token ${last.token.origin})\n`);
      }
      return exitCodeOf(error);
    }
    io.stderr.write(`firmward stopped on an unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.refused;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
