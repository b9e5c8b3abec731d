/**
 * `npm run screenshots`: runs the demo home in-process (the real hub, its simulated devices on a
 * fast clock) and captures the dashboard's main views with Debian's Chromium into
 * docs/screenshots/, for the README; then an empty hub set up from the page (first home, an
 * enrollment code, a device waiting for approval). Needs /usr/bin/chromium (or CHROMIUM_PATH).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createOwner, openBrowser, startDemoHub, startEmptyHub, submitOwnerForm } from '../test-services/dashboard-harness.ts';

const OUT = path.join(import.meta.dirname, '..', 'docs', 'screenshots');

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const demo = await startDemoHub(120);
  const desktop = await openBrowser({ width: 1280, height: 900 });
  const phone = await openBrowser({ width: 390, height: 844 });
  try {
    const page = desktop.page;
    const shot = async (name: string, p = page, fullPage = true) => {
      await p.screenshot({ path: path.join(OUT, `${name}.png`), fullPage });
      process.stdout.write(`  docs/screenshots/${name}.png\n`);
    };
    await page.goto(demo.url);
    await page.getByRole('heading', { name: 'Create the owner account' }).waitFor();
    await shot('sign-in');
    await createOwner(page, demo.url, demo.ownerToken);
    await page.locator('li.device[data-device="hall-sensor"] .summary').filter({ hasText: /Battery/ }).waitFor();
    await shot('overview');

    // The same overview on a phone, signed in with the same account.
    await phone.page.goto(demo.url);
    await phone.page.getByLabel('User name').fill('alex');
    await phone.page.getByLabel('Password').fill('correct horse battery');
    await phone.page.getByRole('button', { name: 'Sign in' }).click();
    await phone.page.locator('#home-summary').waitFor();
    await shot('overview-phone', phone.page);

    await page.getByRole('link', { name: 'Settings' }).click();
    await page.locator('#home-settings').waitFor();
    await shot('settings');

    await page.getByRole('link', { name: 'Overview' }).click();
    await page.locator('#active-update .steps li.current').filter({ hasText: 'Install' }).waitFor({ timeout: 60_000 });
    await shot('active-update');

    await page.locator('#halted').waitFor({ timeout: 120_000 });
    await shot('halted');

    await page.getByRole('link', { name: 'History' }).click();
    await page.locator('#history-table').waitFor();
    // The desk lamp's night: held while in use, its turn, the failed health check, the halt.
    await page.getByLabel('Device').selectOption('desk-lamp');
    await page.locator('#history-table td', { hasText: 'Desk lamp' }).first().waitFor();
    await shot('history', page, false);
  } finally {
    await phone.close();
    await desktop.close();
    await demo.stop();
  }
  await setUpShots();
}

/** An empty hub, set up from the page as a newcomer does. */
async function setUpShots(): Promise<void> {
  const empty = await startEmptyHub();
  const browser = await openBrowser({ width: 1280, height: 900 }, { timezoneId: 'Europe/Berlin' });
  try {
    const page = browser.page;
    const shot = async (name: string) => {
      await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: false });
      process.stdout.write(`  docs/screenshots/${name}.png\n`);
    };
    await submitOwnerForm(page, empty.url, empty.ownerToken);
    await page.getByRole('heading', { name: 'Create your first home', level: 1 }).waitFor();
    await page.locator('#first-home-name').fill('Flat 3B');
    await shot('first-home');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Flat 3B', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Add a device' }).click();
    const panel = page.getByRole('dialog', { name: 'Add a device to Flat 3B' });
    await panel.getByRole('button', { name: 'Make an enrollment code' }).click();
    const code = (await panel.locator('#enrollment-code').innerText()).trim();
    await shot('enrollment-code');
    const homeId = (await (await empty.api('GET', '/api/v1/homes')).json() as { id: string }[])[0]!.id;
    await fetch(`${empty.url}/enroll/v1/claims`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code, homeId, device: { id: 'kitchen-plug', name: 'Kitchen plug', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0' } }),
    });
    await panel.locator('#enrollment-state').filter({ hasText: 'Kitchen plug asked to join' }).waitFor();
    await panel.getByRole('button', { name: 'Close' }).click();
    await page.locator('#pending li').first().waitFor();
    await shot('waiting-for-approval');
  } finally {
    await browser.close();
    await empty.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`The screenshots were not taken: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
