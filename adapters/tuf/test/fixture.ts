/**
 * A maker's signed repository built with our own release tool, published to a folder, plus the
 * two consumers under test: the hub's release source and a device's own trust. Attacks are
 * crafted on the published copy with the tool's low-level helpers, the way an attacker who holds
 * the mirror (or some keys) would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { OfferCommand } from '@firmward/protocol';
import {
  INSECURE_FAST_KDF, ReleaseRepository, bumpVersion, readMetadata, setMetaVersion, signMetadata, writeMetadata,
} from '@firmward/release-tool';
import type { Envelope, SigningKey, SnapshotSigned, TargetsSigned, TimestampSigned } from '@firmward/release-tool';
import type { Release } from '@firmward/core';
import { DeviceTrust, TufReleaseSource } from '../src/index.ts';
import type { ReleaseCustomInput } from '../src/index.ts';

export const PASSPHRASE = 'attack-test-passphrase';
export const REPO = 'acme-repo';

export const PLUG: ReleaseCustomInput = {
  vendor: 'acme', model: 'SmartPlug', hardwareRevisions: ['rev2'], version: '1.1.0', applicableFrom: '1.0.0',
  expectedInstallSeconds: 120, recovery: { steps: ['Switch it off at the wall for ten seconds.'] },
};
export const CAMERA: ReleaseCustomInput = {
  vendor: 'globex', model: 'Cam', hardwareRevisions: ['A'], version: '2.0.0',
  expectedInstallSeconds: 300, recovery: { steps: ['Hold the button for 15 seconds.'] },
};
export const PLUG_DEVICE = { vendor: 'acme', model: 'SmartPlug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0' };

export function imageOf(custom: ReleaseCustomInput, fill = 0x5a): Uint8Array {
  // Each release's own bytes: two releases with one image would share the hub's verified copy.
  const image = new Uint8Array(4096 + custom.version.length).fill(fill);
  image.set(new TextEncoder().encode(`${custom.vendor}/${custom.model}/${custom.version}`));
  return image;
}

export class Maker {
  readonly dir: string;
  readonly work: string;
  readonly published: string;
  readonly url: string;
  readonly repo: ReleaseRepository;

  private constructor(dir: string, repo: ReleaseRepository) {
    this.dir = dir;
    this.work = path.join(dir, 'maker');
    this.published = path.join(dir, 'published');
    this.url = `${pathToFileURL(this.published).href}/`;
    this.repo = repo;
  }

  /** acme and globex as vendors, 2-of-3 root, the plug and camera releases, published. */
  static async create(o: { now?: () => number } = {}): Promise<Maker> {
    const dir = mkdtempSync(path.join(tmpdir(), 'firmward-tuf-'));
    const { repository } = await ReleaseRepository.init(path.join(dir, 'maker'), {
      root: { keyCount: 3, threshold: 2 }, vendors: [{ name: 'acme' }, { name: 'globex' }],
    }, { passphrase: PASSPHRASE, keyFileKdf: INSECURE_FAST_KDF, ...(o.now && { now: o.now }) });
    const maker = new Maker(dir, repository);
    await maker.add(PLUG);
    await maker.add(CAMERA);
    await maker.publish();
    return maker;
  }

  async add(custom: ReleaseCustomInput, image = imageOf(custom)): Promise<void> {
    const file = path.join(this.dir, `${custom.vendor}-${custom.model}-${custom.version}.img`);
    await writeFile(file, image);
    await this.repo.add({ image: file, custom, fileName: 'fw.img' });
  }

  async publish(): Promise<void> {
    await this.repo.publish(this.published);
  }

  /** The first root, as a device ships it and a hub is configured with. */
  rootFile(): string {
    return path.join(this.published, 'metadata', '1.root.json');
  }

  async root(): Promise<Buffer> {
    return readFile(this.rootFile());
  }

  keys(role: string): Promise<SigningKey[]> {
    return this.repo.signingKeys(role);
  }

  metadata(file: string): string {
    return path.join(this.published, 'metadata', file);
  }

  /** The newest published version of a role's file (`N.<role>.json`). */
  async newest(role: string): Promise<{ version: number; envelope: Envelope }> {
    const versions = (await readdir(path.join(this.published, 'metadata')))
      .map((f) => new RegExp(`^(\\d+)\\.${role.replace('.', '\\.')}\\.json$`).exec(f)?.[1])
      .filter((v): v is string => v !== undefined).map(Number);
    const version = Math.max(...versions);
    return { version, envelope: await readMetadata(this.metadata(`${version}.${role}.json`)) };
  }

  /**
   * Publishes a changed targets role the way an attacker holding that role's keys (or an honest
   * tool) would: a new version of the role, then snapshot and timestamp signed by their keys.
   */
  async republishRole(role: string, change: (targets: Envelope<TargetsSigned>) => Envelope<TargetsSigned>, signers?: SigningKey[]): Promise<void> {
    const { version, envelope } = await this.newest(role);
    const next = signMetadata(bumpVersion(change(envelope as Envelope<TargetsSigned>)), signers ?? await this.keys(role), { append: false });
    await writeMetadata(this.metadata(`${version + 1}.${role}.json`), next);
    await this.resnapshot({ [`${role}.json`]: version + 1 });
  }

  /** New snapshot and timestamp naming the given versions. */
  async resnapshot(versions: Record<string, number>): Promise<void> {
    const { version, envelope } = await this.newest('snapshot');
    let snapshot = bumpVersion(envelope as Envelope<SnapshotSigned>);
    for (const [file, v] of Object.entries(versions)) snapshot = setMetaVersion(snapshot, file, v);
    await writeMetadata(this.metadata(`${version + 1}.snapshot.json`), signMetadata(snapshot, await this.keys('snapshot'), { append: false }));
    const timestamp = await readMetadata(this.metadata('timestamp.json')) as Envelope<TimestampSigned>;
    const nextTimestamp = setMetaVersion(bumpVersion(timestamp), 'snapshot.json', version + 1);
    await writeMetadata(this.metadata('timestamp.json'), signMetadata(nextTimestamp, await this.keys('timestamp'), { append: false }));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function hubSource(maker: Maker, dir: string): TufReleaseSource {
  return new TufReleaseSource({ name: REPO, url: maker.url, rootFile: maker.rootFile(), dir });
}

export async function deviceTrust(maker: Maker, dir: string): Promise<DeviceTrust> {
  return new DeviceTrust({ dir, roots: { [REPO]: await maker.root() } });
}

/** The offer an honest hub would send for a release of this repository. */
export function offerOf(release: Release, url: string, patch: Partial<OfferCommand> = {}): OfferCommand {
  return {
    v: PROTOCOL_VERSION, type: 'offer', jobId: 'job-1', releaseId: release.id, vendor: release.vendor, model: release.model,
    hardwareRevisions: release.hardwareRevisions, version: release.version,
    applicableFrom: release.applicableFrom ?? null, applicableTo: release.applicableTo ?? null,
    image: { url: 'http://127.0.0.1:1/firmware/x', lengthBytes: release.image.lengthBytes, sha256: release.image.sha256 },
    expectedInstallSeconds: release.expectedInstallSeconds,
    target: { repository: REPO, path: release.image.path, url },
    ...patch,
  };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/**
 * The maker's published folder over real HTTP on loopback. `answer` may take over the answer of a
 * file (return true once it has answered); otherwise the file is served whole, or 404.
 */
export async function servePublished(
  maker: Maker, answer: (file: string, body: Buffer, res: ServerResponse) => boolean = () => false,
): Promise<{ base: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    void (async () => {
      const file = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
      let body: Buffer;
      try {
        body = await readFile(path.join(maker.published, path.normalize(file)));
      } catch {
        res.writeHead(404).end();
        return;
      }
      if (!answer(file, body, res)) res.writeHead(200, { 'content-length': body.length }).end(body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
