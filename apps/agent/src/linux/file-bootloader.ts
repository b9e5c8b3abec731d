/**
 * A bootloader kept in a state file in the U-Boot variable format (`NAME=value` lines, see
 * `UBOOT_VARS`), in-process: what the fault harness and tests use instead of real U-Boot. `boot`
 * applies the same trial/fallback rules the U-Boot boot script in docs/agent.md applies (bootcount:
 * every try counts; past the limit the known-good slot boots).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Slot } from '@firmward/core';
import { parseEnv, stateFromEnv, UBOOT_VARS } from './bootloader.ts';
import type { Bootloader, BootloaderState } from './bootloader.ts';
import { writeFileAtomic } from './durable-file.ts';

export function envText(state: BootloaderState): string {
  return [
    `${UBOOT_VARS.current}=${state.current}`,
    `${UBOOT_VARS.committed}=${state.committed}`,
    `${UBOOT_VARS.trial}=${state.trial?.slot ?? ''}`,
    `${UBOOT_VARS.trialLeft}=${state.trial?.attemptsLeft ?? 0}`,
    `${UBOOT_VARS.goodA}=${state.good.a ? 1 : 0}`,
    `${UBOOT_VARS.goodB}=${state.good.b ? 1 : 0}`,
    '',
  ].join('\n');
}

export class FileBootloader implements Bootloader {
  readonly path: string;
  readonly trialBoots: number;

  constructor(path: string, trialBoots = 3) {
    this.path = path;
    this.trialBoots = trialBoots;
  }

  async read(): Promise<BootloaderState> {
    return stateFromEnv(parseEnv(await readFile(this.path, 'utf8')));
  }

  async #update(change: (s: BootloaderState) => BootloaderState): Promise<void> {
    await writeFileAtomic(this.path, envText(change(await this.read())));
  }

  markBad(slot: Slot): Promise<void> {
    return this.#update((s) => ({
      ...s, good: { ...s.good, [slot]: false }, trial: s.trial?.slot === slot ? { slot, attemptsLeft: 0 } : s.trial,
    }));
  }

  setPrimary(slot: Slot): Promise<void> {
    return this.#update((s) => ({ ...s, good: { ...s.good, [slot]: true }, trial: { slot, attemptsLeft: this.trialBoots } }));
  }

  markGood(slot: Slot): Promise<void> {
    return this.#update((s) => ({ ...s, good: { ...s.good, [slot]: true }, committed: slot, trial: null }));
  }
}

/** A fresh environment: slot `a` known-good and running, `b` empty. */
export async function initBootEnv(path: string): Promise<void> {
  await writeFileAtomic(path, envText({ current: 'a', committed: 'a', trial: null, good: { a: true, b: false } }));
}

/**
 * One power-on, as the boot script does it: a trial slot with boots left is tried (each try
 * counts); a try whose image does not start costs one attempt; once none are left, the known-good
 * slot boots and the trial slot is marked bad. Synchronous, like firmware.
 */
export function bootEnvFile(path: string, starts: (slot: Slot) => boolean): { slot: Slot; fellBack: boolean } {
  const state = stateFromEnv(parseEnv(readFileSync(path, 'utf8')));
  let slot = state.committed;
  let fellBack = false;
  const trial = state.trial;
  if (trial && trial.attemptsLeft > 0) {
    while (trial.attemptsLeft > 0) {
      trial.attemptsLeft--;
      if (state.good[trial.slot] && starts(trial.slot)) {
        slot = trial.slot;
        break;
      }
    }
    if (slot !== trial.slot) {
      fellBack = true;
      state.good[trial.slot] = false;
    }
  }
  state.current = slot;
  writeFileAtomicSync(path, envText(state));
  return { slot, fellBack };
}

function writeFileAtomicSync(path: string, text: string): void {
  const temp = `${path}.boot.tmp`;
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
