/**
 * BrokerAccess: the broker follows the store's device credentials at once.
 *  - EmbeddedBrokerAccess against a real EmbeddedBroker whose logins are looked up in a Map.
 *  - MosquittoFilesAccess without Mosquitto: what it writes, how it reloads (a command, or SIGHUP
 *    to a stand-in process named "mosquitto"), that writes never interleave and bursts coalesce,
 *    and what a failed reload throws. test-services/mosquitto-access.test.ts runs it against a
 *    real Mosquitto.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { isFirmwardError } from '@firmward/core';
import { EmbeddedBroker, connectDevice, credentialCheck, hashDeviceSecret, hashSecret, verifySecret } from '@firmward/mqtt';
import type { DeviceConnection, StoredCredential } from '@firmward/mqtt';
import { recordingLogger } from '../../../adapters/mqtt/test/helpers.ts';
import { EmbeddedBrokerAccess, MosquittoFilesAccess } from '../src/broker-access.ts';
import { until } from './fixtures/until.ts';

const A = 'plug-a';
const B = 'plug-b';

describe('EmbeddedBrokerAccess', { timeout: 30_000 }, () => {
  test('a revoked device loses its open session and cannot log in again; another device keeps its own', async () => {
    const users = new Map<string, StoredCredential>();
    const secrets = new Map([[A, 'secret-of-a'], [B, 'secret-of-b']]);
    for (const [id, secret] of secrets) users.set(id, { principal: { role: 'device', deviceId: id }, secretHash: await hashDeviceSecret(secret) });
    const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: recordingLogger(), credentials: credentialCheck((u) => users.get(u) ?? null) });
    const { port } = await broker.start();
    const url = `mqtt://127.0.0.1:${port}`;
    const log = recordingLogger();
    const access = new EmbeddedBrokerAccess({ broker, log });
    const devices: DeviceConnection[] = [];
    try {
      await access.start();
      for (const [deviceId, password] of secrets) devices.push(await connectDevice({ url, deviceId, password, reconnectPeriodMs: 50, logger: recordingLogger() }));
      const [a, b] = devices as [DeviceConnection, DeviceConnection];
      let aClosed = false;
      a.mqtt.on('close', () => (aClosed = true));

      users.delete(A);
      await access.credentialsChanged(A);
      await until('plug-a\'s session closed', () => Promise.resolve(aClosed || null));
      assert.ok(log.lines.some((l) => l.level === 'info' && l.detail?.deviceId === A), 'the closed session is logged');
      await assert.rejects(
        connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clientId: A, username: A, password: secrets.get(A)! }),
        (e) => (e as { code?: unknown }).code === 5,
      );
      assert.equal(b.mqtt.connected, true);

      // A device with no open session: nothing to close, nothing logged.
      const logged = log.lines.length;
      await access.credentialsChanged('plug-never-connected');
      assert.equal(log.lines.length, logged);
    } finally {
      await Promise.all(devices.map((d) => d.mqtt.endAsync(true)));
      await broker.stop();
    }
  });
});

/** The store's credentials, changeable by the test; counts how often they were listed. */
class FakeSecrets {
  readonly values = new Map<string, string>();
  lists = 0;
  listDeviceSecrets(): Promise<{ deviceId: string; secretHash: string }[]> {
    this.lists += 1;
    return Promise.resolve([...this.values].map(([deviceId, secretHash]) => ({ deviceId, secretHash })));
  }
}

