/**
 * A device on the Linux platform with plain files as slots and a file-kept bootloader, for tests,
 * the fault harness and benches. `FaultyPlatform` wraps its platform the way the memory hardware
 * cuts power: right before the n-th operation the session dies (every later call throws, the agent
 * is abandoned mid-await), and the bytes written since the last fsync are overwritten with junk —
 * the worst a power cut can leave in a page cache that never reached the medium.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FirmwardError } from '@firmward/core';
import type { Slot } from '@firmward/core';
import { readFirmwareHeader } from '../../src/firmware-image.ts';
import type { AgentJournal } from '../../src/journal.ts';
import { parseEnv, ScriptBootloader, stateFromEnv, UBootEnvBootloader } from '../../src/linux/bootloader.ts';
import type { Bootloader } from '../../src/linux/bootloader.ts';
import { bootEnvFile, FileBootloader, initBootEnv } from '../../src/linux/file-bootloader.ts';
import { LinuxPlatform } from '../../src/linux/linux-platform.ts';
import type { ConditionSources, LinuxPlatformOptions } from '../../src/linux/linux-platform.ts';
import type { AgentPlatform, BootState, DeviceConditionsReport, DeviceIdentity, HealthReport, SlotWriter } from '../../src/platform.ts';

const WRITE_PIECE_BYTES = 4096;

export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;

export type BackendKind = 'file' | 'script' | 'uboot';

export interface FileDeviceOptions {
  dir: string;
  identity: DeviceIdentity;
  factoryImage: Uint8Array;
  slotSizeBytes: number;
  backend: BackendKind;
  /** Whether the bootloader manages to start an image with this version (a broken kernel does not). */
  starts?: (version: string) => boolean;
  healthCheck?: { command: string[] } | null;
  conditions?: Partial<ConditionSources>;
  commandTimeoutMs?: number;
}

export const NO_CONDITIONS: ConditionSources = { batteryPercent: null, charging: null, onMains: null, signalDbm: null, busy: null };

export class FileDevice {
  readonly options: FileDeviceOptions;
  readonly slots: Record<Slot, string>;
  readonly statePath: string;
  readonly journalPath: string;
  readonly bootloader: Bootloader;

  constructor(options: FileDeviceOptions) {
    this.options = options;
    this.slots = { a: join(options.dir, 'slot-a.img'), b: join(options.dir, 'slot-b.img') };
    this.statePath = join(options.dir, 'bootloader.env');
    this.journalPath = join(options.dir, 'journal.json');
    this.bootloader = makeBootloader(options.backend, this.statePath, options.commandTimeoutMs ?? 5_000);
  }

  /**
   * The part of the daemon's agent.json that describes this device's hardware: its slot files, the
   * custom bootloader script over its state file, and its journal (the bootloader script backend).
   */
  daemonSettings(): { slots: { a: string; b: string; sizeBytes: number }; bootloader: { kind: 'custom'; command: string[] }; journalPath: string } {
    return {
      slots: { ...this.slots, sizeBytes: this.options.slotSizeBytes },
      bootloader: { kind: 'custom', command: [join(FIXTURES, 'custom-bootloader.sh'), this.statePath] },
      journalPath: this.journalPath,
    };
  }

  /** Factory state: slot a holds the factory image and is known-good, slot b is empty. */
  async install(): Promise<void> {
    await writeFile(this.slots.a, this.options.factoryImage);
    await writeFile(this.slots.b, new Uint8Array(0));
    await initBootEnv(this.statePath);
  }

  /** A power-on: the bootloader applies its trial/fallback rules to the state file. */
  async boot(): Promise<{ slot: Slot; fellBack: boolean }> {
    const headers: Record<Slot, string | null> = { a: await this.#headerVersion('a'), b: await this.#headerVersion('b') };
    const starts = this.options.starts ?? (() => true);
    return bootEnvFile(this.statePath, (slot) => headers[slot] !== null && starts(headers[slot]));
  }

  async #headerVersion(slot: Slot): Promise<string | null> {
    try {
      const handle = await open(this.slots[slot], 'r');
      try {
        const buffer = new Uint8Array(1024);
        const { bytesRead } = await handle.read(buffer, 0, 1024, 0);
        return readFirmwareHeader(buffer.subarray(0, bytesRead))?.version ?? null;
      } finally {
        await handle.close();
      }
    } catch {
      return null;
    }
  }

