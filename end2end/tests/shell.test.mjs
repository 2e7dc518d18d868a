// The app shell: rendered by the WASM client (index.html itself holds nothing but a <noscript>),
// routed on the client, reachable by deep links, themed by the OS setting.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, screenshot, collectPageErrors, logInAs, api, agent, closeAll } from '../support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await logInAs(browser.context, server.url);
});

after(() => closeAll(browser, server));

test('the root renders the shell from WASM and lands on the sessions page', async () => {
  const page = await browser.context.newPage();
  const errors = collectPageErrors(page);

  await page.goto(server.url + '/');

  await page.locator('[data-test=app-shell]').waitFor();
  await page.waitForURL('**/sessions');
  assert.equal(await page.locator('[data-test=page-title]').textContent(), 'Sessions');
  for (const item of ['sessions', 'reviews', 'run', 'admin']) {
    assert.ok(await page.locator(`[data-test=nav-${item}]`).isVisible(), `nav-${item}`);
  }
  assert.equal(await page.locator('[data-test=nav-sessions]').getAttribute('aria-current'), 'page');
  // The footer's version comes from /api/settings, fetched by the WASM client.
  const version = page.locator('[data-test=server-version]');
  await version.waitFor();
  assert.match(await version.textContent(), /^Loupe \d+\.\d+\.\d+$/);
  await screenshot(page, 'shell-sessions');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a deep link to a session loads that page', async () => {
  const page = await browser.context.newPage();
  const errors = collectPageErrors(page);
  const record = await agent(browser.context, server.url);
  const recorded = await record('POST', '/api/ingest/sessions', { connection: 'ops', connection_kind: 'ssh', type: 'ssh', input: 'uptime' });
  const id = recorded.id;

  await page.goto(`${server.url}/sessions/${id}`);

  await page.locator('[data-test=app-shell]').waitFor();
  await page.locator('[data-test=session-id]').waitFor();
  assert.match(await page.locator('[data-test=page-title]').textContent(), /ops/);
  assert.equal(await page.locator('[data-test=session-id]').textContent(), id);
  // Recorded through the ingest API: the page says by which agent, not that Loupe ran it.
  assert.match(await page.locator('[data-test=recorded-by]').textContent(), /e2e-agent/);
  await screenshot(page, 'shell-deep-link');
  assert.deepEqual(errors, []);
  await page.close();
});

test('navigation switches pages on the client without reloading', async () => {
  const page = await browser.context.newPage();
  await page.goto(server.url + '/sessions');
  await page.locator('[data-test=app-shell]').waitFor();
  await page.evaluate(() => { window.__loupeStillHere = true; });

  await page.locator('[data-test=nav-reviews]').click();

  await page.waitForURL('**/reviews');
  assert.equal(await page.locator('[data-test=page-title]').textContent(), 'Reviews');
  assert.equal(await page.evaluate(() => window.__loupeStillHere), true, 'the page reloaded');
  await page.goBack();
  await page.waitForURL('**/sessions');
  assert.equal(await page.locator('[data-test=page-title]').textContent(), 'Sessions');
  await page.close();
});

test('an unknown address shows a not-found page inside the shell', async () => {
  const page = await browser.context.newPage();

  await page.goto(server.url + '/no/such/page');

  await page.locator('[data-test=not-found]').waitFor();
  assert.ok(await page.locator('[data-test=brand]').isVisible());
  await page.close();
});

test('the theme follows the operating system setting', async () => {
  const page = await browser.context.newPage();
  await page.goto(server.url + '/sessions');
  await page.locator('[data-test=app-shell]').waitFor();
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);

  await page.emulateMedia({ colorScheme: 'light' });
  const light = await background();
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await background();

  assert.notEqual(light, dark);
  await screenshot(page, 'shell-dark');
  await page.close();
});
