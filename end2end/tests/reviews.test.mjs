// Reviews, with two people in two browsers: a user's command waits on a reviewed connection, a
// reviewer sees it arrive in the inbox and approves it, and the user's page shows the output
// without a reload; a rejection reaches the user the same way; access requested from the run
// page is granted live; an administrator sets a connection's review rules.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, screenshot, collectPageErrors, logInAs, api, closeAll, expectRefusal } from '../support.mjs';

let server;
let admin;
let requester;
let reviewer;

before(async () => {
  server = await startServer();
  admin = await launchBrowser();
  await logInAs(admin.context, server.url);
  const call = (method, path, body) => api(admin.context, server.url, method, path, body);
  const ursula = await call('POST', '/api/users', { username: 'ursula', display_name: 'Ursula', password: 'ursula-heron-basalt-kite' });
  const rita = await call('POST', '/api/users', { username: 'rita', display_name: 'Rita', password: 'rita-heron-basalt-kite' });
  const dba = await call('POST', '/api/groups', { name: 'dba' });
  await call('PUT', `/api/groups/${dba.id}/members/${rita.id}`);
  assert.ok(ursula.id);
  const shell = { kind: 'command', command: { argv: ['sh', '-c'] } };
  await call('POST', '/api/connections', { name: 'prod-sh', ...shell, review: { command_review: true, reviewer_groups: ['dba'] } });
  await call('POST', '/api/connections', { name: 'jit-sh', ...shell, review: { jit_access: true, reviewer_groups: ['dba'], max_access_seconds: 14400 } });
  await call('POST', '/api/connections', { name: 'plain-sh', ...shell });

  requester = await launchBrowser();
  await logInAs(requester.context, server.url, 'ursula', 'ursula-heron-basalt-kite');
  reviewer = await launchBrowser();
  await logInAs(reviewer.context, server.url, 'rita', 'rita-heron-basalt-kite');
});

after(() => closeAll(requester, reviewer, admin, server));

/** Opens the run page, chooses `connection` and runs `input` with `reason`. */
async function runHeld(page, connection, input, reason) {
  await page.goto(`${server.url}/run`);
  await page.locator(`[data-test=run-connection] option[value="${connection}"]`).waitFor({ state: 'attached' });
  await page.selectOption('[data-test=run-connection]', connection);
  await page.locator('[data-test=review-notice]').waitFor();
  await page.fill('[data-test=run-reason]', reason);
  await page.fill('[data-test=run-input]', input);
  await page.click('[data-test=run-submit]');
  await page.locator('[data-test=waiting-for-approval]').waitFor({ timeout: 5000 });
  // A marker that a reload would wipe: what follows must arrive on this very page.
  await page.evaluate(() => { window.loupeNoReload = true; });
}

