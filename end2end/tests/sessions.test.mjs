// The sessions list and a session's details, as people use them: filters in the URL and Back,
// a session started elsewhere appearing live, coloured command output, a large result set
// scrolled far down, copy id, re-run, share, the run page, and the downloads-disabled state.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, screenshot, collectPageErrors, logInAs, api, closeAll, runAndWait } from '../support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ LOUPE_DEMO: 'true' });
  browser = await launchBrowser();
  await logInAs(browser.context, server.url);
  await api(browser.context, server.url, 'POST', '/api/connections', { name: 'sh', kind: 'command', command: { argv: ['sh', '-c'] } });
  await api(browser.context, server.url, 'POST', '/api/users', { username: 'bob', password: 'bob-heron-basalt-kite' });
});

after(() => closeAll(browser, server));

test('the list filters through the URL, Back undoes a filter, and new sessions arrive live', async () => {
  await runAndWait(browser.context, server.url, 'sh', 'echo done');
  await runAndWait(browser.context, server.url, 'sh', 'exit 3');
  const page = await browser.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/sessions`);
  await page.locator('[data-test=session-row]').first().waitFor();
  assert.equal(await page.locator('[data-test=session-row]').count(), 2);

  await page.selectOption('[data-test=filter-connection]', 'sh');
  await page.waitForURL('**/sessions?connection=sh');
  await page.selectOption('[data-test=filter-period]', '24h');
  await page.waitForURL(/period=24h/);
  assert.equal(await page.locator('[data-test=session-row]').count(), 2);
  await page.goBack();
  await page.waitForURL('**/sessions?connection=sh');
  assert.equal(await page.locator('[data-test=filter-period]').inputValue(), '');
  // Let the reload that Back started finish: a session created before it ends is simply listed.
  await page.waitForTimeout(300);
  await page.waitForFunction(() => !document.body.innerText.includes('Loading…'));

  const live = await api(browser.context, server.url, 'POST', '/api/sessions', { connection: 'sh', input: 'sleep 1; echo late' });
  const row = page.locator(`[data-test=session-row][data-id="${live.id}"]`);
  await row.waitFor({ timeout: 5000 });
  assert.match(await row.getAttribute('class'), /fresh/);
  await page.locator(`[data-test=session-row][data-id="${live.id}"] [data-test=status]`, { hasText: 'done' }).waitFor({ timeout: 10_000 });
  await screenshot(page, 'sessions-list');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a command session shows its output as a terminal would; copy id and re-run work', async () => {
  const script = [
    "printf 'plain \\033[31mred\\033[0m\\n'",
    // An OSC title, a 256-colour background and a 24-bit foreground.
    "printf '\\033]0;title\\007hi \\033[48;5;32mX\\033[0m \\033[38;2;255;100;0mrgb\\033[0m\\n'",
    "printf '10%%\\r50%%\\r100%% done\\n'",
    // The colour set in one piece still holds in the next.
    "printf '\\033[32mgreen '", 'sleep 0.3', "printf 'still green\\033[0m\\n'",
    'echo oops >&2', 'exit 2',
  ].join('; ');
  const session = await runAndWait(browser.context, server.url, 'sh', script);
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/sessions/${session.id}`);
  const output = page.locator('[data-test=output]');
  await output.locator('span', { hasText: 'still green' }).waitFor();
  const paint = (text) => page.evaluate((text) => {
    const span = [...document.querySelectorAll('[data-test=output] span')].find((candidate) => candidate.textContent === text);
    if (!span) return null;
    const style = getComputedStyle(span);
    return { color: style.color, background: style.backgroundColor };
  }, text);
  const plain = await paint('plain ');
  assert.deepEqual(await paint('red'), { color: 'rgb(255, 123, 114)', background: plain.background });
  assert.deepEqual(await paint('X'), { color: plain.color, background: 'rgb(0, 135, 215)' });
  assert.equal((await paint('rgb')).color, 'rgb(255, 100, 0)');
  // However the pieces fall into spans and pages, the green set before the pause holds after it.
  const greens = await page.evaluate(() => [...document.querySelectorAll('[data-test=output] span')]
    .filter((span) => /green/.test(span.textContent))
    .map((span) => [span.textContent, getComputedStyle(span).color]));
  assert.equal(greens.map(([text]) => text).join(''), 'green still green');
  assert.ok(greens.every(([, color]) => color === 'rgb(63, 185, 80)'), JSON.stringify(greens));
  const text = await output.textContent();
  assert.match(text, /^hi X rgb$/m);
  assert.match(text, /^100% done$/m);
  assert.doesNotMatch(text, /title|\u001b|\u0007|50%/);
  assert.equal(await page.locator('[data-test=output] .stderr', { hasText: 'oops' }).count(), 1);
  assert.equal(await page.locator('[data-test=exit-code]').textContent(), '2');

  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await page.click('[data-test=copy-id]');
  await page.locator('[data-test=copy-id]', { hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), session.id);
  await screenshot(page, 'session-command');

  page.once('dialog', (dialog) => dialog.accept());
  await page.click('[data-test=rerun]');
  await page.waitForURL((url) => !url.pathname.endsWith(session.id) && url.pathname.startsWith('/sessions/'));
  await page.locator('[data-test=rerun-of]').waitFor();
  assert.equal(await page.locator('[data-test=rerun-of]').textContent(), session.id.slice(0, 13));
  await page.close();
});

