/**
 * A real device's MQTT login while strangers keep the embedded broker busy with wrong logins
 * (security audit, issue 14, finding 5: 80 concurrent wrong logins made a device's login take 5 s).
 *
 * The attackers run in a worker thread and connect from 127.0.0.2, the device from 127.0.0.1 (the
 * broker limits logins per source address, so on one machine they must come from two). The
 * attackers keep `FIRMWARD_BENCH_ATTACKERS` logins in flight the whole time, half with known
 * device ids and a wrong secret, half with device ids that do not exist; each refused one is
 * replaced at once. Meanwhile the device logs in `FIRMWARD_BENCH_ROUNDS` times, one after the
 * other, each time followed by a device logging in for the first time (whose check nothing
 * remembers); login latency (CONNECT sent to CONNACK) is printed, idle and under the burst, for
 * both stored credential forms (the `$7$` PBKDF2 one the hub issues, and scrypt, which older hubs
 * stored and verifySecret still accepts).
 *
 *   npm run bench:login
 *   FIRMWARD_BENCH_ATTACKERS=200 FIRMWARD_BENCH_ROUNDS=40 npm run bench:login
 */
import { createConnection } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { MqttClient } from 'mqtt';
import type { IClientOptions } from 'mqtt';
import { EmbeddedBroker, credentialCheck, hashDeviceSecret, hashSecret } from '@firmward/mqtt';
import type { StoredCredential } from '@firmward/mqtt';
import { silentLogger } from '@firmward/ports';
import { envInt, ms, printMachine, printTable, rate, summary } from './support.ts';

const ATTACKERS = envInt('FIRMWARD_BENCH_ATTACKERS', 80);
const ROUNDS = envInt('FIRMWARD_BENCH_ROUNDS', 20);
const KNOWN = 40;
const DEVICE = 'plug-real';
const SECRET = 'the-real-device-secret-0123456789abcdef';

/** One MQTT login from `localAddress`; resolves with the CONNACK's return code (0: accepted). */
function login(port: number, localAddress: string, options: IClientOptions): Promise<number> {
  return new Promise((resolve) => {
    const client = new MqttClient(() => createConnection({ host: '127.0.0.1', port, localAddress }), {
      protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 30_000, clean: true, ...options,
    });
    const done = (code: number) => {
      client.end(true);
      resolve(code);
    };
    client.once('connect', () => done(0));
    client.once('error', (error) => done(typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : -1));
    client.once('close', () => done(-1));
  });
}

interface AttackData {
  port: number;
  attackers: number;
}

if (!isMainThread) {
  const { port, attackers } = workerData as AttackData;
  let running = true;
  let sent = 0;
  let answered = 0;
  parentPort!.on('message', () => (running = false));
  const worker = async (i: number) => {
    while (running) {
      const username = i % 2 === 0 ? `plug-${i % KNOWN}` : `ghost-${i}-${sent}`;
      sent += 1;
      await login(port, '127.0.0.2', { clientId: username, username, password: 'a-wrong-guess' });
      // Every attacker has had an answer: the burst is in its steady state.
      if ((answered += 1) === attackers) parentPort!.postMessage('running');
    }
  };
  await Promise.all(Array.from({ length: attackers }, (_, i) => worker(i)));
  parentPort!.postMessage(answered);
} else {
  printMachine();
  console.log(`${ATTACKERS} wrong logins kept in flight from 127.0.0.2 (half known ids, half unknown); ${ROUNDS} device logins from 127.0.0.1 each\n`);
  const rows: string[][] = [['stored form', 'idle median', 'p95', 'burst: again median', 'p95', 'burst: first login median', 'p95', 'wrong logins answered']];
  for (const [form, hash] of [['$7$ PBKDF2 1000', hashDeviceSecret], ['scrypt N=16384', hashSecret]] as const) {
    const users = new Map<string, StoredCredential>();
    users.set(DEVICE, { principal: { role: 'device', deviceId: DEVICE }, secretHash: await hash(SECRET) });
    for (let i = 0; i < KNOWN; i++) users.set(`plug-${i}`, { principal: { role: 'device', deviceId: `plug-${i}` }, secretHash: await hash(`secret-${i}`) });
    // Devices that log in for the first time under the burst: nothing remembered, the slow hash runs.
    for (let i = 0; i < ROUNDS; i++) users.set(`plug-new-${i}`, { principal: { role: 'device', deviceId: `plug-new-${i}` }, secretHash: await hash(`${SECRET}-${i}`) });
    const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: silentLogger, credentials: credentialCheck((u) => users.get(u) ?? null) });
    const { port } = await broker.start();
    const device = async (id = DEVICE, secret = SECRET) => {
      const t0 = performance.now();
      const code = await login(port, '127.0.0.1', { clientId: id, username: id, password: secret });
      if (code !== 0) throw new Error(`the real device was refused (CONNACK ${code})`);
      return performance.now() - t0;
    };
    try {
      const idle: number[] = [];
      for (let i = 0; i < ROUNDS; i++) idle.push(await device());
      const attack = new Worker(new URL(import.meta.url), { workerData: { port, attackers: ATTACKERS } satisfies AttackData });
      const messages: unknown[] = [];
      let heard = () => {};
      attack.on('message', (m: unknown) => {
        messages.push(m);
        heard();
      });
      const next = async () => {
        while (messages.length === 0) await new Promise<void>((resolve) => (heard = resolve));
        return messages.shift();
      };
      // The device logs in only once every attacker has had an answer (the worker may start slowly).
      await next();
      const t0 = performance.now();
      const busy: number[] = [];
      const first: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        busy.push(await device());
        first.push(await device(`plug-new-${i}`, `${SECRET}-${i}`));
      }
      const elapsed = performance.now() - t0;
      attack.postMessage('stop');
      const answered = Number(await next());
      await attack.terminate();
      const [a, b, c] = [summary(idle), summary(busy), summary(first)];
      rows.push([form, ms(a.median), ms(a.p95), ms(b.median), ms(b.p95), ms(c.median), ms(c.p95), rate(answered, elapsed)]);
    } finally {
      await broker.stop();
    }
  }
  printTable('real device login latency (CONNECT → CONNACK)', rows);
}
