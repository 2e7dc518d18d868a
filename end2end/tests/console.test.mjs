// The console as each of its users sees it: a list that does not mislead, stopping a running
// session, and actions that fit the user's role (issue #18). Each test looks at what the user
// sees: text, visibility, where a click goes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startServer, launchBrowser, screenshot, collectPageErrors, logInAs, api, closeAll, accessibilityProblems, runAndWait, waitForSession, expectRefusal } from '../support.mjs';

let server;
let admin;
let bob;
let audrey;
let bobId;

// A zone away from UTC by a non-whole hour, so a time shown in UTC (or not converted) shows.
const ZONE = 'America/St_Johns';

before(async () => {
  server = await startServer({ LOUPE_DEMO: 'true' });
  admin = await launchBrowser({ timezoneId: ZONE, locale: 'en-US' });
  await logInAs(admin.context, server.url);
  await api(admin.context, server.url, 'POST', '/api/connections', { name: 'sh', kind: 'command', command: { argv: ['sh', '-c'] } });
  bobId = (await api(admin.context, server.url, 'POST', '/api/users', { username: 'bob', password: 'bob-heron-basalt-kite' })).id;
  await api(admin.context, server.url, 'POST', '/api/users', { username: 'audrey', password: 'audrey-heron-basalt-kite', role: 'auditor' });
  bob = await launchBrowser();
  await logInAs(bob.context, server.url, 'bob', 'bob-heron-basalt-kite');
  audrey = await launchBrowser();
  await logInAs(audrey.context, server.url, 'audrey', 'audrey-heron-basalt-kite');
});

after(() => closeAll(admin, bob, audrey, server));

