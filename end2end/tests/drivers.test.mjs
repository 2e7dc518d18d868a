// Database drivers with their own protocol code through Loupe's wire listeners, and the page
// that tells people how to connect: node-postgres
// (`pg`: extended protocol, text parameters, TLS from Node's own stack) and `mysql2` (prepared
// statements with binary rows, `mysql_clear_password`, TLS), against the PostgreSQL and MariaDB
// servers on this machine. Each checks the recorded session statement by statement against
// what the driver saw.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { request } from 'playwright-core';
import { ADMIN_PASSWORD, collectPageErrors, freePort, hasEnded, launchBrowser, logInAs, screenshot, startServer } from '../support.mjs';

const POSTGRES = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };
const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root' };

/** A port nobody listens on (the server binds it a moment later). */
let server;
let http;
let token;
const ports = {};
const names = { pg: `loupe_drivers_${Date.now()}`, maria: `loupe_drivers_${Date.now()}` };

async function call(method, path, data) {
  const response = await http.fetch(`${server.url}${path}`, { method, data, headers: { origin: server.url } });
  if (!response.ok()) throw new Error(`${method} ${path}: ${response.status()} ${await response.text()}`);
  return response.status() === 204 ? null : response.json();
}

/** The session on `connection` once it has ended, with its events. */
async function recorded(connection) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const page = await call('GET', `/api/sessions?connection=${connection}`);
    const session = page.items[0];
    if (session && hasEnded(session)) {
      const events = await call('GET', `/api/sessions/${session.id}/events`);
      return { session, events: events.items };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ended session on ${connection}`);
}

async function rowsOf(session, seq) {
  return (await call('GET', `/api/sessions/${session.id}/events/${seq}/rows`)).rows;
}

before(async () => {
  ports.pg = await freePort();
  ports.mysql = await freePort();
  server = await startServer({
    LOUPE_PG_BIND: `127.0.0.1:${ports.pg}`,
    LOUPE_MYSQL_BIND: `127.0.0.1:${ports.mysql}`,
  });
  http = await request.newContext();
  // The server says it listens before its store is open: wait until it answers.
  for (let attempt = 0; ; attempt++) {
    const health = await http.get(`${server.url}/healthz`).catch(() => null);
    if (health?.ok()) break;
    if (attempt === 300) throw new Error(`the server did not become healthy in 30 s:\n${server.log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const login = await http.post(`${server.url}/api/auth/login`, {
    data: { username: 'admin', password: ADMIN_PASSWORD },
  });
  assert.ok(login.ok(), await login.text());
  ({ secret: token } = await call('POST', '/api/tokens', { name: 'drivers' }));

  const setupPg = new pg.Client(POSTGRES);
  await setupPg.connect();
  await setupPg.query(`CREATE DATABASE ${names.pg}`);
  await setupPg.end();
  const setupMaria = await mysql.createConnection(MARIADB);
  await setupMaria.query(`CREATE DATABASE ${names.maria}`);
  await setupMaria.end();
  await call('POST', '/api/connections', {
    name: 'pg', kind: 'postgres', url: `postgres://postgres@127.0.0.1:5432/${names.pg}`,
  });
  await call('POST', '/api/connections', {
    name: 'maria', kind: 'mysql', url: `mysql://root@127.0.0.1:3306/${names.maria}`,
  });
});

after(async () => {
  await http?.dispose();
  await server?.stop();
  const setupPg = new pg.Client(POSTGRES);
  await setupPg.connect();
  await setupPg.query(`DROP DATABASE IF EXISTS ${names.pg}`);
  await setupPg.end();
  const setupMaria = await mysql.createConnection(MARIADB);
  await setupMaria.query(`DROP DATABASE IF EXISTS ${names.maria}`);
  await setupMaria.end();
});

