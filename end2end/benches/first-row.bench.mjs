// `cargo xtask bench browser`: load figures as a user sees them (issue #18): how long after
// navigation the first row of the sessions list shows with 1,000 sessions, and the first row of
// a 2,000,000-row result, over loopback and over a link throttled to 20 Mbit/s with 40 ms latency
// (Chrome DevTools Protocol `Network.emulateNetworkConditions`, cache disabled). A benchmark, not
// a test: it prints figures and is not part of `cargo xtask test`.
//
// Each figure is the median of 5 loads, in milliseconds from navigation start (performance.now()
// in the page when the row is visible): the first load of the app included, as for a user who
// opens a link. Next to each, the same-run baseline: the app shell alone over the same link.
import { test } from 'node:test';
import { startServer, launchBrowser, logInAs, api, agent, closeAll } from '../support.mjs';

const SESSIONS = 1_000;
const ROWS = 2_000_000;
const LOADS = 5;
const LINKS = {
  loopback: null,
  '20 Mbit/s + 40 ms': { offline: false, latency: 40, downloadThroughput: 20e6 / 8, uploadThroughput: 20e6 / 8 },
};

test('first row of a large list and of a large result, over loopback and a slow link', { timeout: 900_000 }, async () => {
  const server = await startServer({ LOUPE_DEMO: 'true' });
  const browser = await launchBrowser();
  try {
    await logInAs(browser.context, server.url);
    const record = await agent(browser.context, server.url, 'bench-agent');
    for (let i = 0; i < SESSIONS; i++) {
      const { id } = await record('POST', '/api/ingest/sessions', { connection: 'ops', connection_kind: 'command', type: 'command', input: `echo ${i}` });
      await record('POST', `/api/ingest/sessions/${id}/close`, { status: 'done', exit_code: 0 });
    }
    const big = await api(browser.context, server.url, 'POST', '/api/sessions', {
      connection: 'demo',
      input: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS}) SELECT i, 'row ' || i AS label FROM n`,
    });
    for (;;) {
      const session = await api(browser.context, server.url, 'GET', `/api/sessions/${big.id}`);
      if (session.status !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }

    // The baseline, in the same run over the same link: the app itself (its navigation drawn, no
    // data waited for), which every page pays before its first row.
    const baseline = ['the app shell', '/sessions', '[data-test=nav-sessions]'];
    const pages = [
      [`list of ${SESSIONS} sessions`, '/sessions', '[data-test=session-row]'],
      [`result of ${ROWS} rows`, `/sessions/${big.id}`, '[data-test=row]'],
    ];
    const median = async (conditions, path, selector) => {
      const times = [];
      for (let i = 0; i < LOADS; i++) {
        const page = await browser.context.newPage();
        const cdp = await browser.context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
        if (conditions) await cdp.send('Network.emulateNetworkConditions', conditions);
        await page.goto(`${server.url}${path}`, { waitUntil: 'commit' });
        await page.locator(selector).first().waitFor({ timeout: 120_000 });
        times.push(await page.evaluate(() => performance.now()));
        await page.close();
      }
      times.sort((a, b) => a - b);
      return { median: times[Math.floor(LOADS / 2)], times: times.map(Math.round).join(', ') };
    };
    for (const [link, conditions] of Object.entries(LINKS)) {
      const shell = await median(conditions, baseline[1], baseline[2]);
      console.log(`${link.padEnd(18)} ${baseline[0]} (baseline): median ${Math.round(shell.median)} ms (${shell.times})`);
      for (const [what, path, selector] of pages) {
        const row = await median(conditions, path, selector);
        const ratio = (row.median / shell.median).toFixed(2);
        console.log(`${link.padEnd(18)} first row of the ${what}: median ${Math.round(row.median)} ms (${row.times}), ${ratio}× the app shell`);
      }
    }
  } finally {
    await closeAll(browser, server);
  }
});
