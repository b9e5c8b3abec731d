/**
 * sendFile over a real socket (Node's response, the fast path) and in-process (Hono's app.request,
 * a web stream): multi-range answers parsed back and compared byte for byte with the file.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { sendFile } from '../src/index.ts';

const SIZE = 3 * 1024 * 1024 + 17;
const dir = mkdtempSync(join(tmpdir(), 'firmward-send-file-'));
const path = join(dir, 'image.bin');
const bytes = randomBytes(SIZE);
writeFileSync(path, bytes);
const progress: number[][] = [];

const app = new Hono();
app.get('/file', (c) => {
  const seen: number[] = [];
  progress.push(seen);
  return sendFile(c, { path, size: SIZE, contentType: 'application/octet-stream', etag: '"v1"', onProgress: (upTo) => seen.push(upTo) });
});

let server: ServerType;
let base = '';
before(async () => {
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Part {
  headers: Map<string, string>;
  body: Buffer;
}

/** Reads a multipart/byteranges body the way a client does (RFC 2046 §5.1.1). */
function parseMultipart(body: Buffer, contentType: string): Part[] {
  const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(contentType)?.[1];
  assert.ok(boundary, contentType);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  assert.equal(at, 0, 'the body starts with the first delimiter');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') {
      assert.equal(body.subarray(at).toString(), '--\r\n', 'nothing after the closing delimiter');
      return parts;
    }
    const headEnd = body.indexOf('\r\n\r\n', at);
    const headers = new Map(body.subarray(at + 2, headEnd).toString().split('\r\n').map((line) => {
      const [name, ...value] = line.split(': ');
      return [name!.toLowerCase(), value.join(': ')] as [string, string];
    }));
    const next = body.indexOf(delimiter, headEnd + 4);
    parts.push({ headers, body: body.subarray(headEnd + 4, next) });
    at = next;
  }
}

for (const via of ['socket', 'in-process'] as const) {
  describe(`sendFile (${via})`, () => {
    const get = (headers: Record<string, string> = {}, method = 'GET') =>
      via === 'socket' ? fetch(`${base}/file`, { method, headers }) : Promise.resolve(app.request('/file', { method, headers }));

    test('several ranges: 206 multipart/byteranges, each part its own range, byte for byte; the length is exact', async () => {
      const ranges: [number, number][] = [[0, 0], [2, 2], [1_048_570, 2_200_000], [SIZE - 10, SIZE - 1], [100, 199]];
      const res = await get({ range: `bytes=${ranges.map(([s, e]) => `${s}-${e}`).join(',')}` });
      assert.equal(res.status, 206);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.headers.get('content-length'), String(body.length));
      assert.equal(res.headers.get('content-range'), null, 'a multipart answer has its ranges in its parts');
      const parts = parseMultipart(body, res.headers.get('content-type') ?? '');
      assert.deepEqual(parts.map((p) => p.headers.get('content-range')), ranges.map(([s, e]) => `bytes ${s}-${e}/${SIZE}`), 'in the order asked');
      for (const [i, [s, e]] of ranges.entries()) {
        assert.equal(parts[i]!.headers.get('content-type'), 'application/octet-stream');
        assert.ok(parts[i]!.body.equals(bytes.subarray(s, e + 1)), `part ${i} is bytes ${s}-${e}`);
      }
    });

    test('bytes=0-0,2-2 is no longer a 206 with the whole file', async () => {
      const res = await get({ range: 'bytes=0-0,2-2' });
      assert.equal(res.status, 206);
      const parts = parseMultipart(Buffer.from(await res.arrayBuffer()), res.headers.get('content-type') ?? '');
      assert.deepEqual(parts.map((p) => [p.headers.get('content-range'), [...p.body]]), [[`bytes 0-0/${SIZE}`, [bytes[0]]], [`bytes 2-2/${SIZE}`, [bytes[2]]]]);
    });

    const single: [string, number, number][] = [['bytes=100-199', 100, 199], ['bytes=-500', SIZE - 500, SIZE - 1], ['bytes=500-', 500, SIZE - 1], ['bytes=-99999999', 0, SIZE - 1]];
    for (const [range, start, end] of single) {
      test(`${range}: 206 bytes ${start}-${end}`, async () => {
        const res = await get({ range });
        assert.equal(res.status, 206);
        assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${SIZE}`);
        assert.equal(res.headers.get('content-length'), String(end - start + 1));
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(start, end + 1)));
      });
    }

    test('unsatisfiable: 416 with Content-Range bytes */size', async () => {
      const res = await get({ range: `bytes=${SIZE}-` });
      assert.equal(res.status, 416);
      assert.equal(res.headers.get('content-range'), `bytes */${SIZE}`);
      await res.arrayBuffer();
    });

    for (const range of ['bytes=abc', 'bytes=5-2', 'chunks=0-1', 'bytes=0-,0-']) {
      test(`${range}: ignored, 200 with the whole file`, async () => {
        const res = await get({ range });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-length'), String(SIZE));
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes));
      });
    }

    test('If-Range with another tag: the whole file; with the file\'s own: the range', async () => {
      const other = await get({ range: 'bytes=0-9', 'if-range': '"v0"' });
      assert.equal(other.status, 200);
      assert.equal((await other.arrayBuffer()).byteLength, SIZE);
      const same = await get({ range: 'bytes=0-9', 'if-range': '"v1"' });
      assert.equal(same.status, 206);
      assert.equal((await same.arrayBuffer()).byteLength, 10);
    });

    test('HEAD says what a GET without Range would send, and sends nothing', async () => {
      const res = await get({ range: 'bytes=0-0,2-2' }, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), String(SIZE));
      assert.equal(res.headers.get('accept-ranges'), 'bytes');
      assert.equal(res.headers.get('etag'), '"v1"');
      assert.equal((await res.arrayBuffer()).byteLength, 0);
    });

    test('progress is told as file positions, up to the end of each part', async () => {
      progress.length = 0;
      const res = await get({ range: 'bytes=10-19,2000000-' });
      await res.arrayBuffer();
      const seen = progress[0]!;
      assert.equal(seen[0], 20);
      assert.equal(seen.at(-1), SIZE);
    });
  });
}