  /** The slot running and the version in it, from the bootloader's view (what must be reported). */
  async running(): Promise<{ slot: Slot; version: string | null }> {
    const s = await new FileBootloader(this.statePath).read();
    return { slot: s.current, version: s.good[s.current] ? await this.#headerVersion(s.current) : null };
  }

  /** `running()`, read synchronously: exactly what runs at the moment a report is published. */
  runningSync(): { slot: Slot; version: string | null } {
    const s = stateFromEnv(parseEnv(readFileSync(this.statePath, 'utf8')));
    if (!s.good[s.current]) return { slot: s.current, version: null };
    let version: string | null = null;
    try {
      const fd = openSync(this.slots[s.current], 'r');
      try {
        const buffer = new Uint8Array(1024);
        const read = readSync(fd, buffer, 0, 1024, 0);
        version = readFirmwareHeader(buffer.subarray(0, read))?.version ?? null;
      } finally {
        closeSync(fd);
      }
    } catch {
      version = null;
    }
    return { slot: s.current, version };
  }

  async bootloaderState() {
    return new FileBootloader(this.statePath).read();
  }

  async slotBytes(slot: Slot, length: number): Promise<Uint8Array> {
    const all = new Uint8Array(await readFile(this.slots[slot]));
    return all.subarray(0, Math.min(length, all.byteLength));
  }

  platform(reboot: () => Promise<void>, overrides: Partial<LinuxPlatformOptions> = {}): LinuxPlatform {
    return new LinuxPlatform({
      identity: this.options.identity,
      slots: this.slots,
      slotSizeBytes: this.options.slotSizeBytes,
      bootloader: this.bootloader,
      journalPath: this.journalPath,
      version: { kind: 'header' },
      healthCheck: this.options.healthCheck ?? null,
      conditions: { ...NO_CONDITIONS, ...this.options.conditions },
      commandTimeoutMs: this.options.commandTimeoutMs ?? 5_000,
      readChunkBytes: 1 << 20,
    writeBufferBytes: 1 << 20,
      reboot,
      ...overrides,
    });
  }
}

export function makeBootloader(kind: BackendKind, statePath: string, timeoutMs: number): Bootloader {
  switch (kind) {
    case 'file': return new FileBootloader(statePath);
    case 'script': return new ScriptBootloader({ command: [join(FIXTURES, 'custom-bootloader.sh'), statePath], timeoutMs });
    case 'uboot': return new UBootEnvBootloader({
      printenv: [join(FIXTURES, 'fake-fw-env.sh'), statePath, 'printenv'],
      setenv: [join(FIXTURES, 'fake-fw-env.sh'), statePath, 'setenv'],
      trialBoots: 3,
      timeoutMs,
    });
  }
}

export function powerLost(): FirmwardError {
  return new FirmwardError('internal', 'The device lost power.', { detail: { powerLost: true } });
}

/**
 * The platform of one boot, which can die. `before(step)` runs right before every operation (each
 * slot write, fsync, read, bootloader and journal call) and may call `cut()`, which kills the
 * session: unsynced bytes turn to junk and every later call throws, so the agent is abandoned
 * mid-await. `abandon()` ends the session cleanly (a restart: caches were flushed).
 */
export class FaultyPlatform implements AgentPlatform {
  readonly #inner: AgentPlatform;
  readonly #slots: Record<Slot, string>;
  readonly #onCut: () => void;
  readonly #before: (step: string) => Promise<void>;
  #dead = false;
  /** Ranges written but not yet fsynced, per slot. */
  readonly #unsynced: Record<Slot, { offset: number; length: number }[]> = { a: [], b: [] };