test('a command waits for approval, the reviewer approves it live, and the output appears without a reload', async () => {
  const inbox = await reviewer.context.newPage();
  const inboxErrors = collectPageErrors(inbox);
  await inbox.goto(`${server.url}/reviews`);
  await inbox.locator('[data-test=reviews-empty]').first().waitFor();

  const run = await requester.context.newPage();
  const runErrors = collectPageErrors(run);
  await runHeld(run, 'prod-sh', 'echo approved-output; echo "from $(whoami)" >/dev/null', 'release 2.4 hotfix');
  await screenshot(run, 'reviews-run-waiting');

  // The reviewer's inbox gets it without a reload, and the badge counts it.
  const row = inbox.locator('[data-test=review-row][data-state=pending]');
  await row.waitFor({ timeout: 5000 });
  assert.match(await row.getAttribute('class'), /fresh/);
  assert.match(await row.innerText(), /prod-sh/);
  assert.match(await row.innerText(), /release 2\.4 hotfix/);
  await inbox.locator('[data-test=reviews-waiting]', { hasText: '1' }).waitFor({ timeout: 5000 });
  await screenshot(inbox, 'reviews-inbox');

  await row.locator('[data-test=review-link]').click();
  await inbox.locator('[data-test=review-input]').waitFor();
  assert.match(await inbox.locator('[data-test=review-input]').innerText(), /echo approved-output/);
  assert.equal(await inbox.locator('[data-test=review-reason]').innerText(), 'release 2.4 hotfix');
  await screenshot(inbox, 'reviews-detail');
  await inbox.fill('[data-test=review-note]', 'ship it');
  await inbox.click('[data-test=approve]');
  await inbox.locator('[data-test=review-state]', { hasText: 'executed' }).waitFor({ timeout: 5000 });
  await inbox.locator('[data-test=decision]', { hasText: 'ship it' }).waitFor();
  await inbox.locator('[data-test=reviews-waiting]').waitFor({ state: 'detached', timeout: 5000 });

  // The requester's page, never reloaded, shows the run.
  await run.locator('[data-test=run-output]', { hasText: 'approved-output' }).waitFor({ timeout: 10_000 });
  await run.locator('[data-test=run-status] [data-test=status]', { hasText: 'done' }).waitFor({ timeout: 10_000 });
  assert.equal(await run.evaluate(() => window.loupeNoReload), true);
  assert.match(await run.locator('[data-test=run-output]').innerText(), /approved by rita \(ship it\)/);
  await screenshot(run, 'reviews-run-approved');
  assert.deepEqual(runErrors, []);
  assert.deepEqual(inboxErrors, []);
  await run.close();
  await inbox.close();
});

test('a rejection reaches the waiting user with the reviewer\'s reason', async () => {
  const run = await requester.context.newPage();
  await runHeld(run, 'prod-sh', 'rm -rf /srv/cache', 'disk full');
  const review = await api(reviewer.context, server.url, 'GET', '/api/reviews?view=inbox&state=pending');
  assert.equal(review.items.length, 1);
  const detail = await reviewer.context.newPage();
  await detail.goto(`${server.url}/reviews/${review.items[0].id}`);
  await detail.locator('[data-test=reject]').click();
  // No reason, no rejection: the page says why.
  await detail.locator('[role=alert]', { hasText: 'Say why' }).waitFor();
  await detail.fill('[data-test=review-note]', 'use the cleanup job instead');
  await detail.click('[data-test=reject]');
  await detail.locator('[data-test=review-state]', { hasText: 'rejected' }).waitFor({ timeout: 5000 });

  await run.locator('[data-test=run-rejected]', { hasText: 'use the cleanup job instead' }).waitFor({ timeout: 5000 });
  await run.locator('[data-test=run-status] [data-test=status]', { hasText: 'rejected' }).waitFor();
  assert.equal(await run.evaluate(() => window.loupeNoReload), true);
  await run.close();
  await detail.close();
});

