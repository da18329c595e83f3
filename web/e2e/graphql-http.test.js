// The GraphQL over HTTP spec's own conformance suite (the `graphql-http` package's
// `auditServer`, pinned in package.json) against the real `belfry serve`: every MUST and
// every SHOULD holds; the MAY notices are printed. And the standard introspection query that
// tools send gets the schema. Run by `scripts/e2e` on both backends.

import { test } from "node:test";
import assert from "node:assert/strict";
import { auditServer } from "graphql-http";
import { buildClientSchema, getIntrospectionQuery } from "graphql";
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

test(`the standard introspection query is answered (${BACKEND})`, async () => {
  const server = await startServer();
  try {
    // As GraphiQL, Apollo's tooling and code generators send it, every option on.
    const query = getIntrospectionQuery({
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
    });
    const response = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    });
    const body = await response.json();
    assert.equal(response.status, 200);
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    const schema = buildClientSchema(body.data);
    assert.ok(schema.getQueryType()?.getFields().notifications, "the schema has the inbox query");
    assert.ok(schema.getSubscriptionType()?.getFields().inbox, "and the inbox subscription");
  } finally {
    await server.stop();
  }
});
