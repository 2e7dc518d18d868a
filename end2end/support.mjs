// Shared by the browser tests: start a real Loupe server over a fresh SQLite database, launch
// Debian's Chromium, and keep screenshots as artifacts. `cargo xtask test` sets the environment:
// LOUPE_BIN (the server binary), LOUPE_STATIC_DIR (the built client), CHROMIUM_PATH, E2E_ARTIFACTS.

import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { chromium } from 'playwright-core';

/** axe-core's browser build, from the npm package (run in a page by `accessibilityProblems`). */
const AXE_SCRIPT = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The password of `admin`, the administrator every test server starts with. */
export const ADMIN_PASSWORD = 'admin-heron-basalt-e2e';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with \`cargo xtask test\``);
  return value;
}

/** Starts `loupe serve` on a free port with its own data folder; resolves once it listens. */
/**
 * A port for a listener the server binds a moment later (its wire listeners). Not one asked of
 * the kernel (`listen(0)`): those come from the ephemeral range, where an outgoing connection
 * made in between can take it. Chosen below that range and checked free on every address, as
 * the Rust tests' `free_port` (server/tests/support/ports.rs) does.
 */
export async function freePort() {
  const low = 10_000;
  const ephemeral = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || 32_768;
  const span = ephemeral - low;
  const start = process.pid * 7_919 + Math.floor(Math.random() * span);
  for (let step = 0; step < span; step++) {
    const port = low + ((start + step) % span);
    const free = await new Promise((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '0.0.0.0', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port below the ephemeral range');
}

export async function startServer(extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'loupe-e2e-'));
  let { child, url, log } = await spawnServer(dataDir, '127.0.0.1:0', extraEnv);
  const exited = () => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
  return {
    url,
    /** What the server has printed so far (for a test's error when it misbehaves). */
    log: () => log(),
    /** Kills the server as a crash would (SIGKILL). */
    async crash() {
      const gone = exited();
      child.kill('SIGKILL');
      await gone;
    },
    /** Starts the server again on the same address, over the same data. */
    async restart() {
      ({ child, log } = await spawnServer(dataDir, url.replace('http://', ''), extraEnv));
    },
    async stop() {
      const gone = exited();
      child.kill('SIGTERM');
      await gone;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function spawnServer(dataDir, bind, extraEnv) {
  const child = spawn(required('LOUPE_BIN'), ['serve'], {
    env: {
      ...process.env,
      LOUPE_BIND: bind,
      DATABASE_URL: `sqlite://${join(dataDir, 'loupe.db')}`,
      LOUPE_DATA_DIR: dataDir,
      LOUPE_STATIC_DIR: required('LOUPE_STATIC_DIR'),
      LOUPE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOUPE_LOG: 'info',
      LOUPE_LOG_FORMAT: 'text',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in 30 s:\n${log}`)), 30_000);
    const onData = (chunk) => {
      log += chunk;
      const match = log.match(/listening on (http:\/\/[\d.]+:\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening:\n${log}`));
    });
  });
  return { child, url, log: () => log };
}

/** Debian's Chromium in a fresh profile, with the flags this sandboxed machine needs. */
export async function launchBrowser(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'loupe-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: required('CHROMIUM_PATH'),
    headless: true,
    viewport: { width: 1280, height: 800 },
    // Numbers and dates as a US English browser writes them, whatever the machine's locale.
    locale: 'en-US',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    ...options,
  });
  // Every page of every test is watched: an uncaught error, a WASM panic (the panic hook writes
  // it to console.error) or any other console error fails the suite when the browser closes.
  const errors = [];
  const watch = (page) => {
    const seen = collectPageErrors(page);
    page.on('close', () => errors.push(...seen));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    errors,
    async close() {
      await Promise.all(context.pages().map((page) => page.close()));
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      if (errors.length > 0) throw new Error(`the browser reported errors:\n${errors.join('\n')}`);
    },
  };
}

/**
 * Closes browsers (`close`) and stops servers (`stop`), every one of them even when one fails,
 * then throws the first failure: a browser that saw errors fails the suite without leaving a
 * server behind.
 */
export async function closeAll(...things) {
  const results = await Promise.allSettled(things.filter(Boolean).map((thing) => (thing.close ? thing.close() : thing.stop())));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Refusals a test causes on purpose, by page: `{ status, path }` (see `expectRefusal`). */
const refusals = new WeakMap();

/**
 * Lets `page` be answered `status` (a 4xx) by requests whose path starts with `path` without
 * failing the test: a refusal the test causes on purpose and then checks the page shows. Any
 * other 4xx the page meets is an error, as a 5xx always is.
 */
export function expectRefusal(page, status, path) {
  refusals.set(page, [...(refusals.get(page) ?? []), { status, path }]);
}

/**
 * Whether a console error of `page` is what the app logs while working as meant: a refusal the
 * test expects (`expectRefusal`), the 401 of `/api/me` on a page opened before logging in (the
 * app asks who is logged in on every load), and the live socket dropping while a test restarts
 * the server (the page says "Reconnecting…"). Chromium logs every 4xx answer as a console error
 * naming the resource in its location.
 */
function expectedNoise(page, message, error) {
  if (/^console: WebSocket connection to '.*' failed/.test(error)) return true;
  const refused = /^console: Failed to load resource: the server responded with a status of (4\d\d)/.exec(error);
  if (!refused) return false;
  const status = Number(refused[1]);
  let path;
  try { path = new URL(message.location().url).pathname; } catch { return false; }
  if (status === 401 && path === '/api/me') return true;
  return (refusals.get(page) ?? []).some((allowed) => allowed.status === status && path.startsWith(allowed.path));
}

/** Keeps what `expectedNoise` let through in E2E_ARTIFACTS/expected-noise.txt, for people to check. */
function noteNoise(line) {
  const dir = process.env.E2E_ARTIFACTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'expected-noise.txt'), `${line}\n`);
}

