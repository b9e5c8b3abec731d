/**
 * The demo home for browser tests and screenshots: the real hub in-process (startHub: SQLite,
 * embedded broker, HTTP on port 0) with the demo seed and its simulated devices on a ScaledClock,
 * exactly as `npm start` runs it, plus Debian's Chromium driven by playwright-core. An empty hub
 * (no seed, no home, no repository) is what a household meets on its first run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { ScaledClock, SystemClock, silentLogger } from '@firmward/ports';
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

/** A hub in-process and how a test reaches its API with the owner token (as the CLI does). */
export interface TestHub {
  hub: RunningHub;
  url: string;
  ownerToken: string;
  api(method: string, p: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

export interface DemoHub extends TestHub {
  demo: DemoDevices;
  clock: ScaledClock;
}

const OWNER_TOKEN = 'dashboard-test-owner-token-0123456789';
/** The tenant's GatewayToken of the empty hub's hawkBit device API. */
export const GATEWAY_TOKEN = 'dashboard-test-gateway-token-0123';

function ownerApi(url: string, ownerToken: string): TestHub['api'] {
  return (method, p, body) => fetch(`${url}${p}`, {
    method,
    headers: { authorization: `Bearer ${ownerToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

function configIn(dir: string, argv: string[] = [], env: Record<string, string> = {}) {
  return loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', ...argv],
    env,
    readFile: () => {
      throw new Error('no config file for the dashboard tests');
    },
  });
}

/** The demo home at 00:40 tonight on a clock `speed` times faster than real time (the demo's own is 240). */
export async function startDemoHub(speed = 240): Promise<DemoHub> {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-dashboard-'));
  const config = configIn(dir);
  const clock = new ScaledClock(demoStartTime(Date.now()), speed);
  const ownerToken = OWNER_TOKEN;
  const secrets = new Map<string, string>();
  const maker = await publishReleases(path.join(dir, 'repository'), DEMO_REPOSITORY, demoReleases());
  const hub = await startHub({ ...config, repositories: [maker.config], engine: { ...config.engine, tickMs: 15_000, offerResendSeconds: 60 } }, {
    clock, log: silentLogger, ownerToken, seed: (store) => seedDemo(store, secrets),
  });
  const demo = await startDemoDevices({ mqttUrl: hub.mqttUrl, secrets, clock, log: silentLogger, trust: { root: maker.root, dir: path.join(dir, 'devices') } });
  const url = `http://127.0.0.1:${hub.httpPort}`;
  return {
    hub, demo, clock, url, ownerToken,
    api: ownerApi(url, ownerToken),
    async stop() {
      await demo.stop();
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A hub as it first starts in a household: no home, no device, no repository, on real time. Its
 * hawkBit device API is on (with a GatewayToken), so every setup form of the page can be used.
 */
export async function startEmptyHub(): Promise<TestHub> {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-dashboard-empty-'));
  const config = configIn(dir, ['--ddi'], { FIRMWARD_DDI_GATEWAY_TOKEN: GATEWAY_TOKEN });
  const hub = await startHub(config, { clock: new SystemClock(), log: silentLogger, ownerToken: OWNER_TOKEN });
  const url = `http://127.0.0.1:${hub.httpPort}`;
  return {
    hub, url, ownerToken: OWNER_TOKEN,
    api: ownerApi(url, OWNER_TOKEN),
    async stop() {
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

/**
 * Chromium with a fresh, empty profile, so no earlier cookie or cache takes part; `timezoneId`
 * sets the zone the page's Intl reports (the machine's own otherwise).
 */
export async function openBrowser(viewport = { width: 1280, height: 900 }, o: { timezoneId?: string } = {}): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'firmward-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport, reducedMotion: 'reduce',
    ...(o.timezoneId !== undefined && { timezoneId: o.timezoneId }),
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

/** Fills in and sends the page's first-run form (what the page shows next is the caller's to wait for). */
export async function submitOwnerForm(page: Page, url: string, ownerToken: string, username = 'alex', password = 'correct horse battery'): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Owner token').fill(ownerToken);
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account and sign in' }).click();
}

/** Creates the owner account through the page's first-run form, on a hub that has a home. */
export async function createOwner(page: Page, url: string, ownerToken: string, username = 'alex', password = 'correct horse battery'): Promise<void> {
  await submitOwnerForm(page, url, ownerToken, username, password);
  await page.locator('#home-summary').waitFor();
}

/** Signs in with the owner account through the page's form. */
export async function signIn(page: Page, url: string, username = 'alex', password = 'correct horse battery'): Promise<void> {
  await page.goto(url);
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
