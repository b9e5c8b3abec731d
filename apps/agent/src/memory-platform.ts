/**
 * The fake beside the platform port (STYLE principle 14): A/B slots in memory, a bootloader with
 * U-Boot-style bounded trial boots, a journal file, and power that can be cut between any two
 * operations. The simulator builds its devices on it; tests use it to cut power at every point
 * (invariant 7).
 *
 * `MemoryHardware` is what survives a power cut (slots, boot environment, journal);
 * `MemoryPlatform` is one boot of it: once the power is cut, the device reboots or the agent
 * crashes, every call on the old session fails, so an old agent can never touch the device again.
 */
import { FirmwardError } from '@firmward/core';
import type { Slot } from '@firmward/core';
import { readFirmwareHeader } from './firmware-image.ts';
import type { FirmwareHeader } from './firmware-image.ts';
import type { AgentJournal } from './journal.ts';
import type {
  AgentPlatform, BootState, DeviceConditionsReport, DeviceIdentity, HealthReport, SlotWriter, TrialBoot,
} from './platform.ts';

export interface MemoryHardwareOptions {
  identity: DeviceIdentity;
  /** Size of each slot. */
  slotCapacityBytes: number;
  /** The image slot `a` holds from the factory: committed and running. */
  factoryImage: Uint8Array;
  /** Boots a new slot gets before the bootloader falls back (U-Boot bootlimit). 3 by default. */
  trialAttempts?: number;
  /** Whether an image that reads starts at all; every readable image starts by default. */
  imageStarts?: (header: FirmwareHeader, slot: Slot) => boolean;
}

export type BootReason = 'power-on' | 'reboot';
export type InterruptKind = 'power-cut' | 'crash';

export interface BootRecord {
  reason: BootReason;
  slot: Slot;
  version: string | null;
  /** The bootloader gave up on a trial slot during this boot. */
  fellBack: boolean;
}

interface SlotStore {
  /** What reads see: durable bytes plus writes not yet synced. */
  cache: Uint8Array;
  durable: Uint8Array;
  /** Unsynced ranges of `cache`. */
  dirty: { offset: number; length: number }[];
  /** The bootloader may start it (committed or on trial); cleared while it is written or after it is rejected. */
  bootable: boolean;
}

function powerLost(): FirmwardError {
  return new FirmwardError('internal', 'The device lost power.', { detail: { powerLost: true } });
}

export class MemoryHardware {
  readonly identity: DeviceIdentity;
  readonly slotCapacityBytes: number;
  readonly trialAttempts: number;
  readonly #imageStarts: (header: FirmwareHeader, slot: Slot) => boolean;
  readonly #slots: Record<Slot, SlotStore>;
  #committed: Slot = 'a';
  #trial: TrialBoot | null = null;
  #running: Slot = 'a';
  #journal: string | null = null;
  #session = 0;
  #sessionAbort = new AbortController();
  #poweredOn = false;
  #interrupt: { after: number; kind: InterruptKind } | null = null;
  #bootListeners = new Set<(record: BootRecord) => void>();
  #interruptListeners = new Set<(kind: InterruptKind) => void>();
  /** Every boot so far, oldest first. */
  readonly boots: BootRecord[] = [];
  /** Platform operations so far, across all sessions (to aim interruptions in tests). */
  operations = 0;

