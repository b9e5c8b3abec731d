#!/usr/bin/env node
/**
 * `firmward-hub`: load the config once (every error reported together), take the owner token,
 * start the hub, and in demo mode a home of simulated devices on an accelerated clock.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { isFirmwardError } from '@firmward/core';
import { ScaledClock, SystemClock, consoleLogger } from '@firmward/ports';
import { configHelp, loadConfig } from './config.ts';
import type { HubConfig } from './config.ts';
import { DEMO_REPOSITORY, DEMO_TIME_ZONE, demoReleases, demoStartTime, seedDemo, startDemoDevices } from './demo.ts';
import { publishReleases } from './demo-repository.ts';
import type { PublishedRepository } from './demo-repository.ts';
import { startHub } from './hub.ts';
import { ensureOwnerToken } from './owner-token.ts';

async function main(): Promise<void> {
  if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(configHelp());
    process.exit(0);
  }
  let config: HubConfig;
  try {
    config = loadConfig({ argv: process.argv.slice(2), env: process.env, readFile: (p) => readFileSync(p, 'utf8') });
  } catch (error) {
    process.stderr.write(`${isFirmwardError(error) ? error.message : String(error)}\n`);
    process.exit(2);
  }
  const { token, created } = ensureOwnerToken(config.dataDir, config.ownerToken);

  let hubConfig = config;
  let clock: ScaledClock | SystemClock = new SystemClock();
  let maker: PublishedRepository | null = null;
  if (config.demo) {
    // The demo is a show: a fresh home every start, in its own folder, on a clock that runs a
    // night in about a minute. The owner token stays in the data folder.
    const demoDir = path.join(config.dataDir, 'demo');
    rmSync(demoDir, { recursive: true, force: true });
    clock = new ScaledClock(demoStartTime(Date.now()), config.demoSpeed);
    // The maker signs and publishes its releases with the release tool; the hub trusts only that.
    maker = await publishReleases(path.join(demoDir, 'repository'), DEMO_REPOSITORY, demoReleases());
    hubConfig = {
      ...config,
      // Always its own SQLite file: the demo must never seed its home into a shared database.
      store: { kind: 'sqlite', path: path.join(demoDir, 'firmward.db'), url: '' },
      repositories: [maker.config],
      // Engine time is demo time: look at the home every 15 simulated seconds.
      engine: { ...config.engine, tickMs: 15_000, offerResendSeconds: 60 },
    };
  }

  // In the demo, log lines carry the home's simulated time, so "01:00" means the window opening.
  const log = consoleLogger(config.logLevel, 'hub', config.demo ? { now: () => clock.now(), timeZone: DEMO_TIME_ZONE } : {});
  const secrets = new Map<string, string>();
  const hub = await startHub(hubConfig, {
    clock, log, ownerToken: token,
    ...(config.demo && { seed: (store) => seedDemo(store, secrets) }),
  });
  let demo: { stop(): Promise<void> } | null = null;
  if (maker) {
    demo = await startDemoDevices({
      mqttUrl: hub.mqttUrl, secrets, clock, log: log.child('demo'),
      trust: { root: maker.root, dir: path.join(config.dataDir, 'demo', 'devices') },
    });
  }

  const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host === '::' ? '[::1]' : config.http.host;
  const url = `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${hub.httpPort}`;
  const homes = await hub.store.listHomes();
  process.stdout.write([
    '',
    `Firmward hub ${config.demo ? '(demo: a night runs in about a minute) ' : ''}is running.`,
    `  Dashboard   ${url}/`,
    `  API         ${url}/api/v1/health`,
    `  MQTT        ${hub.mqttUrl}`,
    created ? `  Owner token ${token}   (shown once; also stored in ${path.join(config.dataDir, 'owner-token')})` : `  Owner token in ${path.join(config.dataDir, 'owner-token')}`,
    homes.length === 0
      ? `  Next        open the dashboard to create the owner account and your first home, or: npx firmward home add "My home"`
      : `  Try         npx firmward status`,
    '',
  ].join('\n') + '\n');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping (${signal})`);
    await demo?.stop();
    await hub.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`The hub did not start: ${isFirmwardError(error) ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
