// Logging in and out, being sent to the login page from a deep link and back again, and the
// administration pages: users, groups, API tokens.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, screenshot, collectPageErrors, logInAs, api, agent, ADMIN_PASSWORD, expectRefusal } from '../support.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test('a deep link without a login goes to the login page, then on to the page', async () => {
  const setup = await launchBrowser();
  await logInAs(setup.context, server.url);
  const record = await agent(setup.context, server.url);
  const recorded = await record('POST', '/api/ingest/sessions', { connection: 'ops', connection_kind: 'ssh', type: 'ssh', input: 'uptime' });
  await setup.close();
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    const errors = collectPageErrors(page);
    const id = recorded.id;

    await page.goto(`${server.url}/sessions/${id}`);
    await page.waitForURL('**/login?next=*');
    assert.equal(new URL(page.url()).searchParams.get('next'), `/sessions/${id}`);
    assert.equal(await page.locator('[data-test=nav-sessions]').count(), 0, 'no navigation before login');
    await screenshot(page, 'login');

    await page.fill('[data-test=login-username]', 'admin');
    expectRefusal(page, 401, '/api/auth/login');
    await page.fill('[data-test=login-password]', 'wrong password');
    await page.click('[data-test=login-submit]');
    const error = page.locator('[data-test=login-error]');
    await error.waitFor();
    assert.equal(await error.textContent(), 'wrong username or password');

    await page.fill('[data-test=login-password]', ADMIN_PASSWORD);
    await page.click('[data-test=login-submit]');
    await page.waitForURL(`**/sessions/${id}`);
    assert.equal(await page.locator('[data-test=session-id]').textContent(), id);
    assert.equal(await page.locator('[data-test=user-name]').textContent(), 'Administrator');

    await page.click('[data-test=user-menu]');
    await page.click('[data-test=logout]');
    await page.waitForURL('**/login');

    await page.goto(`${server.url}/admin/users`);
    await page.waitForURL('**/login?next=*');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/admin/users');
    // The 401 from /api/me before logging in is expected; nothing else may fail.
    assert.deepEqual(errors.filter((line) => !line.includes('401')), []);
  } finally {
    await browser.close();
  }
});

test('an administrator adds a user and a group, and the user logs in with a token page', async () => {
  const admin = await launchBrowser();
  const alice = await launchBrowser();
  try {
    await logInAs(admin.context, server.url);
    const page = await admin.context.newPage();
    await page.goto(`${server.url}/admin/users`);

    await page.fill('[data-test=new-username]', 'alice');
    await page.fill('[data-test=new-display-name]', 'Alice Liddell');
    await page.fill('[data-test=new-password]', 'alice-heron-basalt-kite');
    await page.click('[data-test=create-user]');
    const row = page.locator('[data-test=user-row][data-username=alice]');
    await row.waitFor();
    assert.match(await row.textContent(), /Alice Liddell/);
    await screenshot(page, 'admin-users');

    await page.click('[data-test=tab-groups]');
    await page.fill('[data-test=new-group-name]', 'dba');
    await page.fill('[data-test=new-group-description]', 'Database reviewers');
    await page.click('[data-test=create-group]');
    const card = page.locator('[data-test=group-card][data-group=dba]');
    await card.waitFor();
    await card.locator('[data-test=member-choice]').selectOption({ label: 'alice (Alice Liddell)' });
    await card.locator('[data-test=add-member]').click();
    await card.locator('[data-test=member]', { hasText: 'alice' }).waitFor();
    await screenshot(page, 'admin-groups');

    await page.click('[data-test=tab-audit]');
    await page.locator('[data-test=audit-row]', { hasText: 'group.member_added' }).waitFor();
    await screenshot(page, 'admin-audit');

    // Alice logs in in her own browser: no Admin link for her, and she makes a token.
    await logInAs(alice.context, server.url, 'alice', 'alice-heron-basalt-kite');
    const herPage = await alice.context.newPage();
    await herPage.goto(`${server.url}/tokens`);
    await herPage.locator('[data-test=token-form]').waitFor();
    assert.equal(await herPage.locator('[data-test=nav-admin]').count(), 0);
    await herPage.fill('[data-test=token-name]', 'laptop');
    await herPage.click('[data-test=token-create]');
    const secret = herPage.locator('[data-test=token-secret] code');
    await secret.waitFor();
    assert.match(await secret.textContent(), /^loupe_[0-9a-f]{64}$/);
    await herPage.locator('[data-test=token-row]').waitFor();
    await screenshot(herPage, 'tokens');

    // The token works against the API on its own.
    const me = await fetch(`${server.url}/api/me`, { headers: { authorization: `Bearer ${await secret.textContent()}` } });
    assert.equal(me.status, 200);
    assert.equal((await me.json()).groups[0].name, 'dba');
  } finally {
    await admin.close();
    await alice.close();
  }
});

test('an administrator adds a connection whose URL is never shown again, and tests it', async () => {
  const admin = await launchBrowser();
  try {
    await logInAs(admin.context, server.url);
    const page = await admin.context.newPage();
    await page.goto(`${server.url}/admin/connections`);
    await page.fill('[data-test=new-connection-name]', 'lite');
    // A database reached over the network: how its URL asks for TLS is said beside it.
    await page.selectOption('[data-test=new-connection-kind]', 'postgres');
    const hint = page.locator('[data-test=url-tls-hint]');
    await hint.waitFor();
    assert.match(await hint.textContent(), /sslmode=verify-full&sslrootcert=/);
    await screenshot(page, 'admin-connection-form-postgres');
    await page.selectOption('[data-test=new-connection-kind]', 'sqlite');
    await hint.waitFor({ state: 'detached' });
    const secretPath = `/tmp/loupe-e2e-${Date.now()}-hunter2.db`;
    await page.fill('[data-test=new-connection-url]', `sqlite://${secretPath}?mode=rwc`);
    assert.equal(await page.locator('[data-test=new-connection-url]').getAttribute('type'), 'password');
    await page.click('[data-test=create-connection]');
    const row = page.locator('[data-test=connection-row][data-name=lite]');
    await row.waitFor();
    assert.equal(await row.locator('[data-test=connection-target]').textContent(), 'URL stored ••••••');
    assert.ok(!(await page.content()).includes('hunter2'), 'the URL is not on the page');

    await row.locator('[data-test=test-connection]').click();
    await row.locator('[data-test=connection-check]', { hasText: 'SQLite' }).waitFor();
    assert.equal(await row.locator('[data-test=connection-check]').getAttribute('class'), 'ok-text');
    await screenshot(page, 'admin-connections');
  } finally {
    await admin.close();
  }
});
