// Terminal sessions in the browser: a terminal typed into on the Run page, the recording played
// back with seek and search, and a second browser joining a running terminal at its current
// screen. The shell connection runs `sh -i` in a PTY on the server.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, screenshot, collectPageErrors, logInAs, api, closeAll, expectRefusal } from '../support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await logInAs(browser.context, server.url);
  await api(browser.context, server.url, 'POST', '/api/connections', {
    name: 'box',
    kind: 'shell',
    command: { argv: ['sh', '-i'], env: { PS1: '$ ' } },
  });
});

after(() => closeAll(browser, server));

/** The text rows xterm.js shows in `screen` (its DOM renderer draws one element per row). */
async function rows(screen) {
  return (await screen.locator('.xterm-rows > div').allInnerTexts()).map((row) => row.replace(/\u00a0/g, ' ').trimEnd());
}

async function waitForRow(screen, wanted, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const shown = await rows(screen);
    if (shown.some((row) => (wanted instanceof RegExp ? wanted.test(row) : row === wanted))) return shown;
    if (Date.now() > deadline) throw new Error(`no row ${wanted} in ${JSON.stringify(shown)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Opens a terminal on `box` from the Run page; answers the page, its screen and the session id. */
async function openTerminal(context) {
  const page = await context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/run`);
  await page.locator('[data-test=run-connection]').selectOption('box');
  await page.locator('[data-test=open-terminal]').click();
  await page.locator('[data-test=terminal-open]').waitFor();
  const screen = page.locator('[data-test=terminal-screen]');
  await waitForRow(screen, /^\$/);
  const link = page.locator('[data-test=terminal-session-link]');
  await link.waitFor();
  const id = (await link.getAttribute('href')).split('/').pop();
  await screen.click();
  return { page, screen, id, errors };
}

test('a terminal typed into on the Run page is played back, sought and searched', async () => {
  const { page, screen, id, errors } = await openTerminal(browser.context);
  // The typed line reads hel''lo; only the output reads hello.
  await page.keyboard.type("echo hel''lo");
  await page.keyboard.press('Enter');
  await waitForRow(screen, 'hello');
  await screenshot(page, 'terminal-run-page', { phone: false });
  // Some time after it, so the moment before it is a different one.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await page.keyboard.type('echo later');
  await page.keyboard.press('Enter');
  await waitForRow(screen, 'later');
  await page.keyboard.type('exit');
  await page.keyboard.press('Enter');
  await page.locator('[data-test=terminal-ended]').filter({ hasText: 'exit status 0' }).waitFor();

  await page.goto(`${server.url}/sessions/${id}`);
  const player = page.locator('[data-test=player-screen]');
  await waitForRow(player, 'hello');
  await page.locator('[data-test=player-play]').waitFor();
  await page.locator('[data-test=keystrokes-note]', { hasText: 'not recorded' }).waitFor();
  // Back to the start: before the command ran, nothing of it is on the screen.
  await page.locator('[data-test=player-jump]').fill('0:00');
  await page.locator('[data-test=player-jump]').press('Enter');
  await page.locator('[data-test=player-time]').filter({ hasText: /^00:00 \// }).waitFor();
  const atStart = await rows(player);
  assert.ok(!atStart.includes('hello'), `the start shows ${JSON.stringify(atStart)}`);
  assert.ok(!atStart.includes('later'));

  await page.locator('[data-test=player-search]').fill('HELLO');
  await page.locator('[data-test=player-search-submit]').click();
  const hits = page.locator('[data-test=player-hit]');
  await hits.first().waitFor();
  assert.equal(await hits.count(), 1, 'only the output line: the typed one reads hel\'\'lo');
  await hits.first().click();
  const landed = await waitForRow(player, 'hello');
  assert.ok(!landed.includes('later'), `landed after the hit: ${JSON.stringify(landed)}`);
  await screenshot(page, 'terminal-player-search');

  // Keyboard: End shows the end again.
  await page.locator('[data-test=player]').focus();
  await page.keyboard.press('End');
  await waitForRow(player, 'later');
  await page.setViewportSize({ width: 420, height: 800 });
  await screenshot(page, 'terminal-player-420');
  await page.setViewportSize({ width: 1280, height: 800 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a second browser joins a running terminal at its current screen and follows it', async () => {
  const { page, screen, id, errors } = await openTerminal(browser.context);
  await page.keyboard.type('echo marker-$((40+2))');
  await page.keyboard.press('Enter');
  await waitForRow(screen, 'marker-42');

  const watcher = await launchBrowser();
  try {
    await logInAs(watcher.context, server.url);
    const watching = await watcher.context.newPage();
    const watchErrors = collectPageErrors(watching);
    await watching.goto(`${server.url}/sessions/${id}`);
    const player = watching.locator('[data-test=player-screen]');
    // Nothing new is typed meanwhile: the screen comes from the keyframe and the tail.
    await waitForRow(player, 'marker-42', 5_000);
    await watching.locator('[data-test=player-live]').waitFor();
    await screenshot(watching, 'terminal-joined-live', { phone: false });

    await page.keyboard.type('echo after-join');
    await page.keyboard.press('Enter');
    await waitForRow(player, 'after-join');
    await page.keyboard.type('exit');
    await page.keyboard.press('Enter');
    // Ended: the watcher's player turns into playback controls.
    await watching.locator('[data-test=player-play]').waitFor({ timeout: 10_000 });
    assert.deepEqual(watchErrors, []);
  } finally {
    await watcher.close();
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('a user adds an SSH public key on the Tokens page, sees its fingerprint, and removes it', async () => {
  const page = await browser.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/tokens`);
  const keys = page.locator('[data-test=ssh-keys]');
  await keys.locator('text=No keys yet.').waitFor();
  // A made-up ed25519 key (32 bytes of 0x01): what matters is its form.
  const publicKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB admin@e2e';
  expectRefusal(page, 400, '/api/me/ssh-keys');
  await page.locator('[data-test=ssh-key-input]').fill('not a key');
  await page.locator('[data-test=ssh-key-add]').click();
  await page.locator('[role=alert]', { hasText: 'public_key' }).waitFor();
  await page.locator('[data-test=ssh-key-input]').fill(publicKey);
  await page.locator('[data-test=ssh-key-add]').click();
  const row = page.locator('[data-test=ssh-key-row]');
  await row.waitFor();
  const text = await row.innerText();
  assert.match(text, /admin@e2e/);
  assert.match(text, /ssh-ed25519/);
  assert.match(text, /SHA256:/);
  await screenshot(page, 'tokens-ssh-keys');
  await page.locator('[data-test=ssh-key-remove]').click();
  await row.waitFor({ state: 'detached' });
  await keys.locator('text=No keys yet.').waitFor();
  // The form's own error line is not a page error; nothing else was logged.
  assert.deepEqual(errors.filter((error) => !/400 \(Bad Request\)/.test(error)), []);
  await page.close();
});
