/**
 * The agent's platform on a Linux device with two image slots (block devices such as
 * /dev/mmcblk0p2 and /dev/mmcblk0p3, or plain files): positional writes into the inactive slot,
 * fsync, read-back; the boot selection through a `Bootloader` backend; the health check and the
 * device's conditions from configured commands or sysfs files; the journal replaced atomically.
 */
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FirmwardError } from '@firmward/core';
import type { Slot } from '@firmward/core';
import { readFirmwareHeader } from '../firmware-image.ts';
import type { AgentJournal } from '../journal.ts';
import type { AgentPlatform, BootState, DeviceConditionsReport, DeviceIdentity, HealthReport, SlotWriter } from '../platform.ts';
import type { Bootloader } from './bootloader.ts';
import { syncDirectory, writeFileAtomic } from './durable-file.ts';
import { runCommand } from './run-command.ts';

/** Where one reading comes from: the first line of a file (sysfs) or a command's output. */
export type ValueSource = { file: string } | { command: string[] };

export interface ConditionSources {
  /** 0–100, e.g. { file: '/sys/class/power_supply/BAT0/capacity' }. */
  batteryPercent: ValueSource | null;
  /** "Charging", "Full", "1" or "true" mean charging (sysfs …/BAT0/status). */
  charging: ValueSource | null;
  /** "1" means on mains (sysfs …/AC/online); "0" on battery. */
  onMains: ValueSource | null;
  signalDbm: ValueSource | null;
  /** "1", "true" or "busy" mean busy. */
  busy: ValueSource | null;
  /** "0" or "false" mean the supply is unstable right now (e.g. an under-voltage flag); null = assume stable. */
  powerStable?: ValueSource | null;
}

export type VersionSource = { kind: 'header' } | { kind: 'command'; command: string[] };

export interface LinuxPlatformOptions {
  identity: DeviceIdentity;
  slots: Record<Slot, string>;
  /** Bytes a slot holds; nothing is written past it. */
  slotSizeBytes: number;
  bootloader: Bootloader;
  journalPath: string;
  /** How the version in a slot is read: the image header, or a command called with `<slot> <path>`. */
  version: VersionSource;
  /** Exit 0 = healthy; null = no check beyond reaching the agent. */
  healthCheck: { command: string[]; timeoutMs?: number } | null;
  conditions: ConditionSources;
  /** Helpers (version, conditions, health) that take longer count as failed. */
  commandTimeoutMs: number;
  /** Bytes per read when reading a slot back. */
  readChunkBytes: number;
  /** Bytes gathered before one positional write into the slot (flushed at every sync anyway). */
  writeBufferBytes: number;
  /** Restarts the device (the daemon runs `systemctl reboot` or the configured command). */
  reboot: () => Promise<void>;
}

export class LinuxPlatform implements AgentPlatform {
  readonly #o: LinuxPlatformOptions;

  constructor(options: LinuxPlatformOptions) {
    this.#o = options;
  }