/** The width of the phone every page is also looked at on (issue #18: 1280 and 420 px). */
const PHONE_WIDTH = 420;

/**
 * Saves full-page screenshots under E2E_ARTIFACTS for people to look at: `<name>.png` as the
 * page is, and, for a page wider than a phone, `<name>-420.png` at a phone's width (the page is
 * put back to its size afterwards). `{ phone: false }` leaves the phone's out where resizing
 * would change what the test checks: a live terminal sends every resize to its program.
 */
export async function screenshot(page, name, { phone = true } = {}) {
  const dir = required('E2E_ARTIFACTS');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
  const size = page.viewportSize();
  if (!phone || !size || size.width <= PHONE_WIDTH) return;
  await resize(page, { width: PHONE_WIDTH, height: size.height });
  await page.screenshot({ path: join(dir, `${name}-${PHONE_WIDTH}.png`), fullPage: true });
  await resize(page, size);
}

/** Resizes the page and waits two frames, so it has laid itself out again at `size`. */
async function resize(page, size) {
  await page.setViewportSize(size);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
}

/**
 * Collects every uncaught error and console error of `page` (a WASM panic is one: the panic hook
 * writes it to console.error), leaving out what the app logs while working as meant
 * (`expectedNoise`); a test asserts the list is empty, and every page is checked when its
 * browser closes.
 */
export function collectPageErrors(page) {
  const errors = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const error = `console: ${message.text()}`;
    if (expectedNoise(page, message, error)) noteNoise(`${message.location().url} ${error}`);
    else errors.push(`${error} (${message.location().url})`);
  });
  return errors;
}

/** Logs the browser context in through the API; its pages then carry the login cookie. */
export async function logInAs(context, url, username = 'admin', password = ADMIN_PASSWORD) {
  const response = await context.request.post(`${url}/api/auth/login`, { data: { username, password } });
  if (!response.ok()) throw new Error(`login as ${username} failed: ${response.status()} ${await response.text()}`);
}

/** Whether a session has ended: neither running nor held for review. */
export const hasEnded = (session) => !['running', 'pending_review'].includes(session.status);

/**
 * Session `id` as the context reads it once `until(session)` holds (by default: once it has
 * ended), polled every 50 ms; throws after `timeoutMs`.
 */
export async function waitForSession(context, url, id, until = hasEnded, timeoutMs = 30_000) {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const session = await api(context, url, 'GET', `/api/sessions/${id}`);
    if (until(session)) return session;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`session ${id} did not get there in ${timeoutMs} ms`);
}

/** Runs `input` on `connection` as the context and answers the session once it has ended. */
export async function runAndWait(context, url, connection, input, timeoutMs = 30_000) {
  const started = await api(context, url, 'POST', '/api/sessions', { connection, input });
  return waitForSession(context, url, started.id, hasEnded, timeoutMs);
}

/** Calls the API as the logged-in context (same-origin, as the app does) and returns the JSON. */
export async function api(context, url, method, path, data) {
  const response = await context.request.fetch(`${url}${path}`, {
    method,
    data,
    headers: { origin: url },
  });
  if (!response.ok()) throw new Error(`${method} ${path}: ${response.status()} ${await response.text()}`);
  return response.status() === 204 ? null : response.json();
}

/**
 * An agent that records sessions through the ingest API, as another gateway would: an API token
 * made by the logged-in context (a browser login cannot record). Returns `call(method, path,
 * data, headers)`, which answers the JSON like `api`.
 */
export async function agent(context, url, name = 'e2e-agent') {
  const { secret } = await api(context, url, 'POST', '/api/tokens', { name });
  return async (method, path, data, headers = {}) => {
    const response = await context.request.fetch(`${url}${path}`, {
      method,
      data,
      headers: { authorization: `Bearer ${secret}`, ...headers },
    });
    if (!response.ok()) throw new Error(`${method} ${path}: ${response.status()} ${await response.text()}`);
    return response.status() === 204 ? null : response.json();
  };
}

/**
 * Runs axe-core (WCAG 2.x rules) in `page` and returns the violations of serious or critical
 * impact, each as `rule: what (first element)`, for an `assert.deepEqual(…, [])`.
 */
export async function accessibilityProblems(page) {
  // Evaluated through the DevTools protocol, which the app's Content-Security-Policy (no inline
  // scripts) rightly does not let a script tag do.
  await page.evaluate(AXE_SCRIPT);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations);
  return violations
    .filter((violation) => ['serious', 'critical'].includes(violation.impact))
    .map((violation) => `${violation.id}: ${violation.help} (${violation.nodes[0]?.target.join(' ')}; ${violation.nodes.length} in all)`);
}
