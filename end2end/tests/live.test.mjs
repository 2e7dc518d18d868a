// The tab's one live connection: a session page keeps following a session across a server crash
// and restart, by itself, with no gap and no repeated line, and says so while it reconnects.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, screenshot, collectPageErrors, logInAs, agent, closeAll } from '../support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await logInAs(browser.context, server.url);
});

after(() => closeAll(browser, server));

test('a session page resumes following after the server is killed and restarted', async () => {
  const record = await agent(browser.context, server.url, 'resume-agent');
  const { id } = await record('POST', '/api/ingest/sessions', { connection: 'ops', connection_kind: 'ssh', type: 'ssh', input: 'tail -f app.log' });
  const { seqs: [seq] } = await record('POST', `/api/ingest/sessions/${id}/events`, { events: [{ kind: 'output', stream: 'stdout', data: 'line 1\n' }] });
  const append = (data) => record('POST', `/api/ingest/sessions/${id}/events`, { events: [{ kind: 'output', seq, stream: 'stdout', data }] });

  const page = await browser.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/sessions/${id}`);
  const output = page.locator('[data-test=output]');
  await output.filter({ hasText: 'line 1' }).waitFor();
  await page.evaluate(() => { window.__loupeStillHere = true; });
  // Live, then half a line: the resume must continue inside an event, mid-line.
  await append('line 2\n');
  await append('line 3 first half');
  await output.filter({ hasText: 'line 3 first half' }).waitFor();

  await server.crash();
  await page.locator('[data-test=live-reconnecting]').waitFor({ timeout: 10_000 });
  await screenshot(page, 'live-reconnecting');
  await server.restart();
  await append(', second half\n');
  await append('line 4\n');
  await output.filter({ hasText: 'line 4' }).waitFor({ timeout: 20_000 });
  await page.locator('[data-test=live-reconnecting]').waitFor({ state: 'detached', timeout: 10_000 });

  assert.equal((await output.innerText()).trimEnd(), 'line 1\nline 2\nline 3 first half, second half\nline 4');
  assert.equal(await page.evaluate(() => window.__loupeStillHere), true, 'the page reloaded');
  // Whatever the socket said while the server was gone, the page itself threw nothing.
  assert.deepEqual(errors.filter((error) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(error)), []);
  await page.close();
});
