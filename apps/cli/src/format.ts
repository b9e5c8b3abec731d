/**
 * Plain-text rendering for the CLI: readable tables for a person at a terminal. Everything the
 * hub explains arrives as a sentence (`summary`, reasons); this only lays the sentences out.
 */
import type { HistoryEvent } from '@firmward/ports';
import type { DeviceView, HealthView, HomeView, JobView, RolloutView } from './client.ts';

/**
 * Columns padded to their widest cell; the last column is left ragged (it holds sentences).
 *
 * @example
 * table(['NAME', 'STATUS'], [['Plug', 'waiting']]);
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

/** "2026-05-01 02:13:07" in the local time zone of the machine running the CLI. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function statusCell(device: DeviceView): string {
  const u = device.update;
  if (u.status === 'updating' && u.progressPercent !== null) return `updating ${Math.round(u.progressPercent)}%`;
  return u.status;
}

function versionCell(device: DeviceView): string {
  return device.availableVersion === null || device.availableVersion === device.firmwareVersion
    ? device.firmwareVersion
    : `${device.firmwareVersion} → ${device.availableVersion}`;
}

function recoveryLines(device: DeviceView): string[] {
  const r = device.update.recovery;
  if (r === null) return [];
  const lines = [`  What to do about ${device.name} (from its maker):`];
  r.steps.forEach((step, i) => lines.push(`    ${i + 1}. ${step}`));
  if (r.supportUrl !== undefined) lines.push(`    Help: ${r.supportUrl}`);
  if (r.supportContact !== undefined) lines.push(`    Contact: ${r.supportContact}`);
  return lines;
}

function weaknessLines(devices: readonly DeviceView[]): string[] {
  return devices
    .filter((d) => d.update.vulnerabilities.length > 0)
    .map((d) => `  ${d.name} runs a version with known weaknesses: ${d.update.vulnerabilities.map((v) => `${v.id} (${v.severity})`).join(', ')}.`);
}

/** Homes, each with its devices and the one sentence that says what happens to each. */
export function formatStatus(homes: readonly HomeView[], devices: readonly DeviceView[], repositories: HealthView['repositories'] = []): string {
  // A refused repository first: nothing new from that maker reaches any home until it is fixed.
  const refused = [
    ...repositories.filter((r) => !r.trusted).map((r) => `Release repository ${r.name} refused (${r.code ?? 'unknown'}): ${r.message ?? ''}`),
    // A withheld image is never offered, so nothing halts; the person should still know why an update does not come.
    ...repositories.flatMap((r) => (r.refusedImages ?? []).map((i) => `Release ${i.releaseId} from ${r.name} withheld (${i.code}): ${i.message}`)),
  ];
  const head = refused.length > 0 ? `${refused.join('\n')}\n\n` : '';
  if (homes.length === 0) return `${head}No homes yet: add yours with "firmward home add <name>", or in the dashboard.`;
  const blocks = homes.map((home) => {
    const lines = [`${home.name} (${home.id})`, `  ${home.summary}`];
    const w = home.effectiveWindow;
    lines.push(`  Updates start between ${w.start} and ${w.end} (${home.settings.timeZone}${w.learned ? ', learned from quiet hours' : ''}).`);
    if (home.halted !== null) {
      lines.push(`  Halted: ${home.halted.message}`);
      lines.push(`  To go on: "firmward resume ${home.id}" tries that device again, "firmward skip ${home.id}" goes on without its update.`);
    }
    const own = devices.filter((d) => d.homeId === home.id);
    if (own.length === 0) {
      lines.push('  No devices.');
      return lines.join('\n');
    }
    lines.push('');
    const rows = own.map((d) => [`${d.name} (${d.id})`, versionCell(d), d.online ? statusCell(d) : `${statusCell(d)}, offline`, d.update.summary]);
    lines.push(...table(['DEVICE', 'VERSION', 'STATUS', 'WHAT HAPPENS'], rows).split('\n').map((l) => `  ${l}`));
    const extra = [...weaknessLines(own), ...own.flatMap(recoveryLines)];
    if (extra.length > 0) lines.push('', ...extra);
    return lines.join('\n');
  });
  return head + blocks.join('\n\n');
}

/** Every device on one line each, with what it is and what it runs. */
export function formatDevices(devices: readonly DeviceView[]): string {
  if (devices.length === 0) return 'No devices yet.';
  const rows = devices.map((d) => [
    d.id, d.name, d.homeId, `${d.vendor} ${d.model} (hw ${d.hardwareRevision})`, versionCell(d), d.online ? 'online' : 'offline', statusCell(d),
  ]);
  return table(['ID', 'NAME', 'HOME', 'MODEL', 'VERSION', 'ONLINE', 'STATUS'], rows);
}

/** The history, oldest first, so the newest line sits right above the prompt. */
export function formatHistory(events: readonly HistoryEvent[], names: ReadonlyMap<string, string>): string {
  if (events.length === 0) return 'Nothing in the history matches.';
  const rows = [...events].sort((a, b) => a.id - b.id).map((e) => [
    formatTime(e.at),
    e.deviceId === null ? e.homeId : (names.get(e.deviceId) ?? e.deviceId),
    e.from !== null && e.to !== null ? `${e.from} → ${e.to}` : (e.to ?? e.kind),
    e.actor,
    e.message,
  ]);
  return table(['WHEN', 'DEVICE', 'CHANGE', 'BY', 'WHAT HAPPENED'], rows);
}

/** One job in one or two lines: where it stands and why. */
export function formatJob(job: JobView): string {
  const why = job.reasons.map((r) => r.message).join(' ');
  const head = `Update of ${job.deviceId} from ${job.fromVersion} to ${job.targetVersion} (job ${job.id}): ${job.state}${job.forcedBy !== null ? ', forced' : ''}.`;
  return why === '' ? head : `${head}\n${why}`;
}

export function formatHome(home: HomeView): string {
  return `${home.name} (${home.id}): ${home.summary}`;
}

/** Every rollout with its waves and its one-sentence summary. */
export function formatRollouts(rollouts: readonly RolloutView[]): string {
  if (rollouts.length === 0) return 'No staged rollouts. Start one with "firmward rollout start <releaseId>".';
  const rows = rollouts.map((r) => [
    r.id, r.releaseId, r.state,
    r.rules.waves.map((pct, i) => `${i === r.wave ? '[' : ''}${pct} %${i === r.wave ? ']' : ''}`).join(' → '),
    r.summary,
  ]);
  return table(['ROLLOUT', 'RELEASE', 'STATE', 'WAVES (homes reached)', 'WHERE IT STANDS'], rows);
}
