/**
 * The daemon's platform and bootloader as its settings describe them: shared by the daemon and
 * `firmward-agent enroll` (which reads the running version the same way the agent reports it).
 */
import type { Logger } from '@firmward/ports';
import { ScriptBootloader, UBootEnvBootloader } from './bootloader.ts';
import type { Bootloader } from './bootloader.ts';
import type { DaemonConfig } from './daemon-config.ts';
import { LinuxPlatform } from './linux-platform.ts';
import { runCommand } from './run-command.ts';

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
