/**
 * `firmward-agent`: the device agent as a daemon on a Linux device with two image slots.
 *
 *   node apps/agent/src/main.ts --config /etc/firmward/agent.json
 *
 * Reads and checks its settings (every problem reported at once), connects to the hub over MQTT
 * (reconnecting for as long as it runs), and resumes whatever a restart interrupted from its
 * journal (invariant 7). SIGTERM stops it cleanly: a download stops at a checkpoint and resumes on
 * the next start; a switch already under way is finished first (invariant 6).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isFirmwardError } from '@firmward/core';
import { DeviceTrust, isRoot } from '@firmward/tuf';
import { consoleLogger, SystemClock } from '@firmward/ports';
import type { Logger } from '@firmward/ports';
import { Agent } from './agent.ts';
import type { AgentConfig } from './config.ts';
import { ScriptBootloader, UBootEnvBootloader } from './linux/bootloader.ts';
import type { Bootloader } from './linux/bootloader.ts';
import { parseDaemonConfig } from './linux/daemon-config.ts';
import type { DaemonConfig } from './linux/daemon-config.ts';
import { LinuxPlatform } from './linux/linux-platform.ts';
import { runCommand } from './linux/run-command.ts';
import { MqttAgentTransport } from './mqtt-transport.ts';

export function bootloaderFor(config: DaemonConfig): Bootloader {
  const b = config.bootloader;
  return b.kind === 'custom'
    ? new ScriptBootloader({ command: b.command, timeoutMs: b.timeoutMs })
    : new UBootEnvBootloader({ printenv: b.printenv, setenv: b.setenv, trialBoots: b.trialBoots, timeoutMs: b.timeoutMs });
}

export function platformFor(config: DaemonConfig, log: Logger): LinuxPlatform {
  const { batteryPercent, charging, onMains, signalDbm, busy, powerStable, timeoutMs } = config.conditions;
  return new LinuxPlatform({
    identity: { deviceId: config.device.id, vendor: config.device.vendor, model: config.device.model, hardwareRevision: config.device.hardwareRevision },
    slots: { a: config.slots.a, b: config.slots.b },
    slotSizeBytes: config.slots.sizeBytes,
    bootloader: bootloaderFor(config),
    journalPath: config.journalPath,
    version: config.version,
    healthCheck: config.healthCheck,
    conditions: { batteryPercent, charging, onMains, signalDbm, busy, powerStable },
    commandTimeoutMs: timeoutMs,
    readChunkBytes: 1 << 20,
    writeBufferBytes: 1 << 20,
    reboot: async () => {
      log.info('Restarting the device.', { command: config.rebootCommand });
      const r = await runCommand(config.rebootCommand, { timeoutMs: 60_000 });
      if (r.exitCode !== 0) log.error('The restart command failed; the new version waits for the next restart.', { exitCode: r.exitCode, stderr: r.stderr.trim() });
    },
  });
}

/** The agent core's settings from the file (only the keys that were given; defaults for the rest). */
export function agentSettings(config: DaemonConfig): Partial<AgentConfig> {
  const settings: Partial<AgentConfig> = Object.fromEntries(Object.entries(config.agent).filter(([, v]) => v !== undefined));
  if (config.healthCheck) settings.healthCheckTimeoutMs = config.healthCheck.timeoutMs;
  return settings;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
  const path = values.config ?? process.env['FIRMWARD_AGENT_CONFIG'] ?? '/etc/firmward/agent.json';
  let config: DaemonConfig;
  let password: string;
  let verifier: DeviceTrust;
  try {
    config = parseDaemonConfig(await readFile(path, 'utf8'), path);
    password = (await readFile(config.hub.passwordFile, 'utf8')).trim();
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
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (signal: string) => {
      if (stopping) {
        log.warn('Second stop signal: leaving now.', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('Stopping.', { signal });
      resolve();
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
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

  // Connect until it works: a broker that is down now may be up later (mqtt.js reconnects after
  // the first connection; a refused login is retried too, after the operator fixes it).
  while (!stopping) {
    const transport = new MqttAgentTransport({
      url: config.hub.url, deviceId: config.device.id, password, reconnectPeriodMs: config.hub.reconnectDelayMs, clock, logger: log,
    });
    const candidate = new Agent({ platform, transport, clock, config: agentSettings(config), log, verifier });
    try {
      await Promise.race([candidate.start().then(() => { connected = true; }), stopped]);
      agent = candidate;
      if (stopping) break;
      log.info('Connected to the hub.', { url: config.hub.url, deviceId: config.device.id });
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

if (import.meta.main) {
  main().then((code) => process.exit(code), (error: unknown) => {
    process.stderr.write(`firmward-agent: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  });
}
