// `cargo xtask bench browser`: a session with 1 GiB of output, opened and scrolled through in
// Chromium: time to first content, the longest task on the main thread, and the JS heap. Prints
// the figures. A benchmark, not a test: it takes about a minute and measures, so it is not part
// of `cargo xtask test` (whose browser tests cover the same page's behaviour).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, logInAs, api, agent, screenshot } from '../support.mjs';

const GIB = 1024 * 1024 * 1024;
const PIECE = 8 * 1024 * 1024;

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await logInAs(browser.context, server.url);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('1 GiB of output opens fast and scrolls without long tasks or a big heap', { timeout: 600_000 }, async () => {
  const record = await agent(browser.context, server.url);
  const session = await record('POST', '/api/ingest/sessions', { connection: 'batch', connection_kind: 'ssh', type: 'ssh', input: 'cat /var/log/huge.log' });
  const line = (n) => `${String(n).padStart(9, '0')} INFO request served in 12ms path=/api/items?page=${n % 977} status=200\n`;
  let text = '';
  for (let n = 0; text.length < PIECE; n++) text += line(n);
  const body = Buffer.from(text.slice(0, PIECE));
  let seq;
  for (let sent = 0; sent < GIB; sent += PIECE) {
    const url = `/api/ingest/sessions/${session.id}/output?stream=stdout${seq ? `&seq=${seq}` : ''}`;
    seq = (await record('POST', url, body, { 'content-type': 'application/octet-stream' })).seqs[0];
  }
  await record('POST', `/api/ingest/sessions/${session.id}/close`, { status: 'done', exit_code: 0 });

  const page = await browser.context.newPage();
  await page.addInitScript(() => {
    window.__longest = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longest = Math.max(window.__longest, entry.duration);
    }).observe({ type: 'longtask', buffered: true });
  });
  const started = Date.now();
  await page.goto(`${server.url}/sessions/${session.id}`);
  await page.locator('[data-test=output] .output-page').first().waitFor();
  const firstContent = Date.now() - started;

  // Scroll down through 200 pages of output, then jump to the end and back up a little.
  const output = page.locator('[data-test=output]');
  for (let i = 0; i < 200; i++) {
    await output.evaluate((element) => { element.scrollTop = element.scrollHeight; element.dispatchEvent(new Event('scroll')); });
    await page.waitForTimeout(15);
  }
  await page.click('[data-test=jump-to-end]');
  await page.locator('[data-test=output-window]', { hasText: `of ${GIB}` }).waitFor();
  await page.waitForFunction((gib) => document.querySelector('[data-test=output-window]').textContent.includes(`–${gib} of`), GIB);
  for (let i = 0; i < 20; i++) {
    await output.evaluate((element) => { element.scrollTop = 0; element.dispatchEvent(new Event('scroll')); });
    await page.waitForTimeout(15);
  }
  await page.waitForTimeout(500);
  const longest = await page.evaluate(() => window.__longest);
  const heap = await page.evaluate(() => performance.memory.usedJSHeapSize);
  const domText = await output.evaluate((element) => element.textContent.length);
  await screenshot(page, 'session-1gib');
  console.log(`1 GiB output: first content ${firstContent} ms, longest task ${longest.toFixed(0)} ms, JS heap ${(heap / 1048576).toFixed(1)} MiB, text in the DOM ${(domText / 1024).toFixed(0)} KiB`);

  assert.ok(firstContent < 1500, `first content took ${firstContent} ms`);
  assert.ok(longest <= 100, `a task took ${longest} ms`);
  assert.ok(heap < 150 * 1048576, `the JS heap is ${heap} bytes`);
  assert.ok(domText <= 4 * 64 * 1024, 'a bounded window of the output is in the DOM');
  await page.close();
});