test('node-postgres over TLS: parameters, a transaction and an error, recorded as sent', async () => {
  const client = new pg.Client({
    host: '127.0.0.1', port: ports.pg, user: 'admin', password: token, database: 'pg',
    // Loupe's generated certificate: encrypted, not verified (the Rust tests verify it).
    ssl: { rejectUnauthorized: false },
    application_name: 'node-pg',
  });
  await client.connect();
  const next = await client.query('SELECT $1::int + 1 AS next, $2::text AS name', [41, 'loupe']);
  assert.deepEqual(next.rows, [{ next: 42, name: 'loupe' }]);
  await client.query('BEGIN');
  await client.query('CREATE TABLE items (id int, note text)');
  const inserted = await client.query('INSERT INTO items VALUES ($1, $2), ($3, $4)', [1, 'one', 2, null]);
  assert.equal(inserted.rowCount, 2);
  await client.query('COMMIT');
  await assert.rejects(client.query('SELECT * FROM nowhere'), /relation "nowhere" does not exist/);
  await client.end();

  const { session, events } = await recorded('pg');
  assert.equal(session.status, 'done');
  assert.match(session.summary, /^node-pg from 127\.0\.0\.1/);
  const inputs = events.filter((event) => event.kind === 'input').map((event) => event.text);
  assert.deepEqual(inputs, [
    'SELECT $1::int + 1 AS next, $2::text AS name',
    'BEGIN',
    'CREATE TABLE items (id int, note text)',
    'INSERT INTO items VALUES ($1, $2), ($3, $4)',
    'COMMIT',
    'SELECT * FROM nowhere',
  ]);
  const notes = events.filter((event) => event.kind === 'note').map((event) => event.summary);
  assert.ok(notes.includes("parameters: $1 = '41', $2 = 'loupe'"), notes.join(' | '));
  assert.ok(notes.includes("parameters: $1 = '1', $2 = 'one', $3 = '2', $4 = NULL"), notes.join(' | '));
  assert.ok(notes.includes('INSERT 0 2'), notes.join(' | '));
  const result = events.find((event) => event.kind === 'result');
  assert.deepEqual(result.columns.map((column) => [column.name, column.type_name]), [['next', 'INT4'], ['name', 'TEXT']]);
  assert.deepEqual(await rowsOf(session, result.seq), [[42, 'loupe']]);
  const error = events.find((event) => event.kind === 'error');
  assert.equal(error.code, '42P01');
});

test('mysql2 over TLS: prepared statements with binary rows and plain queries, recorded as sent', async () => {
  const connection = await mysql.createConnection({
    host: '127.0.0.1', port: ports.mysql, user: 'admin', password: token, database: 'maria',
    ssl: { rejectUnauthorized: false },
    // The token is checked against its digest, so it is asked for as it is (inside TLS here).
    enableCleartextPlugin: true,
    connectAttributes: { program_name: 'node-mysql2' },
  });
  const [next] = await connection.execute('SELECT ? + 1 AS next, ? AS name', [41, 'loupe']);
  assert.deepEqual(next, [{ next: 42, name: 'loupe' }]);
  await connection.query('CREATE TABLE items (id INT PRIMARY KEY, at DATETIME(3))');
  const [inserted] = await connection.execute('INSERT INTO items VALUES (?, ?), (?, ?)', [1, '2026-12-01 07:03:55.120', 2, null]);
  assert.equal(inserted.affectedRows, 2);
  const [items] = await connection.execute('SELECT id, at FROM items ORDER BY id', []);
  assert.equal(items.length, 2);
  await assert.rejects(connection.query('SELECT * FROM nowhere'), /doesn't exist/);
  await connection.end();

  const { session, events } = await recorded('maria');
  assert.equal(session.status, 'done');
  assert.match(session.summary, /^node-mysql2 from 127\.0\.0\.1/);
  const inputs = events.filter((event) => event.kind === 'input').map((event) => event.text);
  for (const statement of [
    'SELECT ? + 1 AS next, ? AS name',
    'CREATE TABLE items (id INT PRIMARY KEY, at DATETIME(3))',
    'INSERT INTO items VALUES (?, ?), (?, ?)',
    'SELECT id, at FROM items ORDER BY id',
    'SELECT * FROM nowhere',
  ]) {
    assert.ok(inputs.includes(statement), `${statement} in ${inputs.join(' | ')}`);
  }
  const notes = events.filter((event) => event.kind === 'note').map((event) => event.summary);
  assert.ok(notes.includes("parameters: ?1 = 41, ?2 = 'loupe'"), notes.join(' | '));
  assert.ok(notes.includes('2 rows affected'), notes.join(' | '));
  const table = events.filter((event) => event.kind === 'result').at(-1);
  assert.deepEqual(table.columns.map((column) => [column.name, column.type_name]), [['id', 'INT'], ['at', 'DATETIME']]);
  assert.deepEqual(await rowsOf(session, table.seq), [[1, '2026-12-01 07:03:55.120'], [2, null]]);
  const error = events.find((event) => event.kind === 'error');
  assert.equal(error.code, '42S02');
});

test('the Tokens page shows how psql and mysql connect, and the certificate they are offered', async () => {
  const settings = await call('GET', '/api/settings');
  const browser = await launchBrowser();
  try {
    const { context } = browser;
    await logInAs(context, server.url);
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${server.url}/tokens`);
    const card = page.locator('[data-test=database-clients]');
    await card.waitFor();
    assert.equal(
      await card.locator('[data-test=client-psql]').textContent(),
      `PGPASSWORD=<token> psql 'host=127.0.0.1 port=${ports.pg} user=admin dbname=<connection> sslmode=require'`,
    );
    assert.equal(
      await card.locator('[data-test=client-mysql]').textContent(),
      `MYSQL_PWD=<token> mysql --ssl -h 127.0.0.1 -P ${ports.mysql} -u admin -D <connection>`,
    );
    const fingerprint = await card.locator('[data-test=tls-fingerprint]').textContent();
    assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.equal(fingerprint, settings.listeners.tls_fingerprint);
    await screenshot(page, 'tokens-database-clients');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
