/**
 * The demo home for browser tests and screenshots: the real hub in-process (startHub: SQLite,
 * embedded broker, HTTP on port 0) with the demo seed and its simulated devices on a ScaledClock,
 * exactly as `npm start` runs it, plus Debian's Chromium driven by playwright-core.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { ScaledClock, silentLogger } from '@firmward/ports';
import { loadConfig } from '../apps/hub/src/config.ts';
import { DEMO_REPOSITORY, demoReleases, demoStartTime, seedDemo, startDemoDevices } from '../apps/hub/src/demo.ts';
import { publishReleases } from '../apps/hub/src/demo-repository.ts';
import type { DemoDevices } from '../apps/hub/src/demo.ts';
import { startHub } from '../apps/hub/src/hub.ts';
import type { RunningHub } from '../apps/hub/src/hub.ts';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** The flags this machine needs: no sandbox as root, and no background calls to Google's hosts. */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

export interface DemoHub {
  hub: RunningHub;
  demo: DemoDevices;
  clock: ScaledClock;
  url: string;
  ownerToken: string;
  api(method: string, p: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

/** The demo home at 00:40 tonight on a clock `speed` times faster than real time (the demo's own is 240). */
export async function startDemoHub(speed = 240): Promise<DemoHub> {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-dashboard-'));
  const config = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0'],
    env: {},
    readFile: () => {
      throw new Error('no config file for the dashboard demo');
    },
  });
  const clock = new ScaledClock(demoStartTime(Date.now()), speed);
  const ownerToken = 'dashboard-test-owner-token-0123456789';
  const secrets = new Map<string, string>();
  const maker = await publishReleases(path.join(dir, 'repository'), DEMO_REPOSITORY, demoReleases());
  const hub = await startHub({ ...config, repositories: [maker.config], engine: { ...config.engine, tickMs: 15_000, offerResendSeconds: 60 } }, {
    clock, log: silentLogger, ownerToken, seed: (store) => seedDemo(store, secrets),
  });
  const demo = await startDemoDevices({ mqttUrl: hub.mqttUrl, secrets, clock, log: silentLogger, trust: { root: maker.root, dir: path.join(dir, 'devices') } });
  const url = `http://127.0.0.1:${hub.httpPort}`;
  return {
    hub, demo, clock, url, ownerToken,
    api: (method, p, body) => fetch(`${url}${p}`, {
      method,
      headers: { authorization: `Bearer ${ownerToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
    async stop() {
      await demo.stop();
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Chromium with a fresh, empty profile, so no earlier cookie or cache takes part. */
export async function openBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'firmward-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport, reducedMotion: 'reduce',
  });
  const page = context.pages()[0] ?? await context.newPage();
  return {
    context, page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Creates the owner account through the page's first-run form. */
export async function createOwner(page: Page, url: string, ownerToken: string, username = 'alex', password = 'correct horse battery'): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Owner token').fill(ownerToken);
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account and sign in' }).click();
  await page.locator('#home-summary').waitFor();
}
