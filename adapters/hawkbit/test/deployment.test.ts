/**
 * One update over real HTTP on loopback, with a scripted client that makes SWUpdate's requests in
 * SWUpdate's order: poll, deployment, "Installing Update Chunk Artifacts.", download, "Installed
 * Chunk.", "All Chunks Installed.", and after the restart closed+success "Update Installed.".
 * Asserts what the hub hears at each step.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { actionIdOf } from '../src/action-id.ts';
import { DdiGateway } from '../src/gateway.ts';
import { IDENTITY, IMAGE_BYTES, settle, startHarness } from './helpers.ts';
import type { DdiClient, Harness } from './helpers.ts';

const DEVICE = 'ddi-dev1';

/** Registers dev1 and sends its identity, as SWUpdate does on its first cycle. */
async function identified(h: Harness): Promise<DdiClient> {
  const client = h.client('dev1');
  assert.equal((await client.poll()).status, 200);
  assert.equal((await client.configData({ ...IDENTITY })).status, 200);
  h.handler.clear();
  return client;
}

async function deploymentHref(client: DdiClient): Promise<string> {
  const poll = await client.poll();
  const href = poll.json._links.deploymentBase?.href;
  assert.ok(href, `no deploymentBase link in ${poll.text}`);
  return href;
}