test('the list shows failures as failures, rows for queries, absolute times in the zone, and moves its count live', async () => {
  const failed = await runAndWait(admin.context, server.url, 'sh', 'echo x; exit 3');
  assert.equal(failed.status, 'failed', 'a non-zero exit is a failure');
  const query = await runAndWait(admin.context, server.url, 'demo', 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1300) SELECT i FROM n');
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/sessions`);
  const failedRow = page.locator(`[data-test=session-row][data-id="${failed.id}"]`);
  await failedRow.waitFor();
  assert.equal(await failedRow.locator('[data-test=status]').textContent(), 'failed');
  assert.equal(await failedRow.locator('[data-test=exit-code]').textContent(), 'exit 3');
  const queryRow = page.locator(`[data-test=session-row][data-id="${query.id}"]`);
  assert.equal(await queryRow.locator('[data-test=session-output]').textContent(), '1,300 rows');

  // The start in the browser's zone, to the second, with the zone named once in the heading.
  const expected = await page.evaluate((iso) => {
    const at = new Date(iso);
    const two = (n) => String(n).padStart(2, '0');
    return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
  }, failed.started_at);
  assert.equal(await failedRow.locator('[data-test=started-at]').textContent(), expected);
  assert.match(await page.locator('[data-test=started-heading]').textContent(), new RegExp(`\\(${ZONE}\\)`));
  const utc = new Date(failed.started_at).toISOString().slice(11, 19);
  assert.ok(!expected.endsWith(utc), 'shown in the browser zone, not in UTC');

  // Status = failed finds it, and only it.
  await page.selectOption('[data-test=filter-status]', 'failed');
  await page.waitForURL(/status=failed/);
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll('[data-test=session-row]')];
    return rows.length === 1 && rows[0].dataset.id === id;
  }, failed.id);
  await page.selectOption('[data-test=filter-status]', '');
  await page.waitForURL((url) => !url.search.includes('status='));
  await page.locator('[data-test=session-count]', { hasText: '2 sessions' }).waitFor();

  // A session started now joins the list and its count.
  const late = await api(admin.context, server.url, 'POST', '/api/sessions', { connection: 'sh', input: 'echo late' });
  await page.locator(`[data-test=session-row][data-id="${late.id}"]`).waitFor();
  await page.locator('[data-test=session-count]', { hasText: '3 sessions' }).waitFor();
  await screenshot(page, 'console-list');

  // A click anywhere on a row opens the session.
  await failedRow.locator('td').first().click();
  await page.waitForURL(`**/sessions/${failed.id}`);
  await page.locator('[data-test=session-facts]').waitFor();
  assert.deepEqual(errors, []);
  await page.close();
});

test('ids that share their first 13 characters are shown long enough to tell apart', async () => {
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  // Three sessions started in the same millisecond: their UUIDv7s share 13 characters.
  const ids = ['0193a2b4-5c6d-7001-8000-00000000000a', '0193a2b4-5c6d-7002-8000-00000000000b', '0193a2b4-5c6d-7003-8000-00000000000c'];
  await page.route(/\/api\/sessions\?/, async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    body.items = body.items.slice(0, 1).flatMap((item) => ids.map((id) => ({ ...item, id })));
    await route.fulfill({ response, json: body });
  });
  await runAndWait(admin.context, server.url, 'sh', 'echo same millisecond');
  await page.goto(`${server.url}/sessions`);
  await page.locator('[data-test=session-row]').first().waitFor();
  const shown = await page.locator('[data-test=session-link]').allTextContents();
  assert.deepEqual(shown, ['0193a2b4-5c6d-7001', '0193a2b4-5c6d-7002', '0193a2b4-5c6d-7003']);
  assert.equal(await page.locator('[data-test=session-link]').first().getAttribute('title'), ids[0]);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a running session is stopped from the list and from its page', async () => {
  for (const where of ['list', 'page']) {
    // On its page the session keeps writing, so its header is drawn again while it stops.
    const input = where === 'list' ? 'echo started; sleep 60' : 'echo started; while true; do echo tick; sleep 0.1; done';
    const running = await api(admin.context, server.url, 'POST', '/api/sessions', { connection: 'sh', input });
    const page = await admin.context.newPage();
    const errors = collectPageErrors(page);
    page.on('dialog', (dialog) => dialog.accept());
    if (where === 'list') {
      await page.goto(`${server.url}/sessions`);
      const row = page.locator(`[data-test=session-row][data-id="${running.id}"]`);
      await row.locator('[data-test=stop]').click();
      await row.locator('[data-test=status]', { hasText: 'cancelled' }).waitFor({ timeout: 10_000 });
      assert.equal(await row.locator('[data-test=stop]').count(), 0, 'no Stop once it ended');
      assert.equal(page.url(), `${server.url}/sessions`, 'the Stop click did not open the row');
    } else {
      await page.goto(`${server.url}/sessions/${running.id}`);
      await page.locator('[data-test=output]', { hasText: 'started' }).waitFor();
      await screenshot(page, 'console-session-running');
      // The stop is held back until the header has been drawn again (the output grew): the
      // button says "Stopping…" all the while.
      let release;
      const held = new Promise((done) => { release = done; });
      await page.route('**/kill', async (route) => { await held; await route.continue(); });
      await page.click('[data-test=stop]');
      const outputFact = page.locator('[data-test=session-facts] > div', { hasText: 'Output' });
      const before = await outputFact.innerText();
      await page.waitForFunction((seen) => [...document.querySelectorAll('[data-test=session-facts] > div')]
        .some((fact) => fact.innerText.startsWith('Output') && fact.innerText !== seen), before);
      assert.equal(await page.locator('[data-test=stop]').textContent(), 'Stopping…');
      assert.ok(await page.locator('[data-test=stop]').isDisabled());
      release();
      await page.locator('[data-test=session-facts] [data-test=status]', { hasText: 'cancelled' }).waitFor({ timeout: 10_000 });
      assert.equal(await page.locator('[data-test=stop]').count(), 0);
    }
    assert.equal((await waitForSession(admin.context, server.url, running.id, (session) => session.status === 'cancelled')).status, 'cancelled');
    assert.deepEqual(errors, []);
    await page.close();
  }
});

test('actions fit the role: others see no Re-run, Share or Stop, auditors no Run, plain users no admin pages', async () => {
  const running = await api(admin.context, server.url, 'POST', '/api/sessions', { connection: 'sh', input: 'sleep 60' });
  await api(admin.context, server.url, 'POST', `/api/sessions/${running.id}/shares`, { users: [bobId] });
  try {
    // Bob may watch the admin's session shared with him, not act on it.
    const page = await bob.context.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${server.url}/sessions/${running.id}`);
    await page.locator('[data-test=copy-id]').waitFor();
    for (const action of ['rerun', 'share', 'stop']) {
      assert.equal(await page.locator(`[data-test=${action}]`).count(), 0, `bob is not offered ${action}`);
    }
    await page.goto(`${server.url}/sessions`);
    await page.locator(`[data-test=session-row][data-id="${running.id}"]`).waitFor();
    assert.equal(await page.locator('[data-test=stop]').count(), 0, 'no Stop in the list either');
    assert.equal(await page.locator('[data-test=nav-admin]').count(), 0);
    await page.goto(`${server.url}/admin/connections`);
    await page.locator('[data-test=not-allowed]', { hasText: 'you are logged in as user' }).waitFor();
    assert.equal(await page.locator('[data-test=tab-users]').count(), 0, 'no admin tabs behind it');
    await screenshot(page, 'console-admin-not-allowed');
    assert.deepEqual(errors, []);
    await page.close();

    // The auditor reads everything and runs nothing.
    const audit = await audrey.context.newPage();
    const auditErrors = collectPageErrors(audit);
    await audit.goto(`${server.url}/sessions/${running.id}`);
    await audit.locator('[data-test=copy-id]').waitFor();
    for (const action of ['rerun', 'share', 'stop']) {
      assert.equal(await audit.locator(`[data-test=${action}]`).count(), 0, `the auditor is not offered ${action}`);
    }
    await audit.locator('[data-test=nav-admin]').waitFor();
    assert.equal(await audit.locator('[data-test=nav-run]').count(), 0, 'no Run in the navigation');
    await audit.goto(`${server.url}/run`);
    await audit.locator('[data-test=not-allowed]', { hasText: 'you are logged in as auditor' }).waitFor();
    assert.equal(await audit.locator('[data-test=run-input]').count(), 0);
    assert.deepEqual(auditErrors, []);
    await audit.close();

    // The owner is offered all three.
    const own = await admin.context.newPage();
    await own.goto(`${server.url}/sessions/${running.id}`);
    for (const action of ['rerun', 'share', 'stop']) await own.locator(`[data-test=${action}]`).waitFor();
    await own.close();
  } finally {
    await api(admin.context, server.url, 'POST', `/api/sessions/${running.id}/kill`, {});
  }
});

