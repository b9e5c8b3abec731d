#!/usr/bin/env node
/**
 * `firmward-agent`: the device agent as a daemon on a Linux device with two image slots.
 *
 *   node apps/agent/src/main.ts --config /etc/firmward/agent.json
 *   node apps/agent/src/main.ts enroll --config /etc/firmward/agent.json --hub http://hub.local:8080 --code K7Q2M-X9HT4
 *
 * Reads and checks its settings (every problem reported at once), enrolls first when the device
 * has no credentials yet and `hub.enroll` says how (or an earlier enrollment still waits),
 * connects to the hub over MQTT (reconnecting for as long as it runs), and resumes whatever a
 * restart interrupted from its journal (invariant 7). SIGTERM stops it cleanly: a download stops
 * at a checkpoint and resumes on the next start; a switch already under way is finished first
 * (invariant 6). `enroll` is src/enrollment/enroll-command.ts.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isFirmwardError } from '@firmward/core';
import { DeviceTrust, isRoot } from '@firmward/tuf';
import { consoleLogger, SystemClock } from '@firmward/ports';
import type { Logger } from '@firmward/ports';
import { Agent } from './agent.ts';
import type { AgentConfig } from './config.ts';
import { brokerUrlFor, connectionPlan } from './enrollment/connection.ts';
import type { ConnectionPlan } from './enrollment/connection.ts';
import { readCredentials } from './enrollment/credentials.ts';
import { enroll, ENROLL_EXIT_CODES } from './enrollment/enroll.ts';
import type { EnrollEvent } from './enrollment/enroll.ts';
import type { EnrollTarget } from './enrollment/enroll-target.ts';
import { runEnrollCommand } from './enrollment/enroll-command.ts';
import { parseDaemonConfig } from './linux/daemon-config.ts';
import type { DaemonConfig } from './linux/daemon-config.ts';
import { platformFor } from './linux/daemon-platform.ts';
import { MqttAgentTransport } from './mqtt-transport.ts';

export { bootloaderFor, platformFor } from './linux/daemon-platform.ts';

/** The agent core's settings from the file (only the keys that were given; defaults for the rest). */
export function agentSettings(config: DaemonConfig): Partial<AgentConfig> {
  const settings: Partial<AgentConfig> = Object.fromEntries(Object.entries(config.agent).filter(([, v]) => v !== undefined));
  if (config.healthCheck) settings.healthCheckTimeoutMs = config.healthCheck.timeoutMs;
  return settings;
}

const USAGE = `Usage:
  firmward-agent [--config <agent.json>]     run the agent (default: FIRMWARD_AGENT_CONFIG, else /etc/firmward/agent.json)
  firmward-agent enroll --config <agent.json> (--hub <url> --code <code> [--home <homeId>] | --payload '<firmward-enroll:?…>') [--name <name>]
                                             join a home: present the hub's one-time code and wait for the owner's approval
The settings and exit codes: docs/agent.md.
`;

async function main(args: string[]): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args[0] === 'enroll') {
    const stop = new AbortController();
    onStopSignal((signal) => {
      if (stop.signal.aborted) process.exit(1);
      process.stderr.write(`Stopping (${signal}).\n`);
      stop.abort();
    });
    return runEnrollCommand(args.slice(1), {
      out: (line) => void process.stdout.write(`${line}\n`), err: (line) => void process.stderr.write(`${line}\n`), signal: stop.signal,
    });
  }
  return runDaemon(args);
}

/** Every SIGTERM and SIGINT, for as long as the process runs. */
function onStopSignal(handler: (signal: string) => void): void {
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}

