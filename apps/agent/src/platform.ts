/**
 * The device side of the agent: everything that touches hardware. The agent owns the update's
 * state machine; the platform owns the slots, the bootloader and the sensors. The irreversible
 * steps (writing the inactive slot, switching, confirming, rolling back) are required hooks here
 * (STYLE principle 6), so no platform can forget one.
 *
 * A real Linux platform maps these onto a bootloader interface (see the RAUC custom backend:
 * set-state bad before writing, set-primary to switch, mark-good to commit); the simulator maps
 * them onto memory.
 */
import type { DeviceReport, Slot } from '@firmward/core';
import type { AgentJournal } from './journal.ts';

export interface DeviceIdentity {
  deviceId: string;
  vendor: string;
  model: string;
  hardwareRevision: string;
}

/** A slot being tried after a switch: the bootloader boots it at most `attemptsLeft` more times. */
export interface TrialBoot {
  slot: Slot;
  /**
   * Boots of this slot the bootloader still allows before it falls back. When the bootloader gave
   * up on the slot it keeps reporting the trial with 0 here (and the slot's version as null)
   * until the agent calls `commit` on the slot that runs instead.
   */
  attemptsLeft: number;
}

export interface BootState {
  /** The slot the device is running from right now. */
  activeSlot: Slot;
  trial: TrialBoot | null;
  /** The version in each slot the bootloader may boot; null for a slot that is empty, being written or rejected. */
  versions: { a: string | null; b: string | null };
}

export interface SlotWriter {
  /** Writes the next bytes; may stay in a cache until `sync`. */
  write(chunk: Uint8Array): Promise<void>;
  /** Returns once every byte written so far is durable (fsync). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface HealthReport {
  healthy: boolean;
  /** One sentence, e.g. "The radio did not come up." */
  detail: string;
}

export type DeviceConditionsReport = Pick<DeviceReport, 'powerSource' | 'batteryPercent' | 'charging' | 'signalDbm' | 'busy' | 'freeStorageBytes'> & {
  /** false when the supply browns out or flaps right now (e.g. an under-voltage flag); absent means stable. */
  powerStable?: boolean;
};

export interface AgentPlatform {
  identity(): Promise<DeviceIdentity>;
  bootState(): Promise<BootState>;
  /**
   * Opens the given (inactive) slot for writing from `offset` on. Opening it makes the slot
   * unbootable until `setTrialBoot` (RAUC: set-state bad before writing), so a half-written
   * image can never be started. Throws when asked to write the running or committed slot.
   */
  openSlotWriter(slot: Slot, options: { offset: number }): Promise<SlotWriter>;
  /** Reads back the first `length` bytes of a slot (for verification after writing). */
  readSlot(slot: Slot, length: number): AsyncIterable<Uint8Array>;
  /** Atomically makes `slot` the one to boot next, on trial: a bounded number of attempts, then the bootloader falls back by itself. */
  setTrialBoot(slot: Slot): Promise<void>;
  /**
   * Marks the trial slot bad so the next boot goes back to the committed slot (RAUC mark-bad).
   * Used when the new version booted but failed its health check.
   */
  rejectTrial(slot: Slot): Promise<void>;
  /** Restarts the device. May return before the restart happens; the agent does nothing after it. */
  reboot(): Promise<void>;
  healthCheck(): Promise<HealthReport>;
  /** Makes `slot` the committed, known-good slot and ends any trial (RAUC mark-good). */
  commit(slot: Slot): Promise<void>;
  conditions(): Promise<DeviceConditionsReport>;
  /** The agent's own persistent state as last saved, or null; the agent checks its shape. */
  loadJournal(): Promise<unknown>;
  /** Replaces the journal atomically (write a temporary file, fsync, rename): a power cut leaves the old or the new one, never a mix. */
  saveJournal(journal: AgentJournal): Promise<void>;
}