test('a ten-million-row result scrolls to row 5,000,000 without loading it all', { timeout: 300_000 }, async () => {
  const query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000) SELECT i AS n, 'row ' || i AS label FROM n";
  const session = await runAndWait(browser.context, server.url, 'demo', query, 240_000);
  assert.equal(session.counts.rows, 10_000_000);
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/sessions/${session.id}`);
  const rows = page.locator('[data-test=rows]');
  await page.locator('[data-test=row][data-row="0"] td', { hasText: 'row 1' }).first().waitFor();
  assert.match(await page.locator('[data-test=rows-total]').textContent(), /^10,000,000 rows$/);

  // Scroll so that row 5,000,000 is just below the top of the view (the area is scaled past
  // what a browser can make tall, so the fraction scrolled is the fraction of rows; one pixel
  // is more than a row here, so aim a few rows above it).
  await rows.evaluate((element) => {
    const span = element.scrollHeight - element.clientHeight;
    element.scrollTop = span * (4_999_995 / (10_000_000 - 16));
    element.dispatchEvent(new Event('scroll'));
  });
  const target = page.locator('[data-test=row][data-row="5000000"]');
  await target.waitFor();
  await page.waitForFunction(() => !document.querySelector('[data-test=row][data-row="5000000"]').textContent.includes('…'));
  assert.ok(await target.isVisible(), 'row 5,000,000 is on screen');
  assert.equal(await target.textContent(), '50000015000001row 5000001');
  assert.ok(await page.locator('[data-test=row]').count() < 100, 'only the rows in view are in the DOM');
  await screenshot(page, 'session-result');
  await page.close();
});

test('a result with huge values arrives cut, and the whole value opens and copies', async () => {
  // Three million characters (and one two-byte one) in one cell of each of twenty rows.
  const query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) SELECT i AS n, replace(hex(zeroblob(1500000)), '0', 'x') || 'é' AS big FROM n";
  const session = await runAndWait(browser.context, server.url, 'demo', query, 60_000);
  const page = await browser.context.newPage();
  const windows = [];
  page.on('response', async (response) => {
    if (response.url().includes('/rows?')) windows.push((await response.body()).length);
  });
  await page.goto(`${server.url}/sessions/${session.id}`);
  const cut = page.locator('[data-test=row][data-row="0"] [data-test=cell-cut]');
  await cut.waitFor();
  assert.match(await cut.textContent(), /2\.9 MiB in all/);
  assert.ok(windows.length > 0 && Math.max(...windows) < 256 * 1024, `every window the page fetched is small: ${windows}`);

  const [opened] = await Promise.all([
    browser.context.waitForEvent('page'),
    cut.locator('[data-test=cell-open]').click(),
  ]);
  await opened.waitForLoadState();
  const whole = await opened.evaluate(() => document.body.innerText);
  assert.equal(whole.length, 3_000_001);
  assert.ok(whole.endsWith('xé'));
  await opened.close();

  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await cut.locator('[data-test=cell-copy]').click();
  await cut.locator('[data-test=cell-copy]', { hasText: 'copied' }).waitFor();
  assert.equal((await page.evaluate(() => navigator.clipboard.readText())).length, 3_000_001);
  await screenshot(page, 'session-cut-cells');
  await page.close();
});

test('the page of a running session follows its output live and shows when it ends', async () => {
  const started = await api(browser.context, server.url, 'POST', '/api/sessions', { connection: 'sh', input: 'for i in $(seq 1 12); do echo "line $i"; sleep 0.2; done' });
  const page = await browser.context.newPage();
  // The first read of the output answers late, so live lines arrive while it is out (as on a
  // busy machine): the page must still follow, with no line lost or doubled.
  let delayed = false;
  await page.route(/\/output\?/, async (route) => {
    const response = await route.fetch();
    if (!delayed) {
      delayed = true;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    await route.fulfill({ response });
  });
  await page.goto(`${server.url}/sessions/${started.id}`);
  await page.locator('[data-test=output]', { hasText: 'line 1' }).waitFor();
  // Later lines arrive over the live socket, without a reload.
  await page.locator('[data-test=output]', { hasText: 'line 12' }).waitFor({ timeout: 10_000 });
  await page.locator('[data-test=session-facts] [data-test=status]', { hasText: 'done' }).waitFor({ timeout: 10_000 });
  const text = await page.locator('[data-test=output]').textContent();
  const lines = text.split('\n').filter((line) => line.startsWith('line '));
  assert.deepEqual(lines, Array.from({ length: 12 }, (_, i) => `line ${i + 1}`), 'every line once, in order');
  assert.ok(delayed, 'the first read of the output was held back');
  await page.close();
});

test('a session is shared with another user from its page', async () => {
  const session = await runAndWait(browser.context, server.url, 'sh', 'echo for bob');
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/sessions/${session.id}`);
  await page.click('[data-test=share]');
  const bob = (await api(browser.context, server.url, 'GET', '/api/users')).find((user) => user.username === 'bob');
  await page.selectOption('[data-test=share-target]', `user:${bob.id}`);
  await page.fill('[data-test=share-note]', 'have a look');
  await page.locator('[data-test=share-none]').waitFor();
  await page.click('[data-test=share-submit]');
  // Who has access shows at once, with a way to take it back.
  const entry = page.locator('[data-test=share-entry]', { hasText: 'bob' });
  await entry.waitFor();
  assert.match(await entry.innerText(), /have a look/);
  const shares = await api(browser.context, server.url, 'GET', `/api/sessions/${session.id}/shares`);
  assert.equal(shares[0].user.username, 'bob');
  assert.equal(shares[0].note, 'have a look');

  // The link to send them is the session's own address.
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  assert.equal(await page.inputValue('[data-test=share-link]'), `${server.url}/sessions/${session.id}`);
  await page.click('[data-test=share-copy-link]');
  await page.locator('[data-test=share-copy-link]', { hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${server.url}/sessions/${session.id}`);
  await screenshot(page, 'session-share');

  await entry.locator('[data-test=share-revoke]').click();
  await page.locator('[data-test=share-none]').waitFor();
  assert.deepEqual(await api(browser.context, server.url, 'GET', `/api/sessions/${session.id}/shares`), []);
  await page.close();
});

test('the run page streams a command and links to its session', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/run`);
  await page.locator('[data-test=run-connection] option[value=sh]').waitFor({ state: 'attached' });
  await page.selectOption('[data-test=run-connection]', 'sh');
  await page.fill('[data-test=run-input]', 'for i in 1 2 3; do echo tick $i; sleep 0.3; done');
  await page.press('[data-test=run-input]', 'Control+Enter');
  await page.locator('[data-test=run-output]', { hasText: 'tick 3' }).waitFor();
  await page.locator('[data-test=run-status] [data-test=status]', { hasText: 'done' }).waitFor();
  await screenshot(page, 'run');
  await page.click('[data-test=run-session-link]');
  await page.waitForURL(/\/sessions\/[0-9a-f-]{36}$/);
  await page.locator('[data-test=output]', { hasText: 'tick 3' }).waitFor();
  await page.close();
});