test('menus close on Escape, on a click outside and after a choice', async () => {
  const session = await runAndWait(admin.context, server.url, 'sh', 'echo menu');
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/sessions/${session.id}`);
  const items = page.locator('[data-test=download-menu] [role=menuitem]');
  await page.click('[data-test=download-button]');
  await items.first().waitFor();
  assert.equal(await page.getAttribute('[data-test=download-button]', 'aria-expanded'), 'true');
  await page.keyboard.press('Escape');
  await items.first().waitFor({ state: 'detached' });

  await page.click('[data-test=download-button]');
  await items.first().waitFor();
  await page.click('[data-test=session-facts]');
  await items.first().waitFor({ state: 'detached' });

  await page.click('[data-test=download-button]');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=download-txt]')]);
  assert.equal(download.suggestedFilename().endsWith('.txt'), true);
  await items.first().waitFor({ state: 'detached' });

  const userItems = page.locator('[data-test=logout]');
  await page.click('[data-test=user-menu]');
  await userItems.waitFor();
  await page.keyboard.press('Escape');
  await userItems.waitFor({ state: 'detached' });
  await page.click('[data-test=user-menu]');
  await userItems.waitFor();
  await page.click('[data-test=page-title]');
  await userItems.waitFor({ state: 'detached' });
  assert.deepEqual(errors, []);
  await page.close();
});

test('an unknown or malformed session id shows a not-found page with the way back', async () => {
  const page = await admin.context.newPage();
  expectRefusal(page, 404, '/api/sessions/');
  for (const id of ['0193a2b4-5c6d-7001-8000-00000000000a', 'not-an-id']) {
    await page.goto(`${server.url}/sessions/${id}`);
    await page.locator('[data-test=not-found]', { hasText: id }).waitFor();
    await page.locator('[data-test=nav-sessions]').waitFor();
    assert.equal(await page.locator('[data-test=error-panel]').count(), 0);
  }
  await page.click('[data-test=not-found] a');
  await page.waitForURL(`${server.url}/sessions`);
  await page.close();
});

test('the period picker offers presets and a date-time range checked field by field', async () => {
  await runAndWait(admin.context, server.url, 'sh', 'echo in range');
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/sessions`);
  await page.locator('[data-test=session-row]').first().waitFor();
  const options = await page.locator('[data-test=filter-period] option').allTextContents();
  assert.deepEqual(options, ['Any time', 'Last 15 minutes', 'Last hour', 'Today', 'Last 24 hours', 'Last 7 days', 'Last 30 days', 'Custom range…']);
  for (const preset of ['15m', 'today']) {
    await page.selectOption('[data-test=filter-period]', preset);
    await page.waitForURL(new RegExp(`period=${preset}`));
    await page.locator('[data-test=session-row]').first().waitFor();
  }

  // The range is picked in the browser's zone and kept in UTC: 10:00 in St. John's in December
  // (UTC-3:30) is 13:30 UTC.
  await page.selectOption('[data-test=filter-period]', 'custom');
  await page.fill('[data-test=filter-from]', '2020-12-07T10:00:00');
  await page.waitForURL(/from=/);
  assert.equal(new URL(page.url()).searchParams.get('from'), '2020-12-07T13:30:00.000000Z');
  // An end before the start is an error on To, and the list is not read with it: no request
  // goes out (a read with only the start would list every session since 2020).
  const reads = [];
  page.on('request', (request) => { if (request.url().includes('/api/sessions?')) reads.push(request.url()); });
  await page.fill('[data-test=filter-to]', '2020-12-07T09:00:00');
  await page.waitForURL(/to=/);
  await page.locator('[data-test=filter-to-error]', { hasText: 'the end must be later than the start' }).waitFor();
  await page.waitForTimeout(300);
  assert.deepEqual(reads, [], 'the list was not read with an unusable period');
  assert.equal(await page.getAttribute('[data-test=filter-to]', 'aria-invalid'), 'true');
  assert.equal(await page.locator('[data-test=session-row]').count(), 0);
  assert.equal(await page.locator('[data-test=empty]').count(), 0, 'not "no sessions match": the period is wrong');
  await screenshot(page, 'console-period-error');

  // A range around now lists the session again.
  const [from, to] = await page.evaluate(() => {
    const local = (ms) => { const at = new Date(ms); const two = (n) => String(n).padStart(2, '0'); return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`; };
    return [local(Date.now() - 3600_000), local(Date.now() + 3600_000)];
  });
  await page.fill('[data-test=filter-from]', from);
  await page.fill('[data-test=filter-to]', to);
  await page.waitForURL((url) => url.searchParams.get('to')?.startsWith(String(new Date().getUTCFullYear())));
  await page.locator('[data-test=session-row]').first().waitFor();
  assert.equal(await page.locator('[data-test=filter-to-error]').count(), 0);

  // A half-typed bound (the field's value is then "", as for a cleared one) is an error on its
  // field, and the last whole bound stays in force rather than vanishing.
  const kept = new URL(page.url()).searchParams.get('from');
  await page.focus('[data-test=filter-from]');
  await page.keyboard.press('Backspace');
  await page.locator('[data-test=filter-from-error]', { hasText: 'finish the date and time' }).waitFor();
  assert.equal(new URL(page.url()).searchParams.get('from'), kept);
  assert.equal(await page.getAttribute('[data-test=filter-from]', 'aria-invalid'), 'true');
  // A new period forgets it; leaving an empty field half-typed says so too (its value stays "",
  // so no change event tells).
  await page.selectOption('[data-test=filter-period]', '15m');
  await page.waitForURL(/period=15m/);
  await page.selectOption('[data-test=filter-period]', 'custom');
  await page.waitForURL(/period=custom/);
  assert.equal(await page.locator('[data-test=filter-from-error]').count(), 0);
  await page.goto(`${server.url}/sessions?period=custom`);
  await page.focus('[data-test=filter-to]');
  await page.keyboard.type('12');
  await page.locator('[data-test=filter-period]').focus();
  await page.locator('[data-test=filter-to-error]', { hasText: 'finish the date and time' }).waitFor();
  assert.equal(new URL(page.url()).searchParams.get('to'), null);

  // A bound in the address that is not a date names its field.
  await page.goto(`${server.url}/sessions?period=custom&from=yesterday`);
  await page.locator('[data-test=filter-from-error]', { hasText: 'not an RFC 3339 timestamp' }).waitFor();
  assert.equal(await page.locator('[data-test=session-row]').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('input is shown in its own language: SQL marked as SQL, a shell command as a command line', async () => {
  const shell = await runAndWait(admin.context, server.url, 'sh', 'echo select from where');
  const sql = await runAndWait(admin.context, server.url, 'demo', 'select 1 as one');
  const page = await admin.context.newPage();
  await page.goto(`${server.url}/sessions/${shell.id}`);
  const shellInput = page.locator('[data-test=input]');
  await shellInput.waitFor();
  assert.equal(await shellInput.getAttribute('data-language'), 'shell');
  assert.equal(await shellInput.innerText(), 'echo select from where');
  assert.equal(await shellInput.evaluate((block) => getComputedStyle(block, '::before').content), '"$ "', 'after a prompt');
  assert.equal(await shellInput.locator('.kw').count(), 0, 'no SQL keywords inside a shell command');
  assert.ok((await shellInput.boundingBox()).height < 40, 'one line, prompt and command together');
  await page.goto(`${server.url}/sessions/${sql.id}`);
  const sqlInput = page.locator('[data-test=input]');
  await sqlInput.waitFor();
  assert.equal(await sqlInput.getAttribute('data-language'), 'sql');
  assert.deepEqual(await sqlInput.locator('.kw').allTextContents(), ['select', 'as']);
  await page.close();
});

test('the list, session, run, reviews and admin pages have no serious or critical accessibility problem', async () => {
  const shell = await runAndWait(admin.context, server.url, 'sh', 'echo accessible');
  const sql = await runAndWait(admin.context, server.url, 'demo', 'select 1 as one, 2 as two');
  const running = await api(admin.context, server.url, 'POST', '/api/sessions', { connection: 'sh', input: 'echo running; sleep 60' });
  const page = await admin.context.newPage();
  const found = {};
  const pages = [
    ['/sessions', '[data-test=session-row]'],
    [`/sessions/${running.id}`, '[data-test=stop]'],
    [`/sessions/${shell.id}`, '[data-test=output]'],
    [`/sessions/${sql.id}`, '[data-test=row]'],
    ['/run', '[data-test=run-input]'],
    ['/reviews', '[data-test=page-title]'],
    ['/admin/users', '[data-test=tab-users]'],
    ['/admin/groups', '[data-test=tab-groups]'],
    ['/admin/connections', '[data-test=tab-connections]'],
    ['/admin/audit', '[data-test=tab-audit]'],
  ];
  for (const colorScheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme });
    for (const [path, ready] of pages) {
      await page.goto(`${server.url}${path}`);
      await page.locator(ready).first().waitFor();
      // Let the page's own reads settle before it is judged.
      await page.waitForLoadState('networkidle');
      const problems = await accessibilityProblems(page);
      if (problems.length > 0) found[`${colorScheme} ${path}`] = problems;
    }
  }
  await api(admin.context, server.url, 'POST', `/api/sessions/${running.id}/kill`, {});
  assert.deepEqual(found, {});
  await page.close();
});

/** Whether `cells` of `card` are all shown, inside a 420 px screen, with nothing to scroll sideways. */
async function assertCard(page, card, cells) {
  for (const cell of cells) {
    const box = await card.locator(`[data-cell=${cell}]`).boundingBox();
    assert.ok(box && box.width > 0 && box.x >= 0 && box.x + box.width <= 420, `${cell} is on the screen: ${JSON.stringify(box)}`);
  }
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'nothing to scroll sideways');
}

test('on a phone the list and the review inbox are cards, and a reviewer approves from one', async () => {
  const reviewers = await api(admin.context, server.url, 'POST', '/api/groups', { name: 'phone-reviewers' });
  await api(admin.context, server.url, 'PUT', `/api/groups/${reviewers.id}/members/${bobId}`);
  await api(admin.context, server.url, 'POST', '/api/connections', { name: 'held-sh', kind: 'command', command: { argv: ['sh', '-c'] }, review: { command_review: true, reviewer_groups: ['phone-reviewers'] } });
  const held = await api(admin.context, server.url, 'POST', '/api/sessions', { connection: 'held-sh', input: 'echo approved-from-a-phone', reason: 'phone check' });
  assert.equal(held.status, 'pending_review');

  const list = await admin.context.newPage();
  await list.setViewportSize({ width: 420, height: 860 });
  await list.goto(`${server.url}/sessions`);
  const row = list.locator('[data-test=session-row]').first();
  await row.waitFor();
  assert.equal(await list.locator('[data-test=sessions-table] thead').isVisible(), false, 'no table head on cards');
  await assertCard(list, row, ['who', 'status', 'what', 'when']);
  await screenshot(list, 'console-phone-list');
  await list.close();

  const phone = await bob.context.newPage();
  await phone.setViewportSize({ width: 420, height: 860 });
  await phone.goto(`${server.url}/reviews`);
  const card = phone.locator('[data-test=review-row][data-state=pending]').first();
  await card.waitFor();
  await assertCard(phone, card, ['who', 'status', 'what', 'when']);
  assert.match(await card.innerText(), /phone check/);
  await screenshot(phone, 'console-phone-reviews');
  await card.locator('[data-test=review-link]').click();
  await phone.locator('[data-test=approve]').waitFor();
  const approve = await phone.locator('[data-test=approve]').boundingBox();
  assert.ok(approve.x + approve.width <= 420, 'the approve button is on the screen');
  await screenshot(phone, 'console-phone-review');
  await phone.click('[data-test=approve]');
  await phone.locator('[data-test=review-state]', { hasText: 'executed' }).waitFor({ timeout: 10_000 });
  assert.equal((await waitForSession(admin.context, server.url, held.id, (session) => session.status === 'done')).status, 'done');
  await phone.close();
});


test('the run page shows the run as its session page does: rows inline, events in order, Stop while it runs', async () => {
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  page.on('dialog', (dialog) => dialog.accept());
  await page.goto(`${server.url}/run`);
  await page.locator('[data-test=run-connection] option[value=demo]').waitFor({ state: 'attached' });
  const run = async (connection, input) => {
    await page.selectOption('[data-test=run-connection]', connection);
    await page.fill('[data-test=run-input]', input);
    await page.click('[data-test=run-submit]');
  };

  await run('demo', "select 1 as one, 'two' as \"Second Column\"");
  // A row is drawn as soon as the result's size is known; its values follow.
  const row = page.locator('[data-test=run-output] [data-test=row]', { hasText: 'two' }).first();
  await row.waitFor();
  assert.match(await row.innerText(), /1\s+two/);
  assert.match(await page.locator('[data-test=run-output] [data-test=rows]').innerText(), /Second Column/);
  assert.ok((await page.locator('[data-test=run-output] [data-test=rows]').boundingBox()).height < 80, 'a one-row grid is as tall as one row');
  await screenshot(page, 'console-run-rows');

  await run('sh', 'echo first; sleep 0.2; echo second; exit 4');
  await page.locator('[data-test=run-status] [data-test=status]', { hasText: 'failed' }).waitFor({ timeout: 10_000 });
  await page.locator('[data-test=run-output] [data-test=output]', { hasText: 'second' }).waitFor();
  const kinds = await page.locator('[data-test=run-output] [data-test=event]').evaluateAll((events) => events.map((event) => event.dataset.kind));
  assert.equal(kinds[0], 'input');
  assert.equal(kinds.at(-1), 'exit', `the exit comes after the output: ${kinds}`);
  assert.ok(kinds.includes('output'));
  assert.equal(await page.locator('[data-test=run-output] [data-test=exit]').innerText(), 'exit 4');
  assert.ok((await page.locator('[data-test=run-output] [data-test=output]').boundingBox()).height < 120, 'two lines of output take two lines');

  await run('sh', 'echo waiting; sleep 60');
  await page.locator('[data-test=run-output] [data-test=output]', { hasText: 'waiting' }).waitFor();
  await page.click('[data-test=run-status] [data-test=stop]');
  await page.locator('[data-test=run-status] [data-test=status]', { hasText: 'cancelled' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('[data-test=run-status] [data-test=stop]').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('an administrator edits a connection in place: its name, timeout and a new URL that stays unseen', async () => {
  // A PostgreSQL connection whose stored URL has a wrong password, then the right one.
  const name = `pg-rotate-${Date.now()}`;
  await api(admin.context, server.url, 'POST', '/api/connections', { name, kind: 'postgres', url: 'postgres://postgres:wrong@127.0.0.1:1/postgres' });
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/admin/connections`);
  const row = page.locator(`[data-test=connection-row][data-name="${name}"]`);
  await row.locator('[data-test=test-connection]').click();
  await row.locator('[data-test=connection-check].error-text').waitFor({ timeout: 15_000 });

  await row.locator('[data-test=edit-connection]').click();
  const editor = page.locator('[data-test=connection-editor]');
  assert.equal(await editor.locator('[data-test=edit-url]').getAttribute('type'), 'password');
  assert.equal(await editor.locator('[data-test=edit-url]').inputValue(), '', 'the stored URL is never shown');
  await editor.locator('[data-test=edit-url]').fill('postgres://postgres@127.0.0.1:5432/postgres');
  await editor.locator('[data-test=edit-name]').fill(`${name}-new`);
  await editor.locator('[data-test=edit-timeout]').fill('45');
  await editor.locator('[data-test=edit-save]').click();
  const renamed = page.locator(`[data-test=connection-row][data-name="${name}-new"]`);
  await renamed.waitFor();
  assert.match(await renamed.innerText(), /45 s/);
  await renamed.locator('[data-test=test-connection]').click();
  await renamed.locator('[data-test=connection-check].ok-text').waitFor({ timeout: 15_000 });
  const stored = await api(admin.context, server.url, 'GET', `/api/connections/${name}-new`);
  assert.equal(stored.url, undefined, 'the API does not return the URL either');
  assert.equal(stored.timeout_seconds, 45);
  await screenshot(page, 'console-connection-edited');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the audit trail has absolute times, an action picker from what it holds, a period, and targets that link', async () => {
  const stopped = await api(admin.context, server.url, 'POST', '/api/sessions', { connection: 'sh', input: 'sleep 60' });
  await api(admin.context, server.url, 'POST', `/api/sessions/${stopped.id}/kill`, {});
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/admin/audit`);
  await page.locator('[data-test=audit-row]').first().waitFor();
  await page.locator('[data-test=audit-action] option[value="session.killed"]').waitFor({ state: 'attached' });
  const offered = (await page.locator('[data-test=audit-action] option').allTextContents()).slice(1);
  assert.ok(offered.includes('session.killed') && offered.includes('login.succeeded'), `${offered}`);
  assert.deepEqual(offered, [...offered].sort(), 'in name order');
  assert.match(await page.locator('[data-test=audit-at]').first().textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

  await page.selectOption('[data-test=audit-action]', 'session.killed');
  await page.waitForURL(/action=session\.killed/);
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-test=audit-row]')];
    return rows.length > 0 && rows.every((row) => row.innerText.includes('session.killed'));
  });
  await page.selectOption('[data-test=filter-period]', '15m');
  await page.waitForURL(/period=15m/);
  const target = page.locator('[data-test=audit-row] [data-test=audit-target]', { hasText: stopped.id });
  await target.waitFor();
  await screenshot(page, 'console-audit');

  // The export holds what the filters match, whole.
  const csvLink = page.locator('[data-test=audit-export-csv]');
  assert.match(await csvLink.getAttribute('href'), /^\/api\/audit\/export\?.*format=csv/);
  assert.match(await csvLink.getAttribute('href'), /action=session\.killed/);
  const [csv] = await Promise.all([page.waitForEvent('download'), csvLink.click()]);
  const records = (await readFile(await csv.path(), 'utf8')).trim().split('\r\n');
  assert.equal(records[0], 'id,at,actor,action,target,detail,address');
  assert.ok(records.length >= 2, `${records}`);
  assert.ok(records.slice(1).every((record) => record.includes(',session.killed,')), `${records}`);
  assert.ok(records.some((record) => record.includes(`session:${stopped.id}`)), `${records}`);
  const [jsonl] = await Promise.all([page.waitForEvent('download'), page.locator('[data-test=audit-export-jsonl]').click()]);
  const events = (await readFile(await jsonl.path(), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(events.length, records.length - 1, 'the same events in both forms');
  assert.ok(events.every((event) => event.action === 'session.killed'));
  await target.click();
  await page.waitForURL(`**/sessions/${stopped.id}`);

  // A period that ends before it starts is refused on its field.
  await page.goto(`${server.url}/admin/audit?period=custom&from=2026-12-07T10:00:00Z&to=2026-12-07T09:00:00Z`);
  await page.locator('[data-test=filter-to-error]').waitFor();
  assert.equal(await page.locator('[data-test=audit-row]').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('each result set downloads on its own, as CSV with its columns as the database named them', async () => {
  const session = await runAndWait(admin.context, server.url, 'demo', "select 1 as first; select 'x' as \"Second Result\", 2 as n");
  const page = await admin.context.newPage();
  await page.goto(`${server.url}/sessions/${session.id}`);
  const links = page.locator('[data-test=rows-download]');
  await links.nth(1).waitFor();
  assert.equal(await links.count(), 2, 'one per result');
  const [download] = await Promise.all([page.waitForEvent('download'), links.nth(1).click()]);
  const body = await readFile(await download.path(), 'utf8');
  assert.deepEqual(body.trim().split(/\r?\n/), ['Second Result,n', 'x,2']);
  await page.close();
});

test('a result grid keeps its header and column widths while scrolling, and a long value opens whole and copies', async () => {
  // The first rows are short, the later ones long: widths set by what is in view would jump.
  const query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) "
    + "SELECT i AS n, CASE WHEN i > 200 THEN 'long ' || replace(substr(hex(zeroblob(100)), 1, 60 + i % 50), '0', 'w') ELSE 'a' END AS word, i * 1000 AS big FROM n";
  const session = await runAndWait(admin.context, server.url, 'demo', query);
  const page = await admin.context.newPage();
  await page.goto(`${server.url}/sessions/${session.id}`);
  const grid = page.locator('[data-test=rows]');
  await grid.locator('[data-test=row][data-row="0"] td:nth-child(2)', { hasText: '1' }).waitFor();
  const widths = () => grid.locator('th').evaluateAll((cells) => cells.map((cell) => cell.getBoundingClientRect().width));
  const before = await widths();

  await grid.evaluate((element) => { element.scrollTop = 451 * 28; });
  const row = grid.locator('[data-test=row][data-row="451"]');
  await row.locator('[data-test=cell-expand]').waitFor();
  assert.deepEqual(await widths(), before, 'no column changed width');
  const gridTop = (await grid.boundingBox()).y;
  const headerTop = (await grid.locator('th').first().boundingBox()).y;
  assert.ok(Math.abs(headerTop - gridTop) <= 2, `the header stays at the top: ${headerTop} vs ${gridTop}`);
  await screenshot(page, 'console-grid-scrolled');

  await row.locator('[data-test=cell-expand]').click();
  const panel = page.locator('[data-test=cell-panel]');
  const whole = `long ${'w'.repeat(60 + 452 % 50)}`;
  assert.equal(await panel.locator('[data-test=cell-panel-text]').textContent(), whole);
  assert.match(await panel.textContent(), /Row 452 · word/);
  await admin.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await panel.locator('[data-test=cell-panel-copy]').click();
  await panel.locator('[data-test=cell-panel-copy]', { hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), whole);
  await screenshot(page, 'console-grid-expanded');
  await panel.locator('[data-test=cell-panel-close]').click();
  await panel.waitFor({ state: 'detached' });
  await page.close();
});

test('on a session writing output, an open menu and a half-filled share form stay as they are', async () => {
  const busy = await api(admin.context, server.url, 'POST', '/api/sessions', { connection: 'sh', input: 'while true; do echo tick; sleep 0.05; done' });
  const page = await admin.context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(`${server.url}/sessions/${busy.id}`);
  await page.locator('[data-test=output]', { hasText: 'tick' }).waitFor();
  await page.click('[data-test=share]');
  await page.locator('[data-test=share-target] option[value^="user:"]').first().waitFor({ state: 'attached' });
  await page.selectOption('[data-test=share-target]', `user:${bobId}`);
  await page.fill('[data-test=share-note]', 'half written');
  await page.click('[data-test=download-button]');
  // The session changes twice a second while it writes; what the user opened stays open.
  const bytesBefore = await page.locator('[data-test=output-window]').textContent();
  await page.waitForFunction((before) => document.querySelector('[data-test=output-window]').textContent !== before, bytesBefore);
  await page.waitForTimeout(1_200);
  assert.equal(await page.inputValue('[data-test=share-note]'), 'half written');
  assert.equal(await page.inputValue('[data-test=share-target]'), `user:${bobId}`);
  assert.equal(await page.locator('[data-test=download-txt]').count(), 1, 'the download menu is still open');
  await api(admin.context, server.url, 'POST', `/api/sessions/${busy.id}/kill`, {});
  assert.deepEqual(errors, []);
  await page.close();
});