  constructor(options: MemoryHardwareOptions) {
    this.identity = options.identity;
    this.slotCapacityBytes = options.slotCapacityBytes;
    this.trialAttempts = options.trialAttempts ?? 3;
    this.#imageStarts = options.imageStarts ?? (() => true);
    if (options.factoryImage.byteLength > options.slotCapacityBytes) {
      throw new FirmwardError('invalid_input', 'The factory image does not fit in a slot.');
    }
    const store = (): SlotStore => ({
      cache: new Uint8Array(options.slotCapacityBytes), durable: new Uint8Array(options.slotCapacityBytes), dirty: [], bootable: false,
    });
    this.#slots = { a: store(), b: store() };
    this.#slots.a.cache.set(options.factoryImage);
    this.#slots.a.durable.set(options.factoryImage);
    this.#slots.a.bootable = true;
    if (!this.#startable('a')) throw new FirmwardError('invalid_input', 'The factory image does not start.');
  }

  get poweredOn(): boolean {
    return this.#poweredOn;
  }

  /** The slot running now and the version in it (what the device must report). */
  get running(): { slot: Slot; version: string | null } {
    return { slot: this.#running, version: this.#versionIn(this.#running) };
  }

  get committedSlot(): Slot {
    return this.#committed;
  }

  /** Starts the device if it is off: the bootloader picks a slot. */
  powerOn(): BootRecord {
    if (this.#poweredOn) throw new FirmwardError('conflict', 'The device is already on.');
    return this.#boot('power-on');
  }

  /** Cuts the power now: unsynced writes are lost, the running session dies. */
  powerCut(): void {
    if (!this.#poweredOn) return;
    this.#poweredOn = false;
    this.#interrupt = null;
    this.#endSession();
    for (const slot of ['a', 'b'] as const) {
      const store = this.#slots[slot];
      store.cache.set(store.durable);
      store.dirty = [];
    }
    for (const listener of [...this.#interruptListeners]) listener('power-cut');
  }

  /** The agent process dies but the power stays: its session ends, written data stays in the cache. */
  crashAgent(): void {
    this.#interrupt = null;
    this.#endSession();
    for (const listener of [...this.#interruptListeners]) listener('crash');
  }

  /**
   * Cuts the power (or crashes the agent) right before the `n`-th platform operation from now
   * (1 = the next one); null disarms it.
   */
  interruptAfter(operations: number | null, kind: InterruptKind = 'power-cut'): void {
    this.#interrupt = operations === null ? null : { after: Math.max(1, Math.floor(operations)), kind };
  }

  /** A new view of the running device for a new agent; the previous one stops working. */
  platform(): MemoryPlatform {
    return new MemoryPlatform(this, this.newSession());
  }

  /** Ends the current session and opens the next (for platforms built on this hardware). */
  newSession(): number {
    if (!this.#poweredOn) throw powerLost();
    return this.#openSession();
  }

  onBoot(listener: (record: BootRecord) => void): () => void {
    this.#bootListeners.add(listener);
    return () => this.#bootListeners.delete(listener);
  }

  /** Hears power cuts and agent crashes (the agent's session is over either way). */
  onInterrupt(listener: (kind: InterruptKind) => void): () => void {
    this.#interruptListeners.add(listener);
    return () => this.#interruptListeners.delete(listener);
  }

  /** A copy of what is durably stored in a slot (for tests). */
  slotBytes(slot: Slot, length: number): Uint8Array {
    return this.#slots[slot].durable.slice(0, Math.min(length, this.slotCapacityBytes));
  }

  // ─── used by MemoryPlatform ────────────────────────────────────────────────────────────────

  /** @internal Counts one operation of `session`; throws when the session is over or the power goes now. */
  tick(session: number): void {
    this.assertAlive(session);
    this.operations++;
    if (this.#interrupt !== null) {
      this.#interrupt.after--;
      if (this.#interrupt.after <= 0) {
        if (this.#interrupt.kind === 'power-cut') this.powerCut();
        else this.crashAgent();
        throw powerLost();
      }
    }
  }

  /** @internal */
  assertAlive(session: number): void {
    if (!this.#poweredOn || session !== this.#session) throw powerLost();
  }

  /** @internal Aborted when the session ends (a long operation stops right there). */
  sessionSignal(session: number): AbortSignal {
    this.assertAlive(session);
    return this.#sessionAbort.signal;
  }

  /** @internal */
  bootState(): BootState {
    return {
      activeSlot: this.#running,
      trial: this.#trial ? { ...this.#trial } : null,
      versions: { a: this.#versionIn('a'), b: this.#versionIn('b') },
    };
  }

  /** @internal */
  prepareWrite(slot: Slot): void {
    if (slot === this.#running || slot === this.#committed) {
      throw new FirmwardError('conflict', `Slot ${slot} holds the running or known-good image and must not be written.`);
    }
    if (this.#trial?.slot === slot && this.#trial.attemptsLeft > 0) {
      throw new FirmwardError('conflict', `Slot ${slot} is waiting for its trial boot and must not be written.`);
    }
    // Unbootable before the first byte changes (RAUC: set-state bad before writing).
    this.#slots[slot].bootable = false;
    if (this.#trial?.slot === slot) this.#trial = null;
  }

  /** @internal */
  write(slot: Slot, offset: number, bytes: Uint8Array): void {
    const store = this.#slots[slot];
    if (offset < 0 || offset + bytes.byteLength > this.slotCapacityBytes) {
      throw new FirmwardError('payload_too_large', `The update does not fit in slot ${slot}.`);
    }
    if (store.bootable) throw new FirmwardError('conflict', `Slot ${slot} is bootable and must not be written.`);
    store.cache.set(bytes, offset);
    store.dirty.push({ offset, length: bytes.byteLength });
  }

  /** @internal */
  sync(slot: Slot): void {
    const store = this.#slots[slot];
    for (const { offset, length } of store.dirty) store.durable.set(store.cache.subarray(offset, offset + length), offset);
    store.dirty = [];
  }

  /** @internal */
  read(slot: Slot, offset: number, length: number): Uint8Array {
    return this.#slots[slot].cache.slice(offset, Math.min(offset + length, this.slotCapacityBytes));
  }

  /** @internal Atomic: one environment write. */
  setTrialBoot(slot: Slot): void {
    if (slot === this.#running || slot === this.#committed) throw new FirmwardError('conflict', `Slot ${slot} is already the running one.`);
    this.sync(slot);
    // Like a real boot environment, it does not look inside: whether the image starts shows at boot.
    this.#slots[slot].bootable = true;
    this.#trial = { slot, attemptsLeft: this.trialAttempts };
  }

  /** @internal */
  rejectTrial(slot: Slot): void {
    if (this.#trial?.slot !== slot) throw new FirmwardError('conflict', `Slot ${slot} is not on trial.`);
    this.#slots[slot].bootable = false;
    this.#trial = { slot, attemptsLeft: 0 };
  }

  /** @internal */
  commit(slot: Slot): void {
    if (slot !== this.#running) throw new FirmwardError('conflict', `Only the running slot can be confirmed, not slot ${slot}.`);
    this.#committed = slot;
    this.#slots[slot].bootable = true;
    this.#trial = null;
  }

  /** @internal A clean restart: caches are flushed first. */
  reboot(session: number): BootRecord {
    this.assertAlive(session);
    this.sync('a');
    this.sync('b');
    this.#poweredOn = false;
    this.#endSession();
    return this.#boot('reboot');
  }

  /** @internal */
  loadJournal(): unknown {
    return this.#journal === null ? null : JSON.parse(this.#journal) as unknown;
  }

  /** @internal Atomic: the whole text is replaced at once (write, fsync, rename). */
  saveJournal(journal: AgentJournal): void {
    this.#journal = JSON.stringify(journal);
  }

  // ─── the bootloader ────────────────────────────────────────────────────────────────────────

  #boot(reason: BootReason): BootRecord {
    let fellBack = false;
    let slot: Slot = this.#committed;
    const trial = this.#trial;
    if (trial && trial.attemptsLeft > 0) {
      // U-Boot bootcount: every try counts; past the limit, altbootcmd boots the committed slot.
      while (trial.attemptsLeft > 0) {
        trial.attemptsLeft--;
        if (this.#startable(trial.slot)) {
          slot = trial.slot;
          break;
        }
      }
      if (slot !== trial.slot) {
        fellBack = true;
        this.#slots[trial.slot].bootable = false;
      }
    }
    this.#running = slot;
    this.#poweredOn = true;
    this.#openSession();
    const record: BootRecord = { reason, slot, version: this.#versionIn(slot), fellBack };
    this.boots.push(record);
    for (const listener of [...this.#bootListeners]) listener(record);
    return record;
  }

  #startable(slot: Slot): boolean {
    const store = this.#slots[slot];
    if (!store.bootable) return false;
    const header = readFirmwareHeader(store.durable);
    return header !== null && this.#imageStarts(header, slot);
  }

  #versionIn(slot: Slot): string | null {
    const store = this.#slots[slot];
    if (!store.bootable) return null;
    return readFirmwareHeader(store.durable)?.version ?? null;
  }

  #openSession(): number {
    this.#endSession();
    this.#sessionAbort = new AbortController();
    return this.#session;
  }

  #endSession(): void {
    this.#session++;
    this.#sessionAbort.abort(powerLost());
  }
}

export interface MemoryPlatformHooks {
  conditions?: () => DeviceConditionsReport;
  healthCheck?: (running: { slot: Slot; version: string | null }) => HealthReport;
}

/**
 * One boot of a `MemoryHardware` as an `AgentPlatform`. Every call counts as one operation for
 * `cutPowerAfter`, and fails once the session is over.
 *
 * @example
 * const hardware = new MemoryHardware({ identity, slotCapacityBytes: 1 << 20, factoryImage });
 * hardware.powerOn();
 * const agent = new Agent({ platform: hardware.platform(), transport, clock });
 */
export class MemoryPlatform implements AgentPlatform {
  readonly hardware: MemoryHardware;
  readonly session: number;
  #hooks: MemoryPlatformHooks = {};

  constructor(hardware: MemoryHardware, session: number) {
    this.hardware = hardware;
    this.session = session;
  }

  /** Replaces how conditions and health are reported (the simulator drives them from a profile). */
  setHooks(hooks: MemoryPlatformHooks): this {
    this.#hooks = hooks;
    return this;
  }

  /** Runs one operation: counts it, fails if the power went, and fails if it went while waiting. */
  protected async op<T>(fn: () => T | Promise<T>): Promise<T> {
    this.hardware.tick(this.session);
    await Promise.resolve();
    this.hardware.assertAlive(this.session);
    const value = await fn();
    this.hardware.assertAlive(this.session);
    return value;
  }

  /** Aborted when this boot ends (for operations that take time). */
  protected get signal(): AbortSignal {
    return this.hardware.sessionSignal(this.session);
  }

  identity(): Promise<DeviceIdentity> {
    return this.op(() => ({ ...this.hardware.identity }));
  }

  bootState(): Promise<BootState> {
    return this.op(() => this.hardware.bootState());
  }

  openSlotWriter(slot: Slot, options: { offset: number }): Promise<SlotWriter> {
    return this.op(() => {
      this.hardware.prepareWrite(slot);
      let position = options.offset;
      let closed = false;
      const open = () => {
        if (closed) throw new FirmwardError('conflict', 'The slot writer is closed.');
      };
      return {
        write: (chunk: Uint8Array) => this.op(() => {
          open();
          this.hardware.write(slot, position, chunk);
          position += chunk.byteLength;
        }),
        sync: () => this.op(() => {
          open();
          this.hardware.sync(slot);
        }),
        close: () => this.op(() => {
          closed = true;
        }),
      };
    });
  }

  async *readSlot(slot: Slot, length: number): AsyncIterable<Uint8Array> {
    const chunkBytes = 64 * 1024;
    const end = Math.min(length, this.hardware.slotCapacityBytes);
    for (let offset = 0; offset < end; offset += chunkBytes) {
      yield await this.op(() => this.hardware.read(slot, offset, Math.min(chunkBytes, end - offset)));
    }
  }

  setTrialBoot(slot: Slot): Promise<void> {
    return this.op(() => this.hardware.setTrialBoot(slot));
  }

  rejectTrial(slot: Slot): Promise<void> {
    return this.op(() => this.hardware.rejectTrial(slot));
  }

  reboot(): Promise<void> {
    return this.op(() => {
      // The restart runs after the agent's call returns, as on a real device.
      setImmediate(() => {
        try {
          this.hardware.reboot(this.session);
        } catch {
          // The power went first; the power-on will boot it.
        }
      });
    });
  }

  healthCheck(): Promise<HealthReport> {
    return this.op(() => this.#hooks.healthCheck?.(this.hardware.running) ?? { healthy: true, detail: 'All good.' });
  }

  commit(slot: Slot): Promise<void> {
    return this.op(() => this.hardware.commit(slot));
  }

  conditions(): Promise<DeviceConditionsReport> {
    return this.op(() => this.#hooks.conditions?.() ?? {
      powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: null, busy: false,
      freeStorageBytes: this.hardware.slotCapacityBytes,
    });
  }

  loadJournal(): Promise<unknown> {
    return this.op(() => this.hardware.loadJournal());
  }

  saveJournal(journal: AgentJournal): Promise<void> {
    return this.op(() => this.hardware.saveJournal(journal));
  }
}
