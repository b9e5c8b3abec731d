/**
 * What the benchmarks share: the machine description, fixtures built from the core's own types,
 * a release source that hands out a fixed set, temp databases, and a compact table printer.
 * Benchmarks measure and print; they assert nothing about time (numbers drift on a shared machine).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { DEFAULT_THRESHOLDS, releaseId } from '@firmward/core';
import type { Device, Home, HomeSettings, Release } from '@firmward/core';
import type { ReleaseSource } from '@firmward/ports';

// ── the machine ─────────────────────────────────────────────────────────────────────────────

export interface MachineInfo {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  date: string;
}

export function machineInfo(): MachineInfo {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpu = line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // Not Linux: the os module's name is as good as it gets.
  }
  return { cpu, cores: cpus().length, ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10, node: process.version, date: new Date().toISOString() };
}

export function printMachine(): void {
  const m = machineInfo();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Node ${m.node}, ${m.date}`);
}

// ── numbers ─────────────────────────────────────────────────────────────────────────────────

export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number of at least 1, got "${raw}"`);
  return n;
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** Peak resident set of this process so far. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

export function ms(x: number): string {
  if (x >= 10_000) return `${(x / 1000).toFixed(1)} s`;
  if (x >= 100) return `${x.toFixed(0)} ms`;
  if (x >= 1) return `${x.toFixed(1)} ms`;
  return `${(x * 1000).toFixed(0)} µs`;
}

export function rate(count: number, elapsedMs: number): string {
  const perS = count / (elapsedMs / 1000);
  return perS >= 10_000 ? `${Math.round(perS / 1000)}k/s` : `${perS.toFixed(0)}/s`;
}

export function pct(part: number, whole: number): string {
  return `${((part / whole) * 100).toFixed(part / whole < 0.1 ? 1 : 0)} %`;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function summary(values: readonly number[]): { n: number; median: number; p95: number; max: number; min: number } {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p95: quantile(s, 0.95), max: s.at(-1) ?? Number.NaN, min: s[0] ?? Number.NaN };
}

/** A compact aligned table: first row is the header. */
export function printTable(title: string, rows: readonly (readonly string[])[]): void {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  console.log(`\n${title}`);
  rows.forEach((row, r) => {
    console.log('  ' + row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
    if (r === 0) console.log('  ' + widths.map((w) => '─'.repeat(w)).join('  '));
  });
}

// ── temp databases ──────────────────────────────────────────────────────────────────────────

export interface TempDir {
  dir: string;
  file(name: string): string;
  remove(): void;
}

export function tempDir(prefix: string): TempDir {
  const dir = mkdtempSync(path.join(tmpdir(), `firmward-bench-${prefix}-`));
  return { dir, file: (name) => path.join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ── fixtures ────────────────────────────────────────────────────────────────────────────────

export const VENDOR = 'BenchCo';

/** Updates allowed all day (start == end), automatic, no learned hours: nothing but the engine holds a job back. */
export function benchSettings(soakSeconds: number): HomeSettings {
  return {
    timeZone: 'UTC',
    window: { start: '00:00', end: '00:00' },
    learnQuietHours: false,
    policy: 'automatic',
    thresholds: DEFAULT_THRESHOLDS,
    soakSeconds,
    silenceTimeoutSeconds: 3600,
  };
}

export function benchHome(id: string, soakSeconds: number): Home {
  return { id, name: `Home ${id}`, settings: benchSettings(soakSeconds), halt: null };
}

export function benchDevice(id: string, homeId: string, model: string, firmwareVersion: string, hardwareRevision = 'A'): Device {
  return { id, homeId, name: `Device ${id}`, vendor: VENDOR, model, hardwareRevision, firmwareVersion, policy: null, thresholds: {}, schedules: [] };
}

export function benchRelease(model: string, version: string, extra: Partial<Release> = {}): Release {
  return {
    id: releaseId(VENDOR, model, version),
    vendor: VENDOR,
    model,
    hardwareRevisions: ['A', 'B'],
    version,
    severity: 'none',
    vulnerabilitiesFixed: [],
    expectedInstallSeconds: 120,
    preflightOverrides: {},
    recovery: { steps: ['Leave it powered; it goes back to its previous version by itself.'] },
    retracted: false,
    image: { path: `${model}-${version}.img`, lengthBytes: 4 * 1024 * 1024, sha256: 'ab'.repeat(32) },
    ...extra,
  };
}

/** A release source that always answers with the same, already trusted set. */
export class FixedReleaseSource implements ReleaseSource {
  readonly name = 'bench';
  readonly #releases: Release[];
  constructor(releases: Release[]) {
    this.#releases = releases;
  }
  refresh(): Promise<Release[]> {
    return Promise.resolve(this.#releases);
  }
  imagePath(release: Release): Promise<string> {
    return Promise.reject(new Error(`the benchmark serves no images (${release.id})`));
  }
}
