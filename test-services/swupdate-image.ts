/**
 * Builds what Debian's SWUpdate accepts: a self-signed signing certificate (openssl), and a
 * signed `.swu` — a cpio archive (`cpio -o -H crc`) of `sw-description`, its CMS signature and one
 * raw image written to a plain file slot. Debian's build refuses unsigned images and needs
 * `hardware-compatibility` (see /work/shared/reference/hawkbit-ddi.md).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Signer {
  /** The X.509 certificate SWUpdate verifies with (`-k`). */
  cert: string;
  key: string;
}

/** A self-signed certificate fit for SWUpdate's CMS check (digitalSignature, emailProtection). */
export function makeSigner(dir: string): Signer {
  mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, 'signer.pem');
  const key = path.join(dir, 'signer.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '7', '-subj', '/CN=firmward-test-maker',
    '-addext', 'keyUsage=digitalSignature', '-addext', 'extendedKeyUsage=emailProtection',
  ], { stdio: 'pipe' });
  return { cert, key };
}

export interface SwuSpec {
  version: string;
  /** SWUpdate's hardware-compatibility list (the revision part of `-H board:rev`). */
  hardwareRevisions: string[];
  /** The raw image written to the slot. */
  image: Buffer;
  /** The slot, relative to the running swupdate's working folder: each device writes its own. */
  slot: string;
}

/**
 * The `.swu` bytes: sw-description first, then its signature, then the image, each listed in
 * sw-description with its sha256.
 */
export function buildSwu(dir: string, signer: Signer, spec: SwuSpec): Buffer {
  mkdirSync(dir, { recursive: true });
  const sha256 = createHash('sha256').update(spec.image).digest('hex');
  const description = `software =
{
  version = "${spec.version}";
  hardware-compatibility: [ ${spec.hardwareRevisions.map((r) => `"${r}"`).join(', ')} ];
  images: (
    {
      filename = "rootfs.img";
      type = "raw";
      device = "${spec.slot}";
      sha256 = "${sha256}";
    }
  );
}
`;
  writeFileSync(path.join(dir, 'sw-description'), description);
  writeFileSync(path.join(dir, 'rootfs.img'), spec.image);
  execFileSync('openssl', [
    'cms', '-sign', '-in', 'sw-description', '-out', 'sw-description.sig', '-signer', signer.cert, '-inkey', signer.key,
    '-outform', 'DER', '-nosmimecap', '-binary',
  ], { cwd: dir, stdio: 'pipe' });
  return execFileSync('cpio', ['-o', '-H', 'crc', '--quiet'], { cwd: dir, input: 'sw-description\nsw-description.sig\nrootfs.img\n', maxBuffer: 64 * 2 ** 20 });
}

/**
 * The same archive with two differing neighbouring bytes of the image swapped: the cpio checksum
 * (a byte sum) still matches, so it is SWUpdate's own sha256 check of the image that refuses it.
 */
export function tamper(swu: Buffer, image: Buffer): Buffer {
  const start = swu.indexOf(image.subarray(0, 64));
  if (start < 0) throw new Error('the image is not in the archive');
  const copy = Buffer.from(swu);
  let at = start + Math.floor(image.length / 2);
  while (copy[at] === copy[at + 1]) at++;
  const a = copy[at]!;
  copy[at] = copy[at + 1]!;
  copy[at + 1] = a;
  return copy;
}