describe('MosquittoFilesAccess', { timeout: 30_000 }, () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  after(() => {
    for (const child of children) child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  function folder(): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'firmward-broker-access-'));
    dirs.push(dir);
    return dir;
  }

  /**
   * A reload command run by node itself: after `delayMs` it notes, as "mosquitto" would see them,
   * how many users the password file holds (one line per reload in `reloads`).
   */
  function reloadCommand(dir: string, delayMs = 0): string[] {
    const passwords = JSON.stringify(path.join(dir, 'mosquitto', 'passwords'));
    const script = `const fs = require('node:fs'); setTimeout(() => fs.appendFileSync(${JSON.stringify(path.join(dir, 'reloads'))}, fs.readFileSync(${passwords}, 'utf8').split('\\n').filter(Boolean).length + '\\n'), ${delayMs});`;
    return [process.execPath, '-e', script];
  }
  const reloadsSeen = (dir: string): number[] => {
    try {
      return readFileSync(path.join(dir, 'reloads'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const reloads = (dir: string) => reloadsSeen(dir).length;

  function access(dir: string, store: FakeSecrets, extra: { pidFile?: string; reloadCommand?: string[] } = {}) {
    const log = recordingLogger();
    const files = { passwordFile: path.join(dir, 'mosquitto', 'passwords'), aclFile: path.join(dir, 'mosquitto', 'acl') };
    const instance = new MosquittoFilesAccess({
      store, ...files, hubUser: 'hub', hubPassword: 'hub-password', pidFile: extra.pidFile ?? '', reloadCommand: extra.reloadCommand ?? reloadCommand(dir), log,
    });
    return { access: instance, log, files };
  }

  test('writes the hub and every $7$ device, leaves the others out with one warning, and reloads', async () => {
    const dir = folder();
    const store = new FakeSecrets();
    const [hashA, hashB] = [await hashDeviceSecret('secret-of-a'), await hashDeviceSecret('secret-of-b')];
    store.values.set(B, hashB).set(A, hashA).set('plug-old', await hashSecret('old', { n: 1024, r: 8, p: 1 })).set('swupdate-1', 'ddi-target$abcd');
    const { access: files, log, files: paths } = access(dir, store);
    await files.start();

    const lines = readFileSync(paths.passwordFile, 'utf8').split('\n');
    assert.deepEqual(lines.map((l) => l.split(':')[0]), ['hub', A, B, '']);
    assert.equal(lines[1], `${A}:${hashA}`);
    const hubHash = lines[0]!.slice('hub:'.length);
    assert.match(hubHash, /^\$7\$210000\$/);
    assert.equal(await verifySecret('hub-password', hubHash), true);
    assert.ok(readFileSync(paths.aclFile, 'utf8').includes('user hub\n'));
    for (const file of [paths.passwordFile, paths.aclFile]) assert.equal(statSync(file).mode & 0o777, 0o640, file);
    assert.deepEqual(readdirSync(path.dirname(paths.passwordFile)).sort(), ['acl', 'passwords'], 'no temp file is left behind');
    assert.equal(reloads(dir), 1);

    const warnings = log.lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /rotate its secret/);
    assert.deepEqual(warnings[0]!.detail?.deviceIds, ['plug-old'], 'a DDI token digest is not an MQTT credential at all');

    // Revoked: gone from the file, reloaded again; the hub's hash was made once, at start.
    store.values.delete(A);
    await files.credentialsChanged(A);
    assert.equal(readFileSync(paths.passwordFile, 'utf8'), `hub:${hubHash}\n${B}:${hashB}\n`);
    assert.equal(reloads(dir), 2);
    assert.equal(log.lines.filter((l) => l.level === 'warn').length, 1, 'the same warning is not repeated');

    // A change that changes neither file (a DDI credential) does not make Mosquitto reload.
    store.values.set('swupdate-2', 'ddi-gateway');
    await files.credentialsChanged('swupdate-2');
    assert.equal(reloads(dir), 2);
  });

  test('concurrent changes never interleave and a burst is folded into one write after the running one', async () => {
    const dir = folder();
    const store = new FakeSecrets();
    const { access: files, files: paths } = access(dir, store, { reloadCommand: reloadCommand(dir, 300) });
    await files.start();
    assert.equal(store.lists, 1);

    const hashes = await Promise.all(Array.from({ length: 6 }, (_, i) => hashDeviceSecret(`secret-${i}`, 10)));
    store.values.set('plug-0', hashes[0]!);
    const first = files.credentialsChanged('plug-0'); // starts a write at once
    await until('the first write read the store', () => Promise.resolve(store.lists === 2 || null));
    const burst = hashes.slice(1).map((hash, i) => {
      store.values.set(`plug-${i + 1}`, hash);
      return files.credentialsChanged(`plug-${i + 1}`);
    });
    await Promise.all([first, ...burst]);
    assert.equal(store.lists, 3, 'the five changes of the burst were written together, after the first write');
    // Each reload saw the files of its own write: none was replaced while a reload ran.
    assert.deepEqual(reloadsSeen(dir), [1, 2, 7]);
    const users = readFileSync(paths.passwordFile, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':')[0]);
    assert.deepEqual(users, ['hub', 'plug-0', 'plug-1', 'plug-2', 'plug-3', 'plug-4', 'plug-5']);
  });

  test('a reload command that fails throws gateway_failure; the next change tries again, even with the same files', async () => {
    const dir = folder();
    const store = new FakeSecrets();
    // Fails the first time only (a broker that was briefly down).
    const once = JSON.stringify(path.join(dir, 'failed-once'));
    const script = `const fs = require('node:fs'); if (!fs.existsSync(${once})) { fs.writeFileSync(${once}, ''); process.stderr.write('no such unit'); process.exit(3); }`;
    const { access: files, log } = access(dir, store, { reloadCommand: [process.execPath, '-e', script] });
    await assert.rejects(files.start(), (e) => isFirmwardError(e, 'gateway_failure') && /reload command/.test(e.message) && e.detail?.output === 'no such unit');
    await files.credentialsChanged(A);
    assert.ok(log.lines.some((l) => l.level === 'info' && /made Mosquitto reload/.test(l.message)));
    const { access: missing } = access(dir, store, { reloadCommand: [path.join(dir, 'no-such-program')] });
    await assert.rejects(missing.start(), (e) => isFirmwardError(e, 'gateway_failure'));
  });

  test('without a reload command: SIGHUP to the pid in the pid file', async () => {
    const dir = folder();
    const marker = path.join(dir, 'hup');
    // A stand-in that calls itself mosquitto (as /proc/<pid>/comm shows) and notes each SIGHUP.
    const script = `process.title = 'mosquitto'; process.on('SIGHUP', () => require('node:fs').appendFileSync(${JSON.stringify(marker)}, 'hup\\n')); setInterval(() => {}, 1000); console.log('ready');`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const pidFile = path.join(dir, 'mosquitto.pid');
    writeFileSync(pidFile, `${child.pid}\n`);
    const store = new FakeSecrets();
    const { access: files } = access(dir, store, { pidFile, reloadCommand: [] });
    await files.start();
    await until('the SIGHUP arrived', () => Promise.resolve(readFileSync(marker, { encoding: 'utf8', flag: 'a+' }).includes('hup') || null));
    assert.equal(child.exitCode, null);
  });

  test('a pid file that is missing, holds no pid, or names a process that is not Mosquitto: gateway_failure, and nothing is signalled', async () => {
    const dir = folder();
    const store = new FakeSecrets();
    const pidFile = path.join(dir, 'mosquitto.pid');
    const { access: files } = access(dir, store, { pidFile, reloadCommand: [] });
    await assert.rejects(files.start(), (e) => isFirmwardError(e, 'gateway_failure') && /pid file could not be read/.test(e.message));
    for (const content of ['', 'abc', '0', '-1', '12 34', '1.5']) {
      writeFileSync(pidFile, content);
      await assert.rejects(files.start(), (e) => isFirmwardError(e, 'gateway_failure') && /does not hold a process id/.test(e.message), JSON.stringify(content));
    }
    // A stale pid file: the pid now belongs to another program, which SIGHUP would end.
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(other);
    writeFileSync(pidFile, String(other.pid));
    await until('the other process runs', () => Promise.resolve(other.pid !== undefined || null));
    await assert.rejects(files.start(), (e) => isFirmwardError(e, 'gateway_failure') && /not Mosquitto/.test(e.message));
    assert.equal(other.exitCode, null);
    assert.equal(other.signalCode, null);
  });
});