test('with downloads disabled the page says so instead of offering them', async () => {
  const locked = await startServer({ DISABLE_SESSIONS_DOWNLOAD: 'true' });
  const other = await launchBrowser();
  try {
    await logInAs(other.context, locked.url);
    await api(other.context, locked.url, 'POST', '/api/connections', { name: 'sh', kind: 'command', command: { argv: ['sh', '-c'] } });
    const started = await api(other.context, locked.url, 'POST', '/api/sessions', { connection: 'sh', input: 'echo hi' });
    const page = await other.context.newPage();
    await page.goto(`${locked.url}/sessions/${started.id}`);
    await page.locator('[data-test=downloads-disabled]').waitFor();
    assert.equal(await page.locator('[data-test=download-menu]').count(), 0);
    // The audit trail's export is a download too.
    await page.goto(`${locked.url}/admin/audit`);
    await page.locator('[data-test=audit-export-disabled]').waitFor();
    assert.equal(await page.locator('[data-test=audit-export-csv]').count(), 0);
  } finally {
    await other.close();
    await locked.stop();
  }
  const page = await browser.context.newPage();
  const session = await runAndWait(browser.context, server.url, 'sh', 'echo downloadable');
  await page.goto(`${server.url}/sessions/${session.id}`);
  await page.locator('[data-test=download-menu]').waitFor();
  assert.equal(await page.locator('[data-test=downloads-disabled]').count(), 0);
  await page.goto(`${server.url}/admin/audit`);
  await page.locator('[data-test=audit-export-csv]').waitFor();
  assert.equal(await page.locator('[data-test=audit-export-disabled]').count(), 0);
  await page.close();
});
