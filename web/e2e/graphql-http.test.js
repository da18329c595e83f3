// The GraphQL over HTTP spec's own conformance suite (the `graphql-http` package's
// `auditServer`, pinned in package.json) against the real `belfry serve`: every MUST and
// every SHOULD holds; the MAY notices are printed. Run by `scripts/e2e` on both backends.

import { test } from "node:test";
import assert from "node:assert/strict";
import { auditServer } from "graphql-http";
import { startServer, BACKEND } from "./server.js";

test(`GraphQL over HTTP audit (${BACKEND})`, async () => {
  const server = await startServer();
  try {
    const results = await auditServer({ url: `${server.url}/graphql` });
    const failed = results.filter((r) => r.status === "error" || r.status === "warn");
    const notices = results.filter((r) => r.status === "notice");
    const ok = results.filter((r) => r.status === "ok");
    console.log(
      `graphql-http audit: ${results.length} audits, ${ok.length} ok, ` +
        `${results.filter((r) => r.status === "error").length} MUST failed, ` +
        `${results.filter((r) => r.status === "warn").length} SHOULD failed, ${notices.length} MAY notices`,
    );
    for (const r of [...failed, ...notices]) {
      console.log(`  ${r.status}: ${r.name}${"reason" in r ? ` (${r.reason})` : ""}`);
    }
    assert.deepEqual(
      failed.map((r) => `${r.name}: ${"reason" in r ? r.reason : ""}`),
      [],
      "every MUST and SHOULD of the GraphQL over HTTP spec holds",
    );
  } finally {
    await server.stop();
  }
});
