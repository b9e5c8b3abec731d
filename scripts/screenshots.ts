/**
 * `npm run screenshots`: runs the demo home in-process (the real hub, its simulated devices on a
 * fast clock) and captures the dashboard's main views with Debian's Chromium into
 * docs/screenshots/, for the README. Needs /usr/bin/chromium (or CHROMIUM_PATH).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createOwner, openBrowser, startDemoHub } from '../test-services/dashboard-harness.ts';

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
}

main().catch((error: unknown) => {
  process.stderr.write(`The screenshots were not taken: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