  identity(): Promise<DeviceIdentity> {
    return Promise.resolve({ ...this.#o.identity });
  }

  async bootState(): Promise<BootState> {
    const s = await this.#o.bootloader.read();
    const [a, b] = await Promise.all([
      s.good.a ? this.#versionIn('a') : Promise.resolve(null),
      s.good.b ? this.#versionIn('b') : Promise.resolve(null),
    ]);
    return { activeSlot: s.current, trial: s.trial ? { ...s.trial } : null, versions: { a, b } };
  }

  async #versionIn(slot: Slot): Promise<string | null> {
    const source = this.#o.version;
    if (source.kind === 'command') {
      const r = await runCommand([...source.command, slot, this.#o.slots[slot]], { timeoutMs: this.#o.commandTimeoutMs });
      const version = r.exitCode === 0 ? r.stdout.trim().split('\n')[0]?.trim() ?? '' : '';
      return version === '' ? null : version;
    }
    let handle: FileHandle;
    try {
      handle = await open(this.#o.slots[slot], 'r');
    } catch {
      return null;
    }
    try {
      const buffer = new Uint8Array(1024);
      const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, 0);
      return readFirmwareHeader(buffer.subarray(0, bytesRead))?.version ?? null;
    } finally {
      await handle.close();
    }
  }

  async openSlotWriter(slot: Slot, options: { offset: number }): Promise<SlotWriter> {
    const s = await this.#o.bootloader.read();
    if (slot === s.current || slot === s.committed) {
      throw new FirmwardError('conflict', `Slot ${slot} holds the running or known-good image and must not be written.`);
    }
    if (s.trial?.slot === slot && s.trial.attemptsLeft > 0) {
      throw new FirmwardError('conflict', `Slot ${slot} is waiting for its trial boot and must not be written.`);
    }
    // Unbootable before the first byte changes (RAUC: set-state bad before writing; invariant 4).
    await this.#o.bootloader.markBad(slot);
    const path = this.#o.slots[slot];
    let created = false;
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDWR);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
      created = true;
    }
    const size = this.#o.slotSizeBytes;
    // Small network chunks are gathered into one large positional write (fewer syscalls); the
    // SlotWriter contract allows bytes to wait in a cache until `sync`.
    const pending = new Uint8Array(this.#o.writeBufferBytes);
    let pendingBytes = 0;
    let pendingAt = options.offset;
    let position = options.offset;
    let closed = false;
    const flush = async () => {
      let done = 0;
      while (done < pendingBytes) {
        const { bytesWritten } = await handle.write(pending, done, pendingBytes - done, pendingAt + done);
        done += bytesWritten;
      }
      pendingAt += pendingBytes;
      pendingBytes = 0;
    };
    const writeThrough = async (chunk: Uint8Array) => {
      let done = 0;
      while (done < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done, pendingAt + done);
        done += bytesWritten;
      }
      pendingAt += chunk.byteLength;
    };
    return {
      write: async (chunk) => {
        if (closed) throw new FirmwardError('conflict', 'The slot writer is closed.');
        if (position + chunk.byteLength > size) throw new FirmwardError('payload_too_large', `The update does not fit in slot ${slot}.`);
        position += chunk.byteLength;
        if (pendingBytes + chunk.byteLength > pending.byteLength) await flush();
        if (chunk.byteLength >= pending.byteLength) {
          await writeThrough(chunk);
          return;
        }
        pending.set(chunk, pendingBytes);
        pendingBytes += chunk.byteLength;
      },
      sync: async () => {
        if (closed) throw new FirmwardError('conflict', 'The slot writer is closed.');
        await flush();
        await handle.sync();
        // A slot file created just now exists durably only once its directory is synced.
        if (created) {
          await syncDirectory(dirname(path));
          created = false;
        }
      },
      // Bytes not yet synced are dropped, as a power cut would drop them: the agent only ever
      // relies on bytes a sync confirmed (its journal counts synced bytes only).
      close: async () => {
        if (closed) return;
        closed = true;
        pendingBytes = 0;
        await handle.close();
      },
    };
  }

  async *readSlot(slot: Slot, length: number): AsyncIterable<Uint8Array> {
    const end = Math.min(length, this.#o.slotSizeBytes);
    let handle: FileHandle;
    try {
      handle = await open(this.#o.slots[slot], 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      for (let offset = 0; offset < end;) {
        // Not zero-filled first: every byte handed on is one read from the slot.
        const buffer = Buffer.allocUnsafe(Math.min(this.#o.readChunkBytes, end - offset));
        const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, offset);
        if (bytesRead === 0) return;
        offset += bytesRead;
        yield bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead);
      }
    } finally {
      await handle.close();
    }
  }

  async setTrialBoot(slot: Slot): Promise<void> {
    const s = await this.#o.bootloader.read();
    if (slot === s.current || slot === s.committed) throw new FirmwardError('conflict', `Slot ${slot} is already the running one.`);
    // Everything written must be on the medium before the bootloader may start it.
    const handle = await open(this.#o.slots[slot], 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.#o.bootloader.setPrimary(slot);
  }

  async rejectTrial(slot: Slot): Promise<void> {
    const s = await this.#o.bootloader.read();
    if (s.trial?.slot !== slot) throw new FirmwardError('conflict', `Slot ${slot} is not on trial.`);
    await this.#o.bootloader.markBad(slot);
  }

  reboot(): Promise<void> {
    return this.#o.reboot();
  }

  async healthCheck(): Promise<HealthReport> {
    const check = this.#o.healthCheck;
    if (!check) return { healthy: true, detail: 'The device started and its agent runs (no health check is configured).' };
    const r = await runCommand(check.command, { timeoutMs: check.timeoutMs ?? this.#o.commandTimeoutMs });
    const said = lastLine(r.stdout) ?? lastLine(r.stderr);
    if (r.exitCode === 0) return { healthy: true, detail: said ?? 'The health check passed.' };
    if (r.timedOut) return { healthy: false, detail: 'The health check did not finish in time.' };
    if (r.startError) return { healthy: false, detail: `The health check could not run (${r.startError}).` };
    return { healthy: false, detail: said ?? `The health check failed (exit code ${r.exitCode ?? 'none'}).` };
  }

  async commit(slot: Slot): Promise<void> {
    const s = await this.#o.bootloader.read();
    if (slot !== s.current) throw new FirmwardError('conflict', `Only the running slot can be confirmed, not slot ${slot}.`);
    await this.#o.bootloader.markGood(slot);
  }

  /**
   * Readings that cannot be taken fall back to the answer that refuses an update (STYLE principle
   * 9; invariant 3): an unreadable battery counts as on battery at unknown charge, an unreadable
   * busy flag as busy.
   */
  async conditions(): Promise<DeviceConditionsReport> {
    const c = this.#o.conditions;
    const [battery, charging, onMains, signal, busy, power] = await Promise.all([
      this.#read(c.batteryPercent), this.#read(c.charging), this.#read(c.onMains), this.#read(c.signalDbm), this.#read(c.busy),
      this.#read(c.powerStable ?? null),
    ]);
    const batteryPercent = battery === null ? null : clampPercent(Number(battery));
    const mains = c.onMains ? onMains === '1' || onMains?.toLowerCase() === 'true' : c.batteryPercent === null;
    const signalDbm = signal === null || !Number.isFinite(Number(signal)) || signal === '' ? null : Number(signal);
    return {
      powerSource: mains ? 'mains' : 'battery',
      batteryPercent,
      charging: charging !== null && /^(charging|full|1|true)$/i.test(charging),
      signalDbm,
      busy: c.busy !== null && (busy === null || /^(1|true|busy)$/i.test(busy)),
      freeStorageBytes: this.#o.slotSizeBytes,
      // An unreadable source counts as unstable: the device would rather wait than guess.
      ...(c.powerStable ? { powerStable: power !== null && !/^(0|false|unstable)$/i.test(power.trim()) } : {}),
    };
  }

  async #read(source: ValueSource | null): Promise<string | null> {
    if (!source) return null;
    if ('file' in source) {
      try {
        return (await readFile(source.file, 'utf8')).split('\n')[0]?.trim() ?? null;
      } catch {
        return null;
      }
    }
    const r = await runCommand(source.command, { timeoutMs: this.#o.commandTimeoutMs });
    return r.exitCode === 0 ? lastLine(r.stdout) : null;
  }

  async loadJournal(): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(this.#o.journalPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // parseJournal reports it and starts without it; the boot state still tells what runs.
      return { unreadable: text.slice(0, 80) };
    }
  }

  saveJournal(journal: AgentJournal): Promise<void> {
    return writeFileAtomic(this.#o.journalPath, JSON.stringify(journal));
  }
}

function lastLine(text: string): string | null {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.at(-1)?.slice(0, 200) ?? null;
}

function clampPercent(value: number): number | null {
  if (!Number.isFinite(value)) return null;
  return Math.min(100, Math.max(0, value));
}