describe('a DDI update, step by step', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  test('the poll always says how long to sleep, and asks for attributes only on first contact', async () => {
    const client = h.client('dev1');
    const first = await client.poll();
    assert.equal(first.status, 200);
    assert.deepEqual(first.json.config, { polling: { sleep: '00:05:00' } });
    assert.equal(first.json._links.configData!.href, `${client.base}/configData`);
    assert.equal((await client.configData({ ...IDENTITY })).status, 200);
    const second = await client.poll();
    assert.deepEqual(second.json, { config: { polling: { sleep: '00:05:00' } }, _links: {} });
  });

  test('the polling interval is configurable', async () => {
    await h.close();
    h = await startHarness({ pollingSleep: '00:00:07' });
    assert.deepEqual((await h.client('dev1').poll()).json.config, { polling: { sleep: '00:00:07' } });
    assert.throws(() => new DdiGateway({ ...gatewayBasics(h), pollingSleep: '5 minutes' }), /not a time like 00:05:00/);
    assert.throws(() => new DdiGateway({ ...gatewayBasics(h), pollingSleep: '00:00:00' }), /at least one second/);
  });

  test('held update: without the hub\'s offer there is no deploymentBase link, only after it', async () => {
    const client = await identified(h);
    for (let i = 0; i < 3; i++) assert.equal((await client.poll()).json._links.deploymentBase, undefined);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const href = await deploymentHref(client);
    assert.match(href, new RegExp(`/deploymentBase/${actionIdOf('job-1')}\\?c=[0-9a-z]+$`));
    assert.deepEqual(h.handler.events(), [], 'showing the link tells the hub nothing yet');
  });

  test('the deployment: one chunk, one .swu artifact with size, sha1/md5/sha256 and both download links', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const deployment = await client.get(await deploymentHref(client));
    assert.equal(deployment.status, 200);
    const id = actionIdOf('job-1');
    assert.equal(deployment.json.id, String(id));
    assert.equal(deployment.json.deployment.update, 'forced', 'never "skip": SWUpdate would report success without installing');
    assert.equal(deployment.json.deployment.chunks.length, 1);
    const chunk = deployment.json.deployment.chunks[0]!;
    assert.equal(chunk.version, '1.1.0');
    assert.equal(chunk.artifacts.length, 1);
    const artifact = chunk.artifacts[0]!;
    assert.match(artifact.filename, /\.swu$/);
    assert.equal(artifact.size, IMAGE_BYTES);
    assert.deepEqual(artifact.hashes, { sha1: h.image.sha1, md5: h.image.md5, sha256: h.image.sha256 });
    assert.equal(artifact._links.download.href, `${client.base}/softwaremodules/${id}/artifacts/${artifact.filename}`);
    assert.equal(artifact._links['download-http'].href, artifact._links.download.href);
    await settle(() => h.handler.events().length === 1);
    assert.deepEqual(h.handler.brief(), ['ack'], 'fetching the deployment acknowledges the offer');
  });

  test('SWUpdate\'s sequence maps onto downloading → downloaded → installing → rebooting → installed, success only after the restart', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const firstHref = await deploymentHref(client);
    const deployment = await client.get(firstHref);
    const id = Number(deployment.json.id);
    const download = deployment.json.deployment.chunks[0]!.artifacts[0]!._links.download.href;

    assert.equal((await client.feedback(id, 'proceeding', 'none', { cnt: 0, of: 1 }, ['Installing Update Chunk Artifacts.'])).status, 200);
    assert.deepEqual(h.handler.brief(), ['ack', 'progress downloading -']);
    const afterFirstFeedback = await deploymentHref(client);
    assert.notEqual(afterFirstFeedback, firstHref, 'the cache-buster moves with the action\'s state');

    assert.equal((await client.request('HEAD', download)).status, 200);
    const body = await fetch(download, { headers: { authorization: `GatewayToken ${'gateway-token-for-tests-0123456789'}` } });
    assert.deepEqual(Buffer.from(await body.arrayBuffer()), h.image.bytes);
    await settle(() => h.handler.brief().includes('progress downloaded 100'));
    const afterDownload = h.handler.brief();
    assert.equal(afterDownload.at(-1), 'progress downloaded 100');
    assert.ok(afterDownload.includes('progress downloading 0'));
    const percents = afterDownload.filter((b) => b.startsWith('progress downloading ')).map((b) => Number(b.split(' ')[2]));
    assert.deepEqual(percents.slice(1), [...percents.slice(1)].sort((a, b) => a - b), 'download percentages only go up');

    // The engine approves the install itself at "downloaded" and sends the go-ahead: a no-op ack.
    await h.gateway.send(DEVICE, { v: 1, type: 'install', jobId: 'job-1' });
    await client.feedback(id, 'proceeding', 'none', { cnt: 3, of: 0 }, ['Installation in progress']);
    await client.feedback(id, 'proceeding', 'none', { cnt: 1, of: 1 }, ['Installed Chunk.']);
    await client.feedback(id, 'proceeding', 'none', { cnt: 1, of: 1 }, ['All Chunks Installed.']);
    await settle();
    assert.deepEqual(h.handler.brief().slice(afterDownload.length), [
      'ack', 'progress installing -', 'progress installing 100', 'progress rebooting -',
    ]);
    assert.ok(!h.handler.brief().some((b) => b.startsWith('result')), 'not a success before the restart');
    assert.ok((await client.poll()).json._links.deploymentBase, 'SWUpdate needs the link after its restart to report the result');

    // After the restart: swupdate -c 2 reports "Update Installed.".
    h.handler.clear();
    assert.equal((await client.feedback(id, 'closed', 'success', { cnt: 0, of: 0 }, ['Update Installed.'])).status, 200);
    assert.deepEqual(h.handler.brief(), ['result installed 1.1.0']);
    const discovered = h.handler.calls.find((c) => c.kind === 'discovered');
    assert.equal(discovered?.kind === 'discovered' ? discovered.device.firmwareVersion : null, '1.1.0');
    const state = h.handler.calls.find((c) => c.kind === 'state');
    assert.ok(state?.kind === 'state');
    assert.equal(state.state.firmwareVersion, '1.1.0');
    assert.equal(state.state.job, null);

    const gone = await client.feedback(id, 'proceeding', 'none');
    assert.equal(gone.status, 410);
    assert.equal(gone.json.error.code, 'conflict');
    const poll = await client.poll();
    assert.equal(poll.json._links.deploymentBase, undefined);
    assert.ok(poll.json._links.configData, 'after an update the hub asks for attributes again');
  });

  test('closed+success before the restart is not a success: the hub hears "rebooting" and waits for the new version', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const deployment = await client.get(await deploymentHref(client));
    const id = Number(deployment.json.id);
    await fetch(deployment.json.deployment.chunks[0]!.artifacts[0]!._links.download.href, { headers: { authorization: 'GatewayToken gateway-token-for-tests-0123456789' } }).then((r) => r.arrayBuffer());
    await settle(() => h.handler.brief().includes('progress downloaded 100'));
    await client.feedback(id, 'closed', 'success', { cnt: 1, of: 1 }, ['Software bundle installed successfully.']);
    const brief = h.handler.brief();
    assert.ok(!brief.some((b) => b.startsWith('result')), brief.join(', '));
    assert.equal(brief.at(-1), 'progress rebooting -');
    assert.deepEqual(brief.slice(-2), ['progress installing 100', 'progress rebooting -']);
    // Its attributes after the restart say what it runs; the hub's engine judges that.
    h.handler.clear();
    assert.equal((await client.configData({ firmwareVersion: '1.1.0' })).status, 200);
    const state = h.handler.calls.find((c) => c.kind === 'state');
    assert.ok(state?.kind === 'state');
    assert.equal(state.state.firmwareVersion, '1.1.0');
  });

  test('closed+success without a download ("Skipped Update.") fails the update: nothing was installed', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const id = Number((await client.get(await deploymentHref(client))).json.id);
    await client.feedback(id, 'closed', 'success', { cnt: 0, of: 0 }, ['Skipped Update.']);
    const result = h.handler.events().find((e) => e.type === 'result');
    assert.ok(result?.type === 'result');
    assert.equal(result.outcome, 'failed');
    assert.equal(result.code, 'not_installed');
    assert.match(result.message ?? '', /Skipped Update\./);
    assert.equal(result.firmwareVersion, '1.0.0');
  });

  test('closed+failure fails the update with SWUpdate\'s own lines as the reason', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const id = Number((await client.get(await deploymentHref(client))).json.id);
    await client.feedback(id, 'proceeding', 'none', { cnt: 0, of: 1 }, ['Installing Update Chunk Artifacts.']);
    const lines = ['ERROR : HASH mismatch : 02b6d9c5 <--> 787bc8c4', 'Image invalid or corrupted. Not installing ...'];
    assert.equal((await client.feedback(id, 'closed', 'failure', { cnt: 0, of: 1 }, lines)).status, 200);
    const result = h.handler.events().find((e) => e.type === 'result');
    assert.ok(result?.type === 'result');
    assert.equal(result.outcome, 'failed');
    assert.equal(result.code, 'install_failed');
    assert.match(result.message ?? '', /HASH mismatch : 02b6d9c5 <--> 787bc8c4 Image invalid or corrupted/);
    assert.equal(result.firmwareVersion, '1.0.0');
    assert.equal((await client.feedback(id, 'closed', 'failure')).status, 410);
  });

  test('a failure reported after the restart is a roll-back', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const id = Number((await client.get(await deploymentHref(client))).json.id);
    await client.feedback(id, 'proceeding', 'none', { cnt: 1, of: 1 }, ['All Chunks Installed.']);
    await client.feedback(id, 'closed', 'failure', { cnt: 0, of: 0 }, ['Update Failed.']);
    const result = h.handler.events().find((e) => e.type === 'result');
    assert.ok(result?.type === 'result');
    assert.equal(result.outcome, 'rolled-back');
    assert.equal(result.firmwareVersion, '1.0.0');
  });

  test('rejected means "not now": the hub hears a temporary refusal and the link goes until the next offer', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const id = Number((await client.get(await deploymentHref(client))).json.id);
    await client.feedback(id, 'rejected', 'none', { cnt: 0, of: 0 }, ['Battery too low']);
    assert.deepEqual(h.handler.brief(), ['ack', 'ack refused not_now']);
    assert.equal((await client.poll()).json._links.deploymentBase, undefined);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    assert.ok((await client.poll()).json._links.deploymentBase);
  });

  test('an offer is idempotent by job id, and an image that does not verify is never offered', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const href = await deploymentHref(client);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    assert.equal(await deploymentHref(client), href);

    await h.close();
    h = await startHarness();
    const other = await identified(h);
    await assert.rejects(h.gateway.send(DEVICE, h.offer('job-2', { image: { url: 'x', lengthBytes: IMAGE_BYTES, sha256: 'f'.repeat(64) } })), { code: 'image_hash_mismatch' });
    await assert.rejects(h.gateway.send(DEVICE, h.offer('job-2', { image: { url: 'x', lengthBytes: IMAGE_BYTES + 1, sha256: h.image.sha256 } })), { code: 'image_length_mismatch' });
    await assert.rejects(h.gateway.send(DEVICE, h.offer('job-2', { releaseId: 'acme/gw/9.9.9' })), { code: 'image_unavailable' });
    assert.equal((await other.poll()).json._links.deploymentBase, undefined);
  });

  test('after a hub restart the engine hands the running update back, and the device\'s feedback fits again', async () => {
    const client = await identified(h);
    await h.gateway.send(DEVICE, h.offer('job-1'));
    const id = Number((await client.get(await deploymentHref(client))).json.id);
    await client.feedback(id, 'proceeding', 'none', { cnt: 1, of: 1 }, ['All Chunks Installed.']);

    // A new gateway knows nothing: before the hand-back the action is unknown.
    const credentials = h.credentials;
    await h.close();
    h = await startHarness({ credentials });
    const again = h.client('dev1');
    assert.equal((await again.feedback(id, 'closed', 'success')).status, 404);
    await h.gateway.restore(DEVICE, h.offer('job-1'), 'rebooting');
    assert.match(await deploymentHref(again), new RegExp(`/deploymentBase/${id}\\?`), 'the same action id, derived from the job id');
    assert.equal((await again.feedback(id, 'closed', 'success', { cnt: 0, of: 0 }, ['Update Installed.'])).status, 200);
    assert.deepEqual(h.handler.brief(), ['result installed 1.1.0']);
  });

  test('an update handed back mid-download goes on from there: the hub hears every phase, the install only after "downloaded"', async () => {
    // The hub restarted while SWUpdate downloaded; the device had the image already and installs it.
    await h.gateway.restore(DEVICE, h.offer('job-1'), 'downloading');
    const client = h.client('dev1');
    const id = actionIdOf('job-1');
    assert.equal((await client.feedback(id, 'proceeding', 'none', { cnt: 1, of: 1 }, ['Installing chunk 1.'])).status, 200);
    assert.equal((await client.feedback(id, 'proceeding', 'none', { cnt: 1, of: 1 }, ['All Chunks Installed.'])).status, 200);
    // Not "installing" straight from "downloading": the engine takes the install step only after "downloaded".
    assert.deepEqual(h.handler.brief(), ['progress downloaded 100', 'progress installing 100', 'progress rebooting -']);
  });

  test('an update handed back while the device waits for its restart: its attributes (still the old version) say it is working on it', async () => {
    await h.gateway.restore(DEVICE, h.offer('job-1'), 'rebooting');
    const client = h.client('dev1');
    // First contact after the hub restart: asked for attributes, which still name the old version.
    assert.ok((await client.poll()).json._links.configData);
    assert.equal((await client.configData({ ...IDENTITY })).status, 200);
    const state = h.handler.calls.flatMap((c) => (c.kind === 'state' ? [c.state] : [])).at(-1);
    // Reporting no job here would read as "came back on the old version" and fail an update that is fine.
    assert.deepEqual(state?.job, { jobId: 'job-1', phase: 'rebooting' });
  });

  test('before start and after stop the device is told to come back (503), not answered as if heard', async () => {
    await h.gateway.stop();
    const answer = await h.client('dev1').poll();
    assert.equal(answer.status, 503);
    assert.equal(answer.headers.get('retry-after'), '5');
    assert.equal(answer.json.error.code, 'not_ready');
    await h.gateway.start(h.handler);
  });
});

function gatewayBasics(h: Harness) {
  return {
    tenant: 'DEFAULT', gatewayToken: null, autoRegister: false as const, credentials: h.credentials, clock: h.clock,
    imagePath: () => Promise.resolve(null),
  };
}
