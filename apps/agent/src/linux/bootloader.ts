/**
 * The boot selection and the boot-attempt counter, behind one small interface with two backends:
 * a custom script in the manner of RAUC's custom bootloader backend, and the U-Boot environment
 * through `fw_printenv` / `fw_setenv -s` (one environment write per change, power-fail safe with a
 * redundant environment). The contract each backend must keep is in docs/agent.md.
 *
 * Mapping onto the platform's irreversible steps (STYLE principle 6):
 * - before writing a slot: `set-state <slot> bad` (nothing half-written is ever bootable, invariant 4)
 * - switch: `set-primary <slot>` (boot it next, on trial, a bounded number of times)
 * - reject a trial: `set-state <slot> bad` (the next boot goes back to the known-good slot)
 * - commit: `set-state <slot> good` (mark-good: the slot becomes the known-good one, the trial ends)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirmwardError } from '@firmward/core';
import type { Slot } from '@firmward/core';
import { runCommand } from './run-command.ts';

export interface BootloaderState {
  /** The slot running now. */
  current: Slot;
  /** The known-good slot the bootloader falls back to. */
  committed: Slot;
  /** The slot on trial and the boots it has left (0 once the bootloader gave up, until a commit). */
  trial: { slot: Slot; attemptsLeft: number } | null;
  /** Slots the bootloader may start. */
  good: Record<Slot, boolean>;
}

export interface Bootloader {
  read(): Promise<BootloaderState>;
  /** Makes `slot` unbootable (before writing it, or to reject its trial). */
  markBad(slot: Slot): Promise<void>;
  /** Boots `slot` next, on trial (bounded attempts, then fallback). */
  setPrimary(slot: Slot): Promise<void>;
  /** Makes `slot` the known-good one and ends any trial. */
  markGood(slot: Slot): Promise<void>;
}

function bootloaderError(message: string, detail: Record<string, unknown>): FirmwardError {
  return new FirmwardError('internal', message, { detail });
}

function parseSlot(text: string, what: string): Slot {
  const value = text.trim().toLowerCase();
  if (value === 'a' || value === 'b') return value;
  throw bootloaderError('The bootloader gave an answer the agent does not understand.', { what, got: text.trim().slice(0, 80) });
}

// ─── custom script ───────────────────────────────────────────────────────────────────────────

export interface ScriptBootloaderOptions {
  /** argv prefix; the backend appends `<cmd> [args…]` (RAUC: `<handler> <cmd> [args…]`, no shell). */
  command: readonly string[];
  timeoutMs: number;
}

/**
 * RAUC's custom backend contract (get-primary, set-primary, get-state, set-state, get-current)
 * plus one extension RAUC keeps inside its own U-Boot/GRUB backends: `get-trial`, which prints
 * `none` or `<slot> <attempts-left>`, because the agent must tell a pending trial from a fallback
 * (invariant 7: report truthfully what runs and what happened).
 */
export class ScriptBootloader implements Bootloader {
  readonly #options: ScriptBootloaderOptions;

  constructor(options: ScriptBootloaderOptions) {
    this.#options = options;
  }

  async #call(...args: string[]): Promise<string> {
    const r = await runCommand([...this.#options.command, ...args], { timeoutMs: this.#options.timeoutMs });
    if (r.exitCode !== 0) {
      throw bootloaderError('The bootloader helper failed, so the boot selection was left as it was.', {
        args, exitCode: r.exitCode, timedOut: r.timedOut, startError: r.startError, stderr: r.stderr.trim().slice(0, 200),
      });
    }
    return r.stdout.trim();
  }

  async read(): Promise<BootloaderState> {
    const [current, primary, trialText, stateA, stateB] = await Promise.all([
      this.#call('get-current'), this.#call('get-primary'), this.#call('get-trial'), this.#call('get-state', 'a'), this.#call('get-state', 'b'),
    ]);
    const good = { a: parseState(stateA), b: parseState(stateB) };
    const trial = parseTrial(trialText);
    const primarySlot = parseSlot(primary, 'get-primary');
    // While a trial has boots left, the primary is the trial slot and the known-good one is the other.
    const committed: Slot = trial && trial.attemptsLeft > 0 && trial.slot === primarySlot ? other(primarySlot) : primarySlot;
    return { current: parseSlot(current, 'get-current'), committed, trial, good };
  }

  async markBad(slot: Slot): Promise<void> {
    await this.#call('set-state', slot, 'bad');
  }

  async setPrimary(slot: Slot): Promise<void> {
    await this.#call('set-primary', slot);
  }

  async markGood(slot: Slot): Promise<void> {
    await this.#call('set-state', slot, 'good');
  }
}

function parseState(text: string): boolean {
  if (text === 'good') return true;
  if (text === 'bad') return false;
  throw bootloaderError('The bootloader gave an answer the agent does not understand.', { what: 'get-state', got: text.slice(0, 80) });
}

function parseTrial(text: string): BootloaderState['trial'] {
  if (text === 'none' || text === '') return null;
  const m = /^([ab])\s+(\d+)$/i.exec(text);
  if (!m?.[1] || m[2] === undefined) {
    throw bootloaderError('The bootloader gave an answer the agent does not understand.', { what: 'get-trial', got: text.slice(0, 80) });
  }
  return { slot: parseSlot(m[1], 'get-trial'), attemptsLeft: Number(m[2]) };
}

export function other(slot: Slot): Slot {
  return slot === 'a' ? 'b' : 'a';
}

// ─── U-Boot environment ──────────────────────────────────────────────────────────────────────

/** The variables the U-Boot boot script and the agent share (see docs/agent.md for the boot script). */
export const UBOOT_VARS = {
  current: 'FW_CURRENT',
  committed: 'FW_COMMITTED',
  trial: 'FW_TRIAL',
  trialLeft: 'FW_TRIAL_LEFT',
  goodA: 'FW_GOOD_A',
  goodB: 'FW_GOOD_B',
} as const;

export interface UBootEnvOptions {
  printenv: readonly string[];
  setenv: readonly string[];
  /** Boots a new slot gets on trial before the boot script falls back (RAUC's boot-attempts, default 3). */
  trialBoots: number;
  timeoutMs: number;
}

export class UBootEnvBootloader implements Bootloader {
  readonly #options: UBootEnvOptions;

