/**
 * `firmward-agent enroll`: joins the device to a home from the command line, printing what the
 * person must do and how it ended; the exit code says which (docs/agent.md, "Joining a home").
 *
 *   firmward-agent enroll --config <agent.json> (--hub <url> --code <code> [--home <homeId>] | --payload '<firmward-enroll:?…>')
 *                         [--name "Kitchen plug"] [--wait-seconds N] [--firmware-version V]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isFirmwardError } from '@firmward/core';
import { SystemClock, silentLogger } from '@firmward/ports';
import type { Clock } from '@firmward/ports';
import { parseDaemonConfig } from '../linux/daemon-config.ts';
import type { DaemonConfig } from '../linux/daemon-config.ts';
import { platformFor } from '../linux/daemon-platform.ts';
import { brokerUrlFor } from './connection.ts';
import { enroll, ENROLL_EXIT_CODES } from './enroll.ts';
import type { EnrollEvent } from './enroll.ts';
import { enrollTarget } from './enroll-target.ts';
import type { EnrollTargetField } from './enroll-target.ts';

export const ENROLL_USAGE = `Usage: firmward-agent enroll --config <agent.json> (--hub <http(s) address> --code <code> [--home <homeId>] | --payload '<firmward-enroll:?…>')
                             [--name "Kitchen plug"] [--wait-seconds N] [--firmware-version <version>]`;

/** Waiting for the owner's decision ends after a day unless told otherwise. */
export const DEFAULT_WAIT_SECONDS = 24 * 60 * 60;

export interface EnrollCommandIo {
  /** One line each, without the line break. */
  out: (line: string) => void;
  err: (line: string) => void;
  /** SIGINT/SIGTERM: stop cleanly. */
  signal: AbortSignal;
  clock?: Clock;
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
}

const FLAG_OF: Record<EnrollTargetField, string> = { hubUrl: '--hub', code: '--code', homeId: '--home', payload: '--payload', name: '--name' };

/**
 * Returns the exit code: 0 approved, 2 usage or settings, 3 refused, 4 wrong code, 5 hub
 * unreachable, 6 still waiting (stopped, or --wait-seconds ran out).
 *
 * @example
 * process.exitCode = await runEnrollCommand(['--config', 'agent.json', '--payload', payload], { out: console.log, err: console.error, signal });
 */
export async function runEnrollCommand(args: string[], io: EnrollCommandIo): Promise<number> {
  const clock = io.clock ?? new SystemClock();
  const usage = (message: string) => {
    io.err(`firmward-agent enroll: ${message}`);
    io.err(ENROLL_USAGE);
    return ENROLL_EXIT_CODES.invalid_request;
  };
  let values: ReturnType<typeof parseFlags>;
  try {
    values = parseFlags(args);
  } catch (error) {
    return usage(error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    io.out(ENROLL_USAGE);
    return 0;
  }
  const waitText = values['wait-seconds'];
  const waitSeconds = waitText === undefined ? DEFAULT_WAIT_SECONDS : /^\d+$/.test(waitText) ? Number(waitText) : NaN;
  if (!Number.isSafeInteger(waitSeconds)) return usage('--wait-seconds must be a whole number of seconds.');
  const target = enrollTarget({ hubUrl: values.hub, code: values.code, homeId: values.home, payload: values.payload, name: values.name });
  if ('problems' in target) {
    const problems = target.problems.map((p) => `${FLAG_OF[p.field]} ${p.message}.`);
    if (target.problems.every((p) => p.kind === 'code')) {
      for (const p of problems) io.err(`firmward-agent enroll: ${p}`);
      return ENROLL_EXIT_CODES.code_invalid;
    }
    return usage(problems.join(' '));
  }

  const env = io.env ?? process.env;
  const path = values.config ?? env['FIRMWARD_AGENT_CONFIG'] ?? '/etc/firmward/agent.json';
  let config: DaemonConfig;
  let firmwareVersion: string;
  try {
    config = parseDaemonConfig(await readFile(path, 'utf8'), path);
  } catch (error) {
    io.err(`firmward-agent enroll: ${isFirmwardError(error) ? error.message : `The agent's settings file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}).`}`);
    return ENROLL_EXIT_CODES.invalid_request;
  }
  if (values['firmware-version'] !== undefined) {
    firmwareVersion = values['firmware-version'];
  } else {
    // The version the agent will report once connected: the one in the running slot.
    try {
      const boot = await platformFor(config, silentLogger).bootState();
      const running = boot.versions[boot.activeSlot];
      if (running === null) io.err(`firmward-agent enroll: the version in the running slot ${boot.activeSlot} cannot be read; the hub is told "unknown" (or pass --firmware-version).`);
      firmwareVersion = running ?? 'unknown';
    } catch (error) {
      io.err(`firmward-agent enroll: which version runs cannot be read from the bootloader (${error instanceof Error ? error.message : String(error)}); pass --firmware-version.`);
      return ENROLL_EXIT_CODES.invalid_request;
    }
  }

  const report = (event: EnrollEvent) => {
    switch (event.kind) {
      case 'waiting':
        io.out(`Waiting for approval in ${event.claim.homeName || event.claim.homeId}: approve ${event.claim.deviceId} on the hub's dashboard or with \`firmward approve ${event.claim.deviceId}\`.`);
        break;
      case 'retrying':
        io.err(`${event.message} Trying again in ${Math.ceil(event.retryInMs / 1000)} s.`);
        break;
      case 'claim_gone':
        io.err(`${event.message} Sending the new code.`);
        break;
    }
  };
  const outcome = await enroll({
    credentialsPath: config.hub.passwordFile,
    target: target.target,
    device: { id: config.device.id, vendor: config.device.vendor, model: config.device.model, hardwareRevision: config.device.hardwareRevision, firmwareVersion },
    deadline: clock.now() + waitSeconds * 1000,
    clock, signal: io.signal, report,
    ...(io.fetch ? { fetch: io.fetch } : {}),
  });
  switch (outcome.kind) {
    case 'approved':
      io.out(outcome.message);
      if (!outcome.already) io.out(`Approved: the credentials of ${outcome.credentials.deviceId} are in ${config.hub.passwordFile}; the agent connects to ${brokerUrlFor(config, outcome.credentials)}.`);
      break;
    case 'stopped':
    case 'timed_out':
      io.err(outcome.message);
      break;
    default:
      io.err(`firmward-agent enroll: ${outcome.message}`);
  }
  return ENROLL_EXIT_CODES[outcome.kind];
}

function parseFlags(args: string[]) {
  return parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      hub: { type: 'string' },
      code: { type: 'string' },
      home: { type: 'string' },
      payload: { type: 'string' },
      name: { type: 'string' },
      'wait-seconds': { type: 'string' },
      'firmware-version': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}
