/**
 * The DDI edge over real HTTP on loopback: who is let in, what a bad body gets, downloads with
 * Range and If-Match, cancelling only before the install step, configData, and going offline.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { actionIdOf } from '../src/action-id.ts';
import { DDI_REVOKED, GATEWAY_REGISTERED } from '../src/credentials.ts';
import { GATEWAY_TOKEN, IDENTITY, IMAGE_BYTES, settle, startHarness } from './helpers.ts';
import type { DdiClient, Harness } from './helpers.ts';

const DEVICE = 'ddi-dev1';

async function identified(h: Harness, client = h.client('dev1')): Promise<DdiClient> {
  assert.equal((await client.poll()).status, 200);
  assert.equal((await client.configData({ ...IDENTITY })).status, 200);
  h.handler.clear();
  return client;
}

/** Offers job-1 and fetches its deployment, as the device does; returns the artifact's link. */
async function offeredAndSeen(h: Harness, client: DdiClient): Promise<{ id: number; download: string }> {
  await h.gateway.send(DEVICE, h.offer('job-1'));
  const href = (await client.poll()).json._links.deploymentBase!.href;
  const deployment = await client.get(href);
  return { id: Number(deployment.json.id), download: deployment.json.deployment.chunks[0]!.artifacts[0]!._links.download.href };
}