  constructor(inner: AgentPlatform, slots: Record<Slot, string>, onCut: () => void, before: (step: string) => Promise<void>) {
    this.#inner = inner;
    this.#slots = slots;
    this.#onCut = onCut;
    this.#before = before;
  }

  get dead(): boolean {
    return this.#dead;
  }

  abandon(): void {
    this.#dead = true;
  }

  /** The power goes now: unsynced bytes are lost (junk), the agent is abandoned. */
  async cut(): Promise<void> {
    if (this.#dead) return;
    this.#dead = true;
    for (const slot of ['a', 'b'] as const) {
      const ranges = this.#unsynced[slot].splice(0);
      if (ranges.length === 0) continue;
      const handle = await open(this.#slots[slot], 'r+');
      try {
        for (const r of ranges) await handle.write(randomBytes(r.length), 0, r.length, r.offset);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    this.#onCut();
  }

  async #op<T>(step: string, fn: () => Promise<T>): Promise<T> {
    if (this.#dead) throw powerLost();
    await this.#before(step);
    if (this.#dead) throw powerLost();
    const value = await fn();
    // The power may have gone while the operation ran: its effect may or may not have landed.
    if (this.#dead) throw powerLost();
    return value;
  }

  identity(): Promise<DeviceIdentity> {
    return this.#op('start', () => this.#inner.identity());
  }

  bootState(): Promise<BootState> {
    return this.#op('boot state', () => this.#inner.bootState());
  }

  openSlotWriter(slot: Slot, options: { offset: number }): Promise<SlotWriter> {
    return this.#op('open slot', async () => {
      const writer = await this.#inner.openSlotWriter(slot, options);
      if (this.#dead) {
        await writer.close();
        throw powerLost();
      }
      let position = options.offset;
      return {
        // Written in 4 KiB pieces, each its own operation: a cut can land at any 4 KiB offset.
        write: async (chunk: Uint8Array) => {
          for (let at = 0; at < chunk.byteLength; at += WRITE_PIECE_BYTES) {
            const piece = chunk.subarray(at, Math.min(at + WRITE_PIECE_BYTES, chunk.byteLength));
            await this.#op('write', async () => {
              this.#unsynced[slot].push({ offset: position, length: piece.byteLength });
              position += piece.byteLength;
              await writer.write(piece);
            });
          }
        },
        sync: () => this.#op('fsync', async () => {
          await writer.sync();
          this.#unsynced[slot] = [];
        }),
        close: () => writer.close(),
      };
    });
  }

  async *readSlot(slot: Slot, length: number): AsyncIterable<Uint8Array> {
    if (this.#dead) throw powerLost();
    for await (const chunk of this.#inner.readSlot(slot, length)) {
      yield await this.#op('read-back', () => Promise.resolve(chunk));
    }
  }

  setTrialBoot(slot: Slot): Promise<void> {
    // setTrialBoot fsyncs the slot first: nothing stays unsynced once it returns.
    return this.#op('switch', async () => {
      await this.#inner.setTrialBoot(slot);
      this.#unsynced[slot] = [];
    });
  }

  rejectTrial(slot: Slot): Promise<void> {
    return this.#op('reject', () => this.#inner.rejectTrial(slot));
  }

  reboot(): Promise<void> {
    return this.#op('reboot', () => this.#inner.reboot());
  }

  healthCheck(): Promise<HealthReport> {
    return this.#op('health check', () => this.#inner.healthCheck());
  }

  commit(slot: Slot): Promise<void> {
    return this.#op('commit', () => this.#inner.commit(slot));
  }

  conditions(): Promise<DeviceConditionsReport> {
    return this.#op('start', () => this.#inner.conditions());
  }

  loadJournal(): Promise<unknown> {
    return this.#op('start', () => this.#inner.loadJournal());
  }

  saveJournal(journal: AgentJournal): Promise<void> {
    return this.#op('journal', () => this.#inner.saveJournal(journal));
  }
}