  constructor(options: UBootEnvOptions) {
    this.#options = options;
  }

  async #env(): Promise<Map<string, string>> {
    const r = await runCommand([...this.#options.printenv], { timeoutMs: this.#options.timeoutMs });
    if (r.exitCode !== 0) {
      throw bootloaderError('The bootloader environment could not be read.', {
        exitCode: r.exitCode, timedOut: r.timedOut, startError: r.startError, stderr: r.stderr.trim().slice(0, 200),
      });
    }
    return parseEnv(r.stdout);
  }

  /** One `fw_setenv -s` call: every variable lands in one environment write, or none does. */
  async #set(values: Record<string, string>): Promise<void> {
    const script = Object.entries(values).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
    const dir = await mkdtemp(join(tmpdir(), 'firmward-env-'));
    let r;
    try {
      const file = join(dir, 'script');
      await writeFile(file, script);
      r = await runCommand([...this.#options.setenv, '-s', file], { timeoutMs: this.#options.timeoutMs });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (r.exitCode !== 0) {
      throw bootloaderError('The bootloader environment could not be written, so the boot selection was left as it was.', {
        exitCode: r.exitCode, timedOut: r.timedOut, startError: r.startError, stderr: r.stderr.trim().slice(0, 200),
      });
    }
  }

  async read(): Promise<BootloaderState> {
    return stateFromEnv(await this.#env());
  }

  async markBad(slot: Slot): Promise<void> {
    const state = await this.read();
    await this.#set({
      [slot === 'a' ? UBOOT_VARS.goodA : UBOOT_VARS.goodB]: '0',
      ...(state.trial?.slot === slot ? { [UBOOT_VARS.trialLeft]: '0' } : {}),
    });
  }

  async setPrimary(slot: Slot): Promise<void> {
    await this.#set({
      [slot === 'a' ? UBOOT_VARS.goodA : UBOOT_VARS.goodB]: '1',
      [UBOOT_VARS.trial]: slot,
      [UBOOT_VARS.trialLeft]: String(this.#options.trialBoots),
    });
  }

  async markGood(slot: Slot): Promise<void> {
    await this.#set({
      [slot === 'a' ? UBOOT_VARS.goodA : UBOOT_VARS.goodB]: '1',
      [UBOOT_VARS.committed]: slot,
      [UBOOT_VARS.trial]: '',
      [UBOOT_VARS.trialLeft]: '0',
    });
  }
}

/** `fw_printenv` output (`NAME=value` per line) as a map. */
export function parseEnv(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0 || line.startsWith('#')) continue;
    env.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return env;
}

export function stateFromEnv(env: Map<string, string>): BootloaderState {
  const committed = parseSlot(env.get(UBOOT_VARS.committed) ?? '', UBOOT_VARS.committed);
  const trialSlot = env.get(UBOOT_VARS.trial) ?? '';
  const left = Number(env.get(UBOOT_VARS.trialLeft) ?? '0');
  const trial = trialSlot === '' ? null : { slot: parseSlot(trialSlot, UBOOT_VARS.trial), attemptsLeft: Number.isInteger(left) && left > 0 ? left : 0 };
  return {
    // A boot script that does not record the slot it started leaves the committed one as the answer.
    current: parseSlot(env.get(UBOOT_VARS.current) ?? committed, UBOOT_VARS.current),
    committed,
    trial,
    good: { a: env.get(UBOOT_VARS.goodA) === '1', b: env.get(UBOOT_VARS.goodB) === '1' },
  };
}
