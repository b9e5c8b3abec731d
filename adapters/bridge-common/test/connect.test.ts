/** connectBroker against aedes on loopback: the first connection, a refused login, a broker that is down, one that never answers, and a caller that gives up. */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthenticateError } from 'aedes';
import { isFirmwardError } from '@firmward/core';
import { freePort } from '../../../packages/ports/testing/free-port.ts';
import { startPlainBroker } from '../testing/plain-broker.ts';
import type { PlainBroker } from '../testing/plain-broker.ts';
import { connectBroker } from '../src/index.ts';
import type { BrokerSession } from '../src/index.ts';

const SESSION: BrokerSession = {
  clientId: 'bridge-common-test',
  refusedMessage: 'The test broker refused the login.',
  unreachableMessage: 'The test broker did not answer.',
};

/** A broker that lets in only the user "bridge" with the password "right". */
function startLockedBroker(): Promise<PlainBroker> {
  return startPlainBroker({
    authenticate: (_client, username, password, callback) => {
      const ok = username === 'bridge' && password?.toString('utf8') === 'right';
      // Return code 5: "not authorized", the CONNACK a wrong password gets.
      const refusal: AuthenticateError = Object.assign(new Error('bad login'), { returnCode: 5 });
      callback(ok ? null : refusal, ok);
    },
  });
}

describe('connectBroker', { timeout: 20_000 }, () => {
  let plain: PlainBroker;
  let locked: PlainBroker;
  before(async () => {
    plain = await startPlainBroker();
    locked = await startLockedBroker();
  });
  after(async () => {
    await plain.stop();
    await locked.stop();
  });

  test('resolves on the first connection, as MQTT 3.1.1 with a clean session and the given client id', async () => {
    const { client, connected } = connectBroker({ url: plain.url }, SESSION);
    try {
      await connected;
      assert.equal(client.connected, true);
      assert.equal(client.options.clientId, 'bridge-common-test');
      assert.equal(client.options.protocolVersion, 4);
      assert.equal(client.options.clean, true);
      assert.equal(client.options.resubscribe, true);
      assert.equal(client.options.reconnectPeriod, 1000);
    } finally {
      await client.endAsync(true);
    }
  });

  test('logs in with the user name and password it is given, and sets the will', async () => {
    const will = { topic: 'test/status', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const { client, connected } = connectBroker({ url: locked.url, username: 'bridge', password: 'right', reconnectPeriodMs: 50 }, { ...SESSION, will });
    try {
      await connected;
      assert.equal(client.options.reconnectPeriod, 50);
      assert.deepEqual(client.options.will, will);
    } finally {
      await client.endAsync(true);
    }
  });

  test('a refused login rejects with unauthorized and the bridge\'s sentence; it does not wait for the deadline', async () => {
    const { client, connected } = connectBroker({ url: locked.url, username: 'bridge', password: 'wrong', startTimeoutMs: 60_000 }, SESSION);
    try {
      await assert.rejects(connected, (error: unknown) => isFirmwardError(error) && error.code === 'unauthorized' && error.message === SESSION.refusedMessage);
    } finally {
      await client.endAsync(true);
    }
  });

  test('a broker that is down rejects at once with gateway_failure, the bridge\'s sentence and the network\'s reason', async () => {
    // Nothing listens on a port that was free a moment ago: the connection is refused.
    const port = await freePort();
    const { client, connected } = connectBroker({ url: `mqtt://127.0.0.1:${port}`, startTimeoutMs: 60_000, reconnectPeriodMs: 50 }, SESSION);
    client.on('error', () => undefined);
    try {
      await assert.rejects(connected, (error: unknown) => isFirmwardError(error, 'gateway_failure') && error.message === 'The test broker did not answer: connection refused.'
        && (error.cause as { code?: unknown }).code === 'ECONNREFUSED');
    } finally {
      await client.endAsync(true);
    }
  });

  test('a broker that never answers rejects with gateway_failure and the bridge\'s sentence', async () => {
    // Takes the connection and says nothing: only the deadline ends the wait.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const { client, connected } = connectBroker({ url: `mqtt://127.0.0.1:${port}`, startTimeoutMs: 300, reconnectPeriodMs: 50 }, SESSION);
    client.on('error', () => undefined);
    try {
      await assert.rejects(connected, (error: unknown) => isFirmwardError(error) && error.code === 'gateway_failure' && error.message === SESSION.unreachableMessage);
    } finally {
      await client.endAsync(true);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('a caller that gives up ends the wait at once', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const abort = new AbortController();
    const { client, connected } = connectBroker({ url: `mqtt://127.0.0.1:${port}`, startTimeoutMs: 60_000 }, SESSION, abort.signal);
    client.on('error', () => undefined);
    try {
      // Given up once the broker has the connection and the client waits for its answer.
      await new Promise((resolve) => silent.once('connection', resolve));
      abort.abort();
      await assert.rejects(connected, (error: unknown) => isFirmwardError(error, 'gateway_failure'));
    } finally {
      await client.endAsync(true);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
