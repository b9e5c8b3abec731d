/**
 * Download → verify → slot write throughput of the agent's path (`downloadToSlot` on the Linux
 * platform: stream with a length bound, SHA-256 while streaming, positional writes into a slot
 * file, fsync every `downloadChunkBytes`, then read back and hash again) against
 * `curl -s URL | tee FILE | sha256sum` followed by `sync FILE`, same image, same server, same run,
 * rounds alternated, medians.
 *
 *   npm run bench:download          # 256 MiB on tmpfs (/dev/shm)
 *   FIRMWARD_BENCH_MIB=64 FIRMWARD_BENCH_DIR=/var/tmp npm run bench:download   # on disk
 *
 * The image server runs in its own process (this file with `--serve`), reading the file with 1 MiB
 * reads (performance notes: a Node stream at 1 MiB per read is on par with nginx).
 */
import { spawn, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, createReadStream, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock } from '@firmward/ports';
import { DEFAULT_AGENT_CONFIG, downloadToSlot } from '../apps/agent/src/index.ts';
import { FileBootloader, initBootEnv } from '../apps/agent/src/linux/file-bootloader.ts';
import { LinuxPlatform } from '../apps/agent/src/linux/linux-platform.ts';
import { machineInfo } from './support.ts';

if (process.argv[2] === '--serve') {
  const file = process.argv[3] ?? '';
  const size = statSync(file).size;
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    res.writeHead(m ? 206 : 200, {
      'content-length': String(size - start), 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream',
      ...(m ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    createReadStream(file, { start, highWaterMark: 1 << 20 }).pipe(res);
  });
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as AddressInfo).port));
} else {
  await bench();
}

async function bench(): Promise<void> {
  const mib = Number(process.env['FIRMWARD_BENCH_MIB'] ?? 256);
  const rounds = Number(process.env['FIRMWARD_BENCH_ROUNDS'] ?? 3);
  // Bytes between fsync + journal checkpoints; the agent's default unless overridden.
  const chunkBytes = Number(process.env['FIRMWARD_BENCH_CHUNK_BYTES'] ?? DEFAULT_AGENT_CONFIG.downloadChunkBytes);
  const where = process.env['FIRMWARD_BENCH_DIR'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const dir = await mkdtemp(join(where, 'firmward-download-'));
  const bytes = mib * 1024 * 1024;
  const imagePath = join(dir, 'image.bin');
  const image = randomBytes(bytes);
  const sha256 = createHash('sha256').update(image).digest('hex');
  await writeFile(imagePath, image);
  const server = fork(new URL(import.meta.url).pathname, ['--serve', imagePath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve) => server.once('message', (m) => resolve(Number(m))));
  const url = `http://127.0.0.1:${port}/image.bin`;
  const m = machineInfo();
  console.log(`download bench: ${mib} MiB image in ${where}, ${rounds} rounds alternated; ${m.cpu}, ${m.cores} cores, node ${m.node}`);

  const agentRun = async (): Promise<number> => {
    const slots = { a: join(dir, 'slot-a.img'), b: join(dir, 'slot-b.img') };
    await writeFile(slots.a, '');
    await rm(slots.b, { force: true });
    const env = join(dir, 'boot.env');
    await initBootEnv(env);
    const platform = new LinuxPlatform({
      identity: { deviceId: 'bench', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2' },
      slots, slotSizeBytes: bytes, bootloader: new FileBootloader(env), journalPath: join(dir, 'journal.json'),
      version: { kind: 'header' }, healthCheck: null,
      conditions: { batteryPercent: null, charging: null, onMains: null, signalDbm: null, busy: null },
      commandTimeoutMs: 5_000, readChunkBytes: 1 << 20,
    writeBufferBytes: 1 << 20, reboot: () => Promise.resolve(),
    });
    const t0 = performance.now();
    await downloadToSlot({ url, lengthBytes: bytes, sha256, slot: 'b', resumeFrom: 0 }, {
      platform, clock: new SystemClock(), chunkBytes, retryBudgetMs: 0, retryDelayMs: 1,
      stallTimeoutMs: 30_000, onCheckpoint: () => Promise.resolve(), signal: new AbortController().signal,
    });
    return (performance.now() - t0) / 1000;
  };

  const curlRun = async (): Promise<number> => {
    const out = join(dir, 'curl.bin');
    const t0 = performance.now();
    const digest = await new Promise<string>((resolve, reject) => {
      const sh = spawn('sh', ['-c', `curl -sS --fail "$0" | tee "$1" | sha256sum && sync "$1"`, url, out], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      sh.stdout.setEncoding('utf8').on('data', (d: string) => { text += d; });
      sh.on('close', (code) => (code === 0 ? resolve(text.split(' ')[0] ?? '') : reject(new Error(`curl pipeline exited ${code}`))));
    });
    const seconds = (performance.now() - t0) / 1000;
    if (digest !== sha256) throw new Error('curl pipeline hashed something else');
    await rm(out, { force: true });
    return seconds;
  };

  const agentTimes: number[] = [];
  const curlTimes: number[] = [];
  try {
    // Warm-up of both (page cache of the image, JIT), not counted.
    await curlRun();
    await agentRun();
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        curlTimes.push(await curlRun());
        agentTimes.push(await agentRun());
      } else {
        agentTimes.push(await agentRun());
        curlTimes.push(await curlRun());
      }
      console.log(`  round ${r + 1}: agent ${(mib / (agentTimes.at(-1) ?? 1)).toFixed(0)} MiB/s, curl|tee|sha256sum ${(mib / (curlTimes.at(-1) ?? 1)).toFixed(0)} MiB/s`);
    }
  } finally {
    server.kill();
    await rm(dir, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const agent = mib / median(agentTimes);
  const curl = mib / median(curlTimes);
  console.log(`agent path (download + sha256 + write + fsync every ${chunkBytes / 1024} KiB + read-back sha256): ${agent.toFixed(0)} MiB/s`);
  console.log(`curl | tee | sha256sum + sync: ${curl.toFixed(0)} MiB/s`);
  console.log(`ratio agent / curl: ${(agent / curl).toFixed(2)}× (goal ≥ 0.8×)`);
}