describe('the DDI edge', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  describe('tokens', () => {
    test('no token, a wrong gateway token, or a wrong target token: 401 with a sentence, nothing stored', async () => {
      for (const authorization of [null, 'Bearer x', 'GatewayToken wrong-token', 'TargetToken wrong-token']) {
        const answer = await h.client('dev1', authorization).poll();
        assert.equal(answer.status, 401, String(authorization));
        assert.equal(answer.json.error.code, 'unauthorized');
        assert.match(answer.json.error.message, /token/);
      }
      assert.deepEqual(h.credentials.entries(), []);
      assert.deepEqual(h.handler.calls, []);
    });

    test('a device\'s own TargetToken lets in that device only, and is stored only as a digest', async () => {
      await identified(h);
      const token = await h.gateway.issueTargetToken('dev1');
      assert.equal((await h.client('dev1', `TargetToken ${token}`).poll()).status, 200);
      assert.equal((await h.client('dev1', `targettoken ${token}`).poll()).status, 200, 'the scheme is not case-sensitive');
      assert.equal((await h.client('dev2', `TargetToken ${token}`).poll()).status, 401, 'another device\'s token');
      const stored = h.credentials.entries();
      assert.equal(stored.length, 1);
      assert.equal(stored[0]![0], DEVICE);
      assert.ok(!stored[0]![1].includes(token), 'the token itself is never stored');
      assert.match(stored[0]![1], /^ddi-target\$[0-9a-f]{64}$/);
    });

    test('a gateway token is refused when none is configured', async () => {
      await h.close();
      h = await startHarness({ gatewayToken: null });
      assert.equal((await h.client('dev1').poll()).status, 401);
    });

    test('another tenant is not served', async () => {
      const { DdiClient } = await import('./helpers.ts');
      const answer = await new DdiClient(h.baseUrl, 'dev1', `GatewayToken ${GATEWAY_TOKEN}`, 'OTHER').poll();
      assert.equal(answer.status, 404);
      assert.match(answer.json.error.message, /tenant "DEFAULT"/);
      assert.equal((await new DdiClient(h.baseUrl, 'dev1', `GatewayToken ${GATEWAY_TOKEN}`, 'default').poll()).status, 200, 'tenants compare without case');
    });
  });

  describe('first contact', () => {
    test('an unknown controller is refused when auto-registration is off, and nothing is stored', async () => {
      await h.close();
      h = await startHarness({ autoRegister: false });
      const answer = await h.client('dev1').poll();
      assert.equal(answer.status, 404);
      assert.match(answer.json.error.message, /does not know the device "dev1"/);
      assert.equal((await h.client('dev1').configData({ ...IDENTITY })).status, 404);
      assert.deepEqual(h.credentials.entries(), []);
      assert.deepEqual(h.handler.calls, []);
    });

    test('only the allowed controller ids register themselves', async () => {
      await h.close();
      h = await startHarness({ autoRegister: { allowedControllerIds: ['dev1'] } });
      assert.equal((await h.client('dev2').poll()).status, 404);
      await identified(h);
      assert.deepEqual(h.credentials.entries(), [], 'the gateway stores nothing: the hub does, once a person approves the device');
    });

    test('a person changes who may register while the hub runs', async () => {
      await h.close();
      h = await startHarness({ autoRegister: false });
      assert.equal((await h.client('dev1').poll()).status, 404);
      h.gateway.setRegistration({ allowedControllerIds: ['dev1'] });
      assert.equal((await h.client('dev1').poll()).status, 200);
      assert.equal((await h.client('dev2').poll()).status, 404);
      h.gateway.setRegistration(false);
      assert.equal((await h.client('dev2').poll()).status, 404);
    });

    test('a revoked device is refused, with its TargetToken and with the tenant\'s GatewayToken', async () => {
      await identified(h);
      const token = await h.gateway.issueTargetToken('dev1');
      await h.credentials.set(DEVICE, DDI_REVOKED);
      for (const authorization of [`TargetToken ${token}`, `GatewayToken ${GATEWAY_TOKEN}`]) {
        const answer = await h.client('dev1', authorization).poll();
        assert.equal(answer.status, 401);
        assert.match(answer.json.error.message, /revoked/);
      }
    });

    test('a device registered earlier is known without auto-registration', async () => {
      await identified(h);
      const credentials = h.credentials;
      // What the hub stores when a person approves it.
      await credentials.set(DEVICE, GATEWAY_REGISTERED);
      await h.close();
      h = await startHarness({ autoRegister: false, credentials });
      assert.equal((await h.client('dev1').poll()).status, 200);
    });

    test('the hub hears of the device once it names itself, with its conditions as a state report', async () => {
      const client = h.client('dev1');
      await client.poll();
      assert.equal(h.handler.calls.length, 0, 'nothing before the device says what it is');
      await client.configData({ model: 'gw', hwRevision: '1.0', version: '1.0.0' });
      assert.equal(h.handler.calls.length, 0, 'no vendor, and no default vendor: not yet');
      await client.configData({ vendor: 'acme', batteryPercent: '64', charging: 'false', signalDbm: '-58', name: 'Attic gateway' });
      assert.deepEqual(h.handler.calls.map((c) => c.kind), ['discovered', 'availability', 'state']);
      const [discovered, , state] = h.handler.calls;
      assert.ok(discovered?.kind === 'discovered' && state?.kind === 'state');
      assert.deepEqual(discovered.device, {
        id: DEVICE, name: 'Attic gateway', vendor: 'acme', model: 'gw', hardwareRevision: '1.0', firmwareVersion: '1.0.0', powerSource: 'battery',
      });
      assert.equal(state.state.batteryPercent, 64);
      assert.equal(state.state.signalDbm, -58);
      assert.equal(state.state.powerSource, 'battery');
    });

    test('configData merges, replaces and removes; a bad value is refused and changes nothing', async () => {
      const client = await identified(h);
      await client.configData({ batteryPercent: '80' });
      const lastState = () => {
        const s = h.handler.calls.filter((c) => c.kind === 'state').at(-1);
        assert.ok(s?.kind === 'state');
        return s.state;
      };
      assert.equal(lastState().batteryPercent, 80);
      assert.equal(lastState().model, 'gw', 'merge keeps the identity');
      await client.configData({ batteryPercent: '' }, 'remove');
      assert.equal(lastState().batteryPercent, null);
      const before = h.handler.calls.length;
      const bad = await client.configData({ batteryPercent: 'full' });
      assert.equal(bad.status, 400);
      assert.match(bad.json.error.message, /"batteryPercent" must be a number from 0 to 100/);
      assert.equal(h.handler.calls.length, before);
      await client.configData({ model: 'gw' }, 'replace');
      assert.equal(h.handler.calls.length, before, 'replace without a version: no identity, nothing said');
    });
  });

  describe('bodies', () => {
    test('malformed JSON, a wrong shape or an oversized body: 400 / 413 with a sentence, and nothing changes', async () => {
      const client = await identified(h);
      const { id } = await offeredAndSeen(h, client);
      await settle(() => h.handler.events().length === 1);
      h.handler.clear();
      const url = `${client.base}/deploymentBase/${id}/feedback`;
      const broken = await client.request('POST', url, { body: '{"status": {"execution": "closed",' });
      assert.equal(broken.status, 400);
      assert.match(broken.json.error.message, /not valid JSON; nothing was changed/);
      const wrong = await client.request('POST', url, { body: JSON.stringify({ status: { execution: 'exploded', result: { finished: 'failure' } } }) });
      assert.equal(wrong.status, 400);
      assert.match(wrong.json.error.message, /"status.execution"/);
      const huge = await client.request('POST', url, { body: JSON.stringify({ status: { execution: 'closed', result: { finished: 'failure' }, details: ['x'.repeat(5000)] } }) });
      assert.equal(huge.status, 413);
      assert.equal(huge.json.error.code, 'payload_too_large');
      assert.equal((await client.request('PUT', `${client.base}/configData`, { body: 'nope' })).status, 400);
      assert.deepEqual(h.handler.calls, []);
      assert.ok((await client.poll()).json._links.deploymentBase, 'the update is still open');
    });

    test('unknown fields are ignored, as hawkBit does', async () => {
      const client = await identified(h);
      const { id } = await offeredAndSeen(h, client);
      const body = { id, time: '20261127T020000', extra: { a: 1 }, status: { execution: 'proceeding', result: { finished: 'none', progress: { cnt: 0, of: 1 }, note: 'x' }, details: ['Installing Update Chunk Artifacts.'], vendorField: true } };
      const answer = await client.request('POST', `${client.base}/deploymentBase/${id}/feedback`, { body: JSON.stringify(body) });
      assert.equal(answer.status, 200);
      assert.deepEqual(h.handler.brief(), ['ack', 'progress downloading -']);
    });

    test('feedback for an action the hub never made is 404', async () => {
      const client = await identified(h);
      assert.equal((await client.feedback(12345, 'proceeding', 'none')).status, 404);
      assert.equal((await client.request('POST', `${client.base}/deploymentBase/not-a-number/feedback`, { body: '{}' })).status, 404);
    });
  });

  describe('artifact downloads', () => {
    test('Range: 206 with Content-Range and exactly those bytes, and the hub hears how far it got', async () => {
      const client = await identified(h);
      const { download } = await offeredAndSeen(h, client);
      const auth = { authorization: `GatewayToken ${GATEWAY_TOKEN}` };
      const part = await fetch(download, { headers: { ...auth, range: 'bytes=20000-' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 20000-${IMAGE_BYTES - 1}/${IMAGE_BYTES}`);
      assert.equal(part.headers.get('accept-ranges'), 'bytes');
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), h.image.bytes.subarray(20000));
      await settle(() => h.handler.brief().includes('progress downloaded 100'));
      assert.deepEqual(h.handler.brief().slice(0, 2), ['ack', 'progress downloading 40']);
      const beyond = await fetch(download, { headers: { ...auth, range: `bytes=${IMAGE_BYTES}-` } });
      assert.equal(beyond.status, 416);
      await beyond.arrayBuffer();
    });

    test('several ranges at once (SWUpdate\'s zchunk delta updates): 206 multipart/byteranges, each part those bytes', async () => {
      const client = await identified(h);
      const { download } = await offeredAndSeen(h, client);
      const res = await fetch(download, { headers: { authorization: `GatewayToken ${GATEWAY_TOKEN}`, range: 'bytes=0-99,30000-30009' } });
      assert.equal(res.status, 206);
      const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(res.headers.get('content-type') ?? '')?.[1];
      assert.ok(boundary, `multipart: ${res.headers.get('content-type')}`);
      const part = (start: number, end: number) => Buffer.concat([
        Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${start}-${end}/${IMAGE_BYTES}\r\n\r\n`), h.image.bytes.subarray(start, end + 1),
      ]);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), Buffer.concat([part(0, 99), part(30000, 30009), Buffer.from(`\r\n--${boundary}--\r\n`)]));
    });

    test('a download cut short is not "downloaded"; resuming from where it stopped completes it', async () => {
      const client = await identified(h);
      const { download } = await offeredAndSeen(h, client);
      const auth = { authorization: `GatewayToken ${GATEWAY_TOKEN}` };
      const first = await fetch(download, { headers: { ...auth, range: 'bytes=0-9999' } });
      assert.equal(first.status, 206);
      await first.arrayBuffer();
      await settle();
      assert.ok(!h.handler.brief().includes('progress downloaded 100'));
      const rest = await fetch(download, { headers: { ...auth, range: 'bytes=10000-' } });
      await rest.arrayBuffer();
      await settle(() => h.handler.brief().includes('progress downloaded 100'));
    });

    test('If-Match: the sha1 (quoted or not) serves, another value is 412; HEAD says the size and tells the hub nothing', async () => {
      const client = await identified(h);
      const { download } = await offeredAndSeen(h, client);
      await settle(() => h.handler.events().length === 1);
      h.handler.clear();
      const head = await client.request('HEAD', download);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(IMAGE_BYTES));
      assert.equal(head.headers.get('etag'), `"${h.image.sha1}"`);
      await settle();
      assert.deepEqual(h.handler.calls, []);
      assert.equal((await client.get(download, { 'if-match': '"0000000000000000000000000000000000000000"' })).status, 412);
      for (const tag of [h.image.sha1, `"${h.image.sha1}"`, '*']) {
        const ok = await fetch(download, { headers: { authorization: `GatewayToken ${GATEWAY_TOKEN}`, 'if-match': tag } });
        assert.equal(ok.status, 200, tag);
        assert.equal((await ok.arrayBuffer()).byteLength, IMAGE_BYTES);
      }
    });

    test('served in-process too (Hono\'s app.request, no Node socket): Range still answers 206', async () => {
      const { createDdiRoutes } = await import('../src/routes.ts');
      const client = await identified(h);
      const { download } = await offeredAndSeen(h, client);
      const routes = createDdiRoutes(h.gateway);
      const res = await routes.request(new URL(download).pathname, { headers: { authorization: `GatewayToken ${GATEWAY_TOKEN}`, range: 'bytes=49000-' } });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('content-range'), `bytes 49000-${IMAGE_BYTES - 1}/${IMAGE_BYTES}`);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), h.image.bytes.subarray(49000));
    });

    test('downloads need the token, the current action and its file name', async () => {
      const client = await identified(h);
      const { download, id } = await offeredAndSeen(h, client);
      assert.equal((await fetch(download)).status, 401);
      assert.equal((await client.get(download.replace(/[^/]+$/, 'other.swu'))).status, 404);
      assert.equal((await client.get(download.replace(`/softwaremodules/${id}/`, '/softwaremodules/7/'))).status, 404);
    });
  });

  describe('cancel', () => {
    test('before the install step: the poll shows cancelAction instead of deploymentBase, and the device\'s answer closes it', async () => {
      const client = await identified(h);
      const { id } = await offeredAndSeen(h, client);
      await h.gateway.send(DEVICE, { v: 1, type: 'cancel', jobId: 'job-1', message: 'Cancelled by person:owner.' });
      const poll = await client.poll();
      assert.equal(poll.json._links.deploymentBase, undefined);
      assert.equal(poll.json._links.cancelAction!.href, `${client.base}/cancelAction/${id}`);
      const cancel = await client.get(poll.json._links.cancelAction!.href);
      assert.deepEqual(cancel.json, { id: String(id), cancelAction: { stopId: String(id) } });
      assert.equal((await client.cancelFeedback(id, 'closed', 'success')).status, 200);
      assert.deepEqual((await client.poll()).json._links.cancelAction, undefined);
      assert.equal((await client.feedback(id, 'proceeding', 'none')).status, 410);
    });

    test('another update offered while one installs is refused as busy, and the running one stays', async () => {
      const client = await identified(h);
      const { id } = await offeredAndSeen(h, client);
      await client.feedback(id, 'proceeding', 'none', { cnt: 1, of: 1 }, ['All Chunks Installed.']);
      h.handler.clear();
      await h.gateway.send(DEVICE, h.offer('job-2'));
      await settle(() => h.handler.events().length === 1);
      assert.deepEqual(h.handler.brief(), ['ack refused busy']);
      assert.equal(h.handler.events()[0]?.jobId, 'job-2');
      assert.match((await client.poll()).json._links.deploymentBase!.href, new RegExp(`/deploymentBase/${id}\\?`));
    });

    test('an update the device never saw is simply withdrawn', async () => {
      const client = await identified(h);
      await h.gateway.send(DEVICE, h.offer('job-1'));
      await h.gateway.send(DEVICE, { v: 1, type: 'cancel', jobId: 'job-1', message: 'Cancelled.' });
      assert.deepEqual((await client.poll()).json._links, {});
    });

    test('from the install step on, a cancel is refused and never shows a cancelAction link (invariant 6)', async () => {
      const client = await identified(h);
      const { id } = await offeredAndSeen(h, client);
      await fetch((await client.get((await client.poll()).json._links.deploymentBase!.href)).json.deployment.chunks[0]!.artifacts[0]!._links.download.href, {
        headers: { authorization: `GatewayToken ${GATEWAY_TOKEN}` },
      }).then((r) => r.arrayBuffer());
      await settle(() => h.handler.brief().includes('progress downloaded 100'));
      await client.feedback(id, 'proceeding', 'none', { cnt: 1, of: 1 }, ['Installed Chunk.']);
      h.handler.clear();
      await h.gateway.send(DEVICE, { v: 1, type: 'cancel', jobId: 'job-1', message: 'Cancelled.' });
      await settle(() => h.handler.events().length === 1);
      assert.deepEqual(h.handler.brief(), ['ack refused cancel_too_late']);
      const poll = await client.poll();
      assert.equal(poll.json._links.cancelAction, undefined);
      assert.ok(poll.json._links.deploymentBase);
      assert.equal((await client.get(`${client.base}/cancelAction/${id}`)).status, 404);
    });
  });

  test('a device not heard from for three polling intervals goes offline, and comes back with its next poll', async () => {
    const client = await identified(h);
    const availability = () => h.handler.calls.flatMap((c) => (c.kind === 'availability' ? [c.online] : []));
    await h.clock.advance(14 * 60_000);
    await settle();
    assert.deepEqual(availability(), [], 'still online within three intervals (5 min each) and a minute');
    await h.clock.advance(6 * 60_000);
    await settle(() => availability().length === 1);
    assert.deepEqual(availability(), [false]);
    await client.poll();
    await settle(() => availability().length === 2);
    assert.deepEqual(availability(), [false, true]);
  });

  test('action ids are SWUpdate-safe integers, stable per job', () => {
    for (const jobId of ['job-1', crypto.randomUUID(), crypto.randomUUID(), 'x']) {
      const id = actionIdOf(jobId);
      assert.ok(Number.isInteger(id) && id >= 1 && id <= 0x7fffffff, `${jobId} → ${id}`);
      assert.equal(actionIdOf(jobId), id);
    }
    assert.notEqual(actionIdOf('job-1'), actionIdOf('job-2'));
  });
});