async function runDaemon(args: string[]): Promise<number> {
  let values: { config?: string | undefined };
  try {
    ({ values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (error) {
    process.stderr.write(`firmward-agent: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  const path = values.config ?? process.env['FIRMWARD_AGENT_CONFIG'] ?? '/etc/firmward/agent.json';
  let config: DaemonConfig;
  let plan: ConnectionPlan;
  let verifier: DeviceTrust;
  try {
    config = parseDaemonConfig(await readFile(path, 'utf8'), path);
    plan = connectionPlan(config, await readCredentials(config.hub.passwordFile), path);
    const roots: Record<string, Buffer> = {};
    for (const [name, file] of Object.entries(config.trust.roots)) {
      roots[name] = await readFile(file);
      if (!isRoot(roots[name])) throw new Error(`The trusted root ${file} for "${name}" is not a TUF root.json from the maker.`);
    }
    verifier = new DeviceTrust({ dir: config.trust.dir, roots });
  } catch (error) {
    process.stderr.write(`firmward-agent: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const log = consoleLogger(config.logLevel, 'agent');
  const clock = new SystemClock();
  const platform = platformFor(config, log);
  let stopping = false;
  let agent: Agent | null = null;
  let connected = false;
  const stop = new AbortController();
  const stopped = new Promise<void>((resolve) => {
    onStopSignal((signal) => {
      if (stopping) {
        log.warn('Second stop signal: leaving now.', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('Stopping.', { signal });
      stop.abort();
      resolve();
    });
  });

  // A new version on trial must reach the hub in time, or it is rejected and the old one returns.
  const boot = await platform.bootState();
  let deadline: NodeJS.Timeout | null = null;
  if (boot.trial?.slot === boot.activeSlot) {
    deadline = setTimeout(() => {
      if (connected) return;
      log.error('The new version could not reach the hub in time; going back to the previous one.', { deadlineMs: config.trialConnectDeadlineMs });
      void (async () => {
        await platform.rejectTrial(boot.activeSlot);
        await platform.reboot();
      })().catch((error: unknown) => log.error('Could not go back to the previous version.', { error: String(error) }));
    }, config.trialConnectDeadlineMs);
  }

  // No credentials yet: join the home first (the same path as `firmward-agent enroll`, waiting
  // for the owner for as long as it runs). The trial deadline above keeps running meanwhile.
  if (plan.kind === 'enroll') {
    const enrolled = await enrollFirst(config, plan.target, boot.versions[boot.activeSlot] ?? 'unknown', { log: log.child('enroll'), clock, signal: stop.signal });
    if (typeof enrolled === 'number') {
      if (deadline) clearTimeout(deadline);
      return enrolled;
    }
    plan = enrolled;
  }
  const { url, password } = plan;

  // Connect until it works: a broker that is down now may be up later (mqtt.js reconnects after
  // the first connection; a refused login is retried too, after the operator fixes it).
  while (!stopping) {
    const transport = new MqttAgentTransport({
      url, deviceId: config.device.id, password, reconnectPeriodMs: config.hub.reconnectDelayMs, clock, logger: log,
    });
    const candidate = new Agent({ platform, transport, clock, config: agentSettings(config), log, verifier });
    try {
      await Promise.race([candidate.start().then(() => { connected = true; }), stopped]);
      agent = candidate;
      if (stopping) break;
      log.info('Connected to the hub.', { url, deviceId: config.device.id });
      break;
    } catch (error) {
      log.error('Could not start; trying again.', { error: isFirmwardError(error) ? error.message : String(error) });
      await candidate.stop();
      await Promise.race([clock.sleep(config.hub.reconnectDelayMs), stopped]);
    }
  }
  if (!connected) {
    // Never connected: nothing was resumed or changed yet (recovery waits for the connection),
    // so there is nothing to settle; the next start picks up from the journal.
    log.info('Stopped before reaching the hub.');
    return 0;
  }
  if (deadline) clearTimeout(deadline);
  await stopped;
  await agent?.stop();
  log.info('Stopped.');
  return 0;
}

/**
 * Enrolls with `hub.enroll` (or resumes the claim the credentials file names): the connection to
 * use, or the exit code (0 when stopped meanwhile, else the codes of `firmward-agent enroll`).
 */
async function enrollFirst(
  config: DaemonConfig, target: EnrollTarget | null, firmwareVersion: string,
  deps: { log: Logger; clock: SystemClock; signal: AbortSignal },
): Promise<Extract<ConnectionPlan, { kind: 'connect' }> | number> {
  const { log } = deps;
  const report = (event: EnrollEvent) => {
    switch (event.kind) {
      case 'waiting':
        log.info(`Waiting for approval in ${event.claim.homeName || event.claim.homeId}: approve ${event.claim.deviceId} on the hub's dashboard or with \`firmward approve ${event.claim.deviceId}\`.`, {
          hubUrl: event.claim.hubUrl, claimId: event.claim.claimId, resumed: event.resumed,
        });
        break;
      case 'retrying':
        log.warn(event.message, { retryInSeconds: Math.ceil(event.retryInMs / 1000) });
        break;
      case 'claim_gone':
        log.warn(`${event.message} Sending the code from hub.enroll.`);
        break;
    }
  };
  log.info('No usable credentials yet: joining the home first.', { hubUrl: target?.hubUrl, credentialsFile: config.hub.passwordFile });
  const outcome = await enroll({
    credentialsPath: config.hub.passwordFile,
    target,
    device: { id: config.device.id, vendor: config.device.vendor, model: config.device.model, hardwareRevision: config.device.hardwareRevision, firmwareVersion },
    deadline: null,
    clock: deps.clock, signal: deps.signal, report,
  });
  switch (outcome.kind) {
    case 'approved':
      log.info(`Enrolled: ${outcome.message}`, { hubUrl: outcome.credentials.hubUrl, deviceId: outcome.credentials.deviceId });
      return { kind: 'connect', url: brokerUrlFor(config, outcome.credentials), password: outcome.credentials.secret };
    case 'stopped':
      log.info('Stopped before reaching the hub.');
      return 0;
    default:
      log.error(`Enrollment failed: ${outcome.message}`, { outcome: outcome.kind });
      return ENROLL_EXIT_CODES[outcome.kind];
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (error: unknown) => {
    process.stderr.write(`firmward-agent: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  });
}
