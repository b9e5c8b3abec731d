/**
 * Verification throughput of the signed path, against `openssl dgst -sha256` on the same file in
 * the same run (goal ≥ 0.9×):
 *
 *   1. hub: TufReleaseSource.imagePath — the image streamed from the maker's repository (a file://
 *      repository here, so the network is not measured), counted against its signed length and
 *      hashed while it is copied into the hub's mirror, synced, renamed;
 *   2. agent: verifySlot — the device's read-back check of a written slot (length and SHA-256);
 *   3. the device's metadata check of one offer (DeviceTrust.check: the TUF workflow against the
 *      repository with its own root, then the target lookup), in milliseconds.
 *
 * The agent's download path (hash while streaming into the slot) has its own benchmark against
 * `curl | tee | sha256sum`: npm run bench:download.
 *
 *   npm run bench:verify            # 256 MiB on tmpfs (/dev/shm)
 *   FIRMWARD_BENCH_MIB=64 FIRMWARD_BENCH_DIR=/var/tmp npm run bench:verify
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { OfferCommand } from '@firmward/protocol';
import { DeviceTrust, TufReleaseSource } from '@firmward/tuf';
import { verifySlot } from '../apps/agent/src/download.ts';
import { FileBootloader, initBootEnv } from '../apps/agent/src/linux/file-bootloader.ts';
import { LinuxPlatform } from '../apps/agent/src/linux/linux-platform.ts';
import { publishReleases } from '../apps/hub/src/demo-repository.ts';
import { envInt, printMachine, printTable, summary } from './support.ts';

const run = promisify(execFile);
const MIB = envInt('FIRMWARD_BENCH_MIB', 256);
const ROUNDS = envInt('FIRMWARD_BENCH_ROUNDS', 5);
const bytes = MIB * 1024 * 1024;
const base = process.env['FIRMWARD_BENCH_DIR'] ?? (existsSync('/dev/shm') ? '/dev/shm' : '/tmp');
const dir = await mkdtemp(join(base, 'firmward-verify-'));

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const mibPerSecond = (msValue: number) => (MIB / (msValue / 1000));

try {
  printMachine();
  console.log(`image ${MIB} MiB in ${base}, ${ROUNDS} rounds each, alternated; medians\n`);
  const image = randomBytes(bytes);
  const sha256 = createHash('sha256').update(image).digest('hex');
  const maker = await publishReleases(join(dir, 'repository'), 'acme', [{
    custom: { vendor: 'acme', model: 'plug', hardwareRevisions: ['A'], version: '2.0.0', expectedInstallSeconds: 60, recovery: { steps: ['x'] } },
    image, fileName: 'plug.bin',
  }]);
  const publishedFile = join(maker.publishedDir, 'targets', 'acme', 'plug', '2.0.0', `${sha256}.plug.bin`);

  // The agent's slot: the image written as the agent would have written it.
  const slots = { a: join(dir, 'slot-a'), b: join(dir, 'slot-b') };
  await writeFile(slots.a, Buffer.alloc(0));
  await writeFile(slots.b, image);
  const env = join(dir, 'bootenv.json');
  await initBootEnv(env);
  const platform = new LinuxPlatform({
    identity: { deviceId: 'bench', vendor: 'acme', model: 'plug', hardwareRevision: 'A' },
    slots, slotSizeBytes: bytes, bootloader: new FileBootloader(env), journalPath: join(dir, 'journal.json'),
    version: { kind: 'header' }, healthCheck: null,
    conditions: { batteryPercent: null, charging: null, onMains: null, signalDbm: null, busy: null },
    commandTimeoutMs: 5_000, readChunkBytes: 1 << 20, writeBufferBytes: 1 << 20, reboot: () => Promise.resolve(),
  });

  const openssl: number[] = [];
  const copying: number[] = [];
  const hub: number[] = [];
  const agent: number[] = [];
  let releaseOf: Awaited<ReturnType<TufReleaseSource['refresh']>>[number] | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    openssl.push(await timed(() => run('openssl', ['dgst', '-sha256', publishedFile])));
    // The same work the hub does: read, copy, hash, sync the copy.
    const copy = join(dir, 'copy.bin');
    copying.push(await timed(() => run('sh', ['-c', 'tee "$2" < "$1" | openssl dgst -sha256 > /dev/null && sync "$2"', 'sh', publishedFile, copy])));
    await rm(copy, { force: true });
    // A fresh hub folder each round: nothing mirrored yet.
    const hubDir = join(dir, `hub-${round}`);
    const source = new TufReleaseSource({ name: 'acme', url: maker.config.url, rootFile: maker.config.root, dir: hubDir });
    const [release] = await source.refresh();
    releaseOf = release;
    hub.push(await timed(() => source.imagePath(release!)));
    await rm(hubDir, { recursive: true, force: true });
    agent.push(await timed(() => verifySlot(platform, 'b', bytes, sha256)));
  }

  // The device's metadata check of one offer, fresh device folder (full workflow) and warm (refresh only).
  const trust = new DeviceTrust({ dir: join(dir, 'device-trust'), roots: { acme: maker.root } });
  const release = releaseOf!;
  const offer: OfferCommand = {
    v: PROTOCOL_VERSION, type: 'offer', jobId: 'bench', releaseId: release.id, vendor: release.vendor, model: release.model,
    hardwareRevisions: release.hardwareRevisions, version: release.version, applicableFrom: null, applicableTo: null,
    image: { url: 'http://127.0.0.1:1/x', lengthBytes: bytes, sha256 }, expectedInstallSeconds: 60,
    target: { repository: 'acme', path: release.image.path, url: maker.config.url },
  };
  const device = { vendor: 'acme', model: 'plug', hardwareRevision: 'A', firmwareVersion: '1.0.0' };
  const checks: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = await timed(async () => {
      const refusal = await trust.check(offer, device);
      if (refusal) throw new Error(`the bench offer was refused: ${refusal.message}`);
    });
    checks.push(t);
  }

  const o = summary(openssl).median;
  const oc = summary(copying).median;
  const h = summary(hub).median;
  const a = summary(agent).median;
  printTable('Verification throughput (same file, same run)', [
    ['path', 'median', 'MiB/s', 'vs openssl dgst -sha256'],
    ['openssl dgst -sha256 (read + hash)', `${o.toFixed(0)} ms`, mibPerSecond(o).toFixed(0), '1.00×'],
    ['tee COPY | openssl dgst -sha256; sync COPY (what the hub does)', `${oc.toFixed(0)} ms`, mibPerSecond(oc).toFixed(0), `${(o / oc).toFixed(2)}×`],
    ['hub: mirror from the signed repository (read + count + hash + write + fsync)', `${h.toFixed(0)} ms`, mibPerSecond(h).toFixed(0), `${(o / h).toFixed(2)}× (${(oc / h).toFixed(2)}× of tee+openssl)`],
    ['agent: read-back check of the slot (read + count + hash)', `${a.toFixed(0)} ms`, mibPerSecond(a).toFixed(0), `${(o / a).toFixed(2)}×`],
  ]);
  const c = summary(checks);
  printTable('The device\'s check of one offer against the maker\'s metadata (DeviceTrust.check)', [
    ['first (fresh device)', 'median of 20', 'p95'],
    [`${checks[0]!.toFixed(1)} ms`, `${c.median.toFixed(1)} ms`, `${c.p95.toFixed(1)} ms`],
  ]);
  console.log(`verify: ${MIB} MiB · openssl ${mibPerSecond(o).toFixed(0)} MiB/s · hub ${(oc / h).toFixed(2)}× of tee+openssl (${(o / h).toFixed(2)}× of openssl alone) · agent ${(o / a).toFixed(2)}× · offer check ${c.median.toFixed(1)} ms`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
