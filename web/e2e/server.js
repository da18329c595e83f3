// The real `belfry serve` for the tests in this directory, on the backend they are run for.
//
// Environment:
//   BELFRY_BIN               the server binary (required)
//   BELFRY_E2E_BACKEND       `sqlite` (embedded default, demo on by itself) or `postgres`
//   BELFRY_E2E_DATABASE_URL  a fresh, empty Postgres database (postgres only); tests that must
//                            not share it make their own beside it (`ownDatabase`)

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const BACKEND = process.env.BELFRY_E2E_BACKEND ?? "sqlite";

/**
 * Starts `belfry serve` on a free port; resolves once it listens. `extraEnv` adds to (or, with
 * `undefined`, removes from) the server's environment.
 *
 * @param {Record<string, string | undefined>} [extraEnv]
 */
export async function startServer(extraEnv = {}) {
  const bin = process.env.BELFRY_BIN;
  assert.ok(bin, "BELFRY_BIN must name the belfry binary");
  const dataDir = await mkdtemp(join(tmpdir(), "belfry-e2e-"));
  /** @type {Record<string, string | undefined>} */
  const env = {
    ...process.env,
    BELFRY_DATA_DIR: dataDir,
    BELFRY_LISTEN: "127.0.0.1:0",
    BELFRY_LOG: "warn",
  };
  if (BACKEND === "postgres") {
    assert.ok(process.env.BELFRY_E2E_DATABASE_URL, "postgres needs BELFRY_E2E_DATABASE_URL");
    env.BELFRY_DATABASE_URL = process.env.BELFRY_E2E_DATABASE_URL;
    env.BELFRY_JWT_SECRET = "e2e-secret-that-is-long-enough-0123456789";
    env.BELFRY_DEMO = "true";
  } else {
    // The README's embedded default: no secret configured, the demo turns on by itself.
    delete env.BELFRY_DATABASE_URL;
    delete env.BELFRY_JWT_SECRET;
    delete env.BELFRY_DEMO;
  }
  for (const [name, value] of Object.entries(extraEnv)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const child = spawn(bin, ["serve"], { env, stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  /** @type {string[]} */
  const printed = [];
  /** @type {string} */
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${printed.join("\n")}`)), 60_000);
    child.once("exit", (code) => fail(new Error(`server exited with ${code}:\n${printed.join("\n")}`)));
    lines.on("line", (line) => {
      printed.push(line);
      const m = line.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
  return {
    url,
    printed,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((ok) => (child.exitCode !== null ? ok(undefined) : child.once("exit", ok)));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * On Postgres, a fresh database beside BELFRY_E2E_DATABASE_URL, named after it plus `_${suffix}`
 * (made and dropped with psql), for a test that must not share that one: the tests of this
 * directory may run at the same time, and some count the demo user's notifications. Null on
 * SQLite, where each server has a data directory of its own. Pass `url` to `startServer` as
 * `BELFRY_DATABASE_URL`.
 *
 * @param {string} suffix
 * @returns {{ url: string, drop(): void } | null}
 */
export function ownDatabase(suffix) {
  if (BACKEND !== "postgres") return null;
  const given = process.env.BELFRY_E2E_DATABASE_URL;
  assert.ok(given, "postgres needs BELFRY_E2E_DATABASE_URL");
  const url = new URL(given);
  const name = `${url.pathname.slice(1)}_${suffix}`;
  assert.match(name, /^\w+$/, "the database name is a plain identifier");
  const psql = (/** @type {string} */ sql) => execFileSync("psql", ["-q", "-v", "ON_ERROR_STOP=1", given, "-c", sql]);
  psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  psql(`CREATE DATABASE ${name}`);
  url.pathname = `/${name}`;
  return { url: url.href, drop: () => void psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * GraphQL over HTTP straight to the server; fails the test on any GraphQL error.
 *
 * @param {{ url: string }} server @param {string} credential a token or a service key
 * @param {string} query @param {Record<string, unknown>} [variables]
 */
export async function graphql(server, credential, query, variables = {}) {
  const response = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${credential}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, `GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/**
 * The demo page's credentials, as the page itself reads them.
 *
 * @param {{ url: string }} server
 * @returns {Promise<{ user: string, token: string, serviceKey: string }>}
 */
export async function demoCredentials(server) {
  const html = await (await fetch(`${server.url}/`)).text();
  const m = html.match(/<script type="application\/json" id="belfry-demo">(.*?)<\/script>/s);
  assert.ok(m, "the demo page carries its credentials");
  return JSON.parse(m[1]);
}
