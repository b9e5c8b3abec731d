/**
 * `firmward watch`: progress bars for the open updates, driven by the hub's live event stream and
 * by polling (the stream only makes it quicker: a dropped stream never stops the watch). Ends
 * when every watched update has ended.
 */
import { MultiBar, Presets } from 'cli-progress';
import type { SingleBar } from 'cli-progress';
import { isTerminal } from '@firmward/core';
import type { HubClient, DeviceView, JobView } from './client.ts';
import { formatTime } from './format.ts';

export interface WatchOptions {
  deviceId?: string;
  out: NodeJS.WriteStream;
  /** How often to ask the hub when the stream is quiet. */
  pollMs: number;
}

interface Tracked {
  job: JobView;
  name: string;
  bar: SingleBar;
  device: DeviceView | null;
}

function note(t: Tracked): string {
  // The device's own sentence says it best (including "taking longer than expected — leave it powered").
  if (t.device !== null && t.device.update.jobId === t.job.id) return t.device.update.summary;
  return t.job.reasons[0]?.message ?? '';
}

/**
 * Watches until every open update (of one device, or of all) has ended. Returns the exit code:
 * 0 when all succeeded, 1 otherwise.
 *
 * @example
 * process.exitCode = await watch(client, { deviceId: 'kitchen-plug', out: process.stdout, pollMs: 2000 });
 */
export async function watch(client: HubClient, options: WatchOptions): Promise<number> {
  const { out } = options;
  const filter = options.deviceId === undefined ? {} : { deviceId: options.deviceId };
  const jobs = await client.listJobs({ ...filter, open: true });
  if (jobs.length === 0) {
    if (options.deviceId !== undefined) {
      const device = await client.getDevice(options.deviceId);
      out.write(`Nothing to watch: ${device.name}: ${device.update.summary}\n`);
    } else {
      out.write('Nothing to watch: no update is running or waiting.\n');
    }
    return 0;
  }

  const devices = new Map((await client.listDevices()).map((d) => [d.id, d]));
  const bars = new MultiBar({
    format: '{name} |{bar}| {percentage}% {state}  {note}',
    hideCursor: true,
    clearOnComplete: false,
    stream: out,
  }, Presets.shades_classic);
  const log = (line: string): void => {
    if (out.isTTY) bars.log(`${line}\n`);
    else out.write(`${line}\n`);
  };

  const tracked = new Map<string, Tracked>();
  for (const job of jobs) {
    const device = devices.get(job.deviceId) ?? null;
    const name = device?.name ?? job.deviceId;
    const t: Tracked = { job, name, device, bar: bars.create(100, 0) };
    t.bar.update(job.progressPercent ?? 0, { name, state: job.state, note: note(t) });
    tracked.set(job.id, t);
  }

  // Any event about a watched job wakes the poll loop early.
  let wake: (() => void) | null = null;
  const nudge = (): void => {
    wake?.();
  };
  const abort = new AbortController();
  const streaming = (async () => {
    for await (const event of client.streamEvents({ ...filter, signal: abort.signal, onOpen: nudge })) {
      const t = event.jobId === null ? undefined : tracked.get(event.jobId);
      if (t === undefined) continue;
      log(`${formatTime(event.at)} ${t.name}: ${event.message}`);
      nudge();
    }
  })().catch(() => {
    // The stream is only an accelerator; polling carries on without it.
  });

  try {
    let failures = 0;
    while ([...tracked.values()].some((t) => !isTerminal(t.job.state))) {
      try {
        for (const t of tracked.values()) {
          if (isTerminal(t.job.state)) continue;
          t.job = await client.getJob(t.job.id);
          t.device = await client.getDevice(t.job.deviceId);
          const percent = t.job.state === 'succeeded' ? 100 : (t.job.progressPercent ?? 0);
          t.bar.update(percent, { name: t.name, state: t.job.state, note: note(t) });
        }
        failures = 0;
      } catch (error) {
        // A short hiccup (the hub restarting) is not the end of the update; a lasting one ends the watch.
        if (++failures >= 5) throw error;
      }
      if (![...tracked.values()].some((t) => !isTerminal(t.job.state))) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    abort.abort();
    bars.stop();
    await streaming;
  }

  let code = 0;
  for (const t of tracked.values()) {
    const why = t.job.reasons.map((r) => r.message).join(' ');
    if (t.job.state === 'succeeded') {
      out.write(`${t.name}: updated to ${t.job.targetVersion}.\n`);
      continue;
    }
    code = 1;
    out.write(`${t.name}: ${t.job.state}. ${why}\n`);
    const recovery = t.device?.update.recovery ?? null;
    if (recovery !== null) {
      out.write(`What to do (from its maker):\n${recovery.steps.map((s, i) => `  ${i + 1}. ${s}`).join('\n')}\n`);
      if (recovery.supportUrl !== undefined) out.write(`Help: ${recovery.supportUrl}\n`);
      if (recovery.supportContact !== undefined) out.write(`Contact: ${recovery.supportContact}\n`);
    }
  }
  return code;
}
