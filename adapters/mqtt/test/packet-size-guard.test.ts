import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import fc from 'fast-check';
import { isFirmwardError } from '@firmward/core';
import { PacketSizeGuard } from '../src/packet-size-guard.ts';

/** One MQTT frame: a fixed-header byte, the remaining length as a variable byte integer, the body. */
function frame(bodyLength: number, type = 0x30): Buffer {
  const length: number[] = [];
  let n = bodyLength;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...length]), Buffer.alloc(bodyLength, 0x61)]);
}

/** Splits bytes at the given cut points, as TCP might. */
function chunks(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) out.push(bytes.subarray(from, p));
    from = p;
  }
  return out;
}

function run(limit: number, parts: Buffer[]): Promise<Buffer> {
  return buffer(Readable.from(parts).pipe(new PacketSizeGuard(limit)));
}

describe('PacketSizeGuard', () => {
  test('passes frames up to the limit through unchanged, however the bytes are split', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (sizes, cuts) => {
        const bytes = Buffer.concat(sizes.map((s) => frame(s)));
        assert.deepEqual(await run(300, chunks(bytes, cuts)), bytes);
      },
    ), { numRuns: 100 });
  });

  test('fails on the first frame over the limit, however the bytes are split', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 4 }),
      fc.integer({ min: 201, max: 70_000 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (before, over, cuts) => {
        const bytes = Buffer.concat([...before.map((s) => frame(s)), frame(over)]);
        await assert.rejects(run(200, chunks(bytes, cuts)), (e) => isFirmwardError(e, 'payload_too_large'));
      },
    ), { numRuns: 60 });
  });

  test('fails on a length field longer than four bytes', async () => {
    await assert.rejects(run(1 << 30, [Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01])]), (e) => isFirmwardError(e, 'invalid_input'));
  });

  test('fails as soon as the announced length is too large, without waiting for the body', async () => {
    const guard = new PacketSizeGuard(1000);
    const failed = new Promise<unknown>((resolve) => guard.on('error', resolve));
    guard.write(Buffer.from([0x30, 0xff, 0x7f])); // announces 16 383 bytes and sends none of them
    assert.ok(isFirmwardError(await failed, 'payload_too_large'));
  });
});
