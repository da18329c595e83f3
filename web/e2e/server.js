// The real `belfry serve` for the tests in this directory, on the backend they are run for.
//
// Environment:
//   BELFRY_BIN               the server binary (required)
//   BELFRY_E2E_BACKEND       `sqlite` (embedded default, demo on by itself) or `postgres`
//   BELFRY_E2E_DATABASE_URL  a fresh, empty Postgres database (postgres only)

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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