test('a held session\'s own page says it waits, then follows the run once it is approved', async () => {
  const held = await api(requester.context, server.url, 'POST', '/api/sessions', { connection: 'prod-sh', input: 'echo from-the-session-page and select from where', reason: 'check' });
  assert.equal(held.status, 'pending_review');
  const page = await requester.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/sessions/${held.id}`);
  await page.locator('[data-test=session-waiting]').waitFor();
  // The held command is on the page while it waits, as the shell command it is.
  const heldInput = page.locator('[data-test=held-input]');
  await heldInput.waitFor();
  assert.equal(await heldInput.innerText(), 'echo from-the-session-page and select from where');
  assert.equal(await heldInput.getAttribute('data-language'), 'shell');
  assert.equal(await heldInput.locator('.kw').count(), 0, 'no SQL keywords marked in a shell command');
  await page.evaluate(() => { window.loupeNoReload = true; });

  const review = await api(reviewer.context, server.url, 'GET', `/api/reviews?session=${held.id}`);
  await api(reviewer.context, server.url, 'POST', `/api/reviews/${review.items[0].id}/approve`, {});
  await page.locator('[data-test=session-facts] [data-test=status]', { hasText: 'done' }).waitFor({ timeout: 10_000 });
  await page.locator('[data-test=timeline]', { hasText: 'from-the-session-page' }).waitFor({ timeout: 10_000 });
  await page.locator('[data-test=session-waiting]').waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => window.loupeNoReload), true);
  assert.deepEqual(errors, []);
  await page.close();
});

test('access asked for on the run page is granted live, and then runs go through', async () => {
  const run = await requester.context.newPage();
  const errors = collectPageErrors(run);
  await run.goto(`${server.url}/run`);
  await run.locator('[data-test=run-connection] option[value="jit-sh"]').waitFor({ state: 'attached' });
  await run.selectOption('[data-test=run-connection]', 'jit-sh');
  await run.locator('[data-test=access-form]').waitFor();
  // Running before access is granted is refused, and says so.
  expectRefusal(run, 403, '/api/sessions');
  await run.fill('[data-test=run-input]', 'echo before-access');
  await run.click('[data-test=run-submit]');
  await run.locator('[data-test=error-line]').waitFor();
  // The form offers windows up to the connection's longest (4 h).
  const options = await run.locator('[data-test=access-duration] option').allInnerTexts();
  assert.deepEqual(options, ['15 min', '1 h', '4 h']);
  await run.selectOption('[data-test=access-duration]', '3600');
  await run.fill('[data-test=access-reason]', 'INC-311 investigate');
  await run.click('[data-test=request-access]');
  await run.locator('[data-test=access-pending]').waitFor({ timeout: 5000 });

  const pending = await api(reviewer.context, server.url, 'GET', '/api/reviews?view=inbox&state=pending&kind=access');
  assert.equal(pending.items[0].access_seconds, 3600);
  await api(reviewer.context, server.url, 'POST', `/api/reviews/${pending.items[0].id}/approve`, {});
  await run.locator('[data-test=access-granted]').waitFor({ timeout: 5000 });
  // The refusal no longer holds, so it is no longer shown.
  await run.locator('[data-test=error-line]').waitFor({ state: 'detached' });
  await screenshot(run, 'reviews-access-granted');

  await run.fill('[data-test=run-input]', 'echo inside-the-window');
  await run.click('[data-test=run-submit]');
  await run.locator('[data-test=run-output]', { hasText: 'inside-the-window' }).waitFor({ timeout: 10_000 });
  assert.deepEqual(errors, []);
  await run.close();
});

test('an administrator sets a connection\'s review rules on the connections page', async () => {
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/admin/connections`);
  const row = page.locator('[data-test=connection-row][data-name="plain-sh"]');
  await row.waitFor();
  assert.equal(await row.locator('[data-test=connection-reviews]').innerText(), 'none');
  await row.locator('[data-test=edit-reviews]').click();
  await page.check('[data-test=rules-commands]');
  // Reviewer groups are picked from the groups that exist.
  await page.locator('[data-test=rules-group]').first().waitFor();
  const offered = await page.locator('[data-test=rules-group]').evaluateAll((labels) => labels.map((label) => label.dataset.group));
  assert.deepEqual(offered, ['dba']);
  // Approval needed with no reviewer picked is refused, and the message says what is missing.
  expectRefusal(page, 400, '/api/connections/');
  await page.click('[data-test=rules-save]');
  await page.locator('[role=alert]', { hasText: 'reviewer_groups must name at least one group' }).waitFor();
  await page.check('[data-test=rules-group][data-group=dba] input');
  await page.fill('[data-test=rules-count]', '1');
  await page.click('[data-test=rules-save]');
  await page.locator('[data-test=connection-row][data-name="plain-sh"] [data-test=connection-reviews]', { hasText: 'Each command needs 1 approval from dba' }).waitFor({ timeout: 5000 });
  await screenshot(page, 'reviews-connection-rules');
  const connection = await api(admin.context, server.url, 'GET', '/api/connections/plain-sh');
  assert.deepEqual(connection.review.reviewer_groups, ['dba']);
  assert.equal(connection.review.command_review, true);
  // The one refusal above (a 400 the page shows) is not an error of the page.
  assert.deepEqual(errors, []);
  await page.close();
});
