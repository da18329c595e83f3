// End to end: GraphiQL at /graphiql in headless Chromium with every request to another origin
// blocked, as on a machine with no internet access. A person's token goes into the Headers tab;
// a query answers over HTTP, and a subscription receives a notification sent meanwhile.
// Run by `scripts/e2e` with the rest of web/e2e/ (the environment is described in server.js):
//
//   BELFRY_BIN=target/debug/belfry BELFRY_E2E_BACKEND=sqlite node --test web/e2e/graphiql.test.js

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { BACKEND, demoCredentials, graphql, ownDatabase, startServer } from "./server.js";

const SHOTS = resolve(process.env.BELFRY_E2E_SCREENSHOTS ?? "artifacts/screenshots");
/// How long to wait for something that should happen; a failure, never a pause.
const WAIT = 15_000;

/** Polls `check` until it holds, failing after WAIT: for state the page changes asynchronously. */
async function eventually(check, what) {
  const deadline = Date.now() + WAIT;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((ok) => setTimeout(ok, 25));
  }
}

const SEND = `mutation($input: SendNotificationInput!) {
  sendNotification(input: $input) { deliveries { notificationId } }
}`;

test(`GraphiQL works with no internet access (${BACKEND})`, async (t) => {
  await mkdir(SHOTS, { recursive: true });
  // Its own database on Postgres: the other tests count the demo user's notifications.
  const database = ownDatabase("graphiql");
  if (database) t.after(() => database.drop());
  const server = await startServer(database ? { BELFRY_DATABASE_URL: database.url } : {});
  t.after(() => server.stop());
  const demo = await demoCredentials(server);
  const origin = new URL(server.url).origin;

  const browser = await chromium.launch({
    executablePath: process.env.BELFRY_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"],
  });
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  // No internet: anything not from the server is refused, and written down.
  const elsewhere = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    elsewhere.push(url);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  /** Every WebSocket the page opened, with the messages it sent. */
  const sockets = [];
  page.on("websocket", (socket) => {
    const seen = { url: socket.url(), sent: [] };
    sockets.push(seen);
    socket.on("framesent", (frame) => seen.sent.push(String(frame.payload)));
  });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  // A script or style the Content-Security-Policy refused shows up here, as would a failed load.
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`${message.type()}: ${message.text()}`);
  });

  /** The text of the CodeMirror editor inside `container`, as GraphiQL holds it. */
  const editorText = (container) =>
    page.locator(`${container} .CodeMirror:visible`).first().evaluate((el) => el.CodeMirror.getValue());
  /** Replaces the text of an editor as pasting would (typing would get brackets closed for us). */
  const fill = async (container, text) => {
    await page.locator(`${container} .CodeMirror:visible`).first().click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.insertText(text);
    await eventually(async () => (await editorText(container)) === text, `${container} holds what was pasted`);
  };
  /**
   * Runs `operation`, named `name`. GraphiQL parses the query editor a moment after a change;
   * the tab takes the operation's name when it has, and a click before that would run the
   * text that was there before.
   */
  const run = async (name, operation) => {
    await fill(".graphiql-query-editor", operation);
    await page.locator(".graphiql-tab-active").getByText(name, { exact: true }).waitFor();
    await page.getByRole("button", { name: /^Execute query/ }).click();
  };
  /** The result pane as JSON, once it parses and `done` holds for it. */
  const resultWhere = async (done, what) => {
    const deadline = Date.now() + WAIT;
    for (;;) {
      let result;
      try {
        result = JSON.parse(await editorText(".result-window"));
      } catch {
        result = undefined;
      }
      if (result !== undefined && done(result)) return result;
      assert.ok(Date.now() < deadline, `timed out waiting until ${what}; the result pane shows ${JSON.stringify(result)}`);
      await new Promise((ok) => setTimeout(ok, 25));
    }
  };

  const response = await page.goto(`${server.url}/graphiql`);
  assert.ok(response?.ok(), "the page loads");
  assert.match(response.headers()["content-security-policy"] ?? "", /script-src 'self'(;|$)/);

  await t.test("the playground starts, with the schema's documentation", async () => {
    await page.locator(".graphiql-query-editor .CodeMirror").waitFor();
    await page.getByRole("button", { name: "Show Documentation Explorer" }).click();
    await page.locator(".graphiql-doc-explorer").getByText("Query", { exact: true }).first().waitFor();
    await page.locator(".graphiql-doc-explorer").getByText("Subscription", { exact: true }).first().waitFor();
    await page.screenshot({ path: join(SHOTS, `${BACKEND}-graphiql-docs.png`), animations: "disabled" });
  });

  let liveCursor;
  await t.test("a query sent with the token from the Headers tab answers", async () => {
    await page.getByRole("button", { name: "Headers", exact: true }).click();
    await fill(".graphiql-editor-tool", JSON.stringify({ Authorization: `Bearer ${demo.token}` }));
    await run("Viewer", "query Viewer { viewerId notifications(first: 1) { liveCursor } }");
    const result = await resultWhere((r) => r.data || r.errors, "the query answers");
    assert.equal(result.errors, undefined, `query errors: ${JSON.stringify(result.errors)}`);
    assert.equal(result.data.viewerId, demo.user);
    liveCursor = result.data.notifications.liveCursor;
    assert.equal(typeof liveCursor, "string");
  });

  await t.test("a subscription receives a notification sent meanwhile", async () => {
    const title = `Through GraphiQL ${Date.now()}`;
    // From the query's cursor on, so a send cannot slip past before the server has the
    // subscription: it arrives however the two race.
    await run("Inbox", `subscription Inbox { inbox(after: ${JSON.stringify(liveCursor)}) { added { title } } }`);
    // The Headers tab went into `connection_init`.
    await eventually(
      () =>
        sockets.some(({ sent }) =>
          sent.some((text) => {
            const message = JSON.parse(text);
            return message.type === "connection_init" && message.payload?.Authorization === `Bearer ${demo.token}`;
          }),
        ),
      "a connection_init carries the token",
    );
    await graphql(server, demo.serviceKey, SEND, { input: { recipients: [demo.user], title, category: "general" } });
    const result = await resultWhere((r) => r.data?.inbox || r.errors, "the notification arrives");
    assert.deepEqual(result, { data: { inbox: { added: [{ title }] } } });
    await page.screenshot({ path: join(SHOTS, `${BACKEND}-graphiql-subscription.png`), animations: "disabled" });
  });

  await t.test("nothing was fetched from another origin, and nothing failed", async () => {
    assert.deepEqual(elsewhere, [], "requests to another origin");
    assert.ok(sockets.length > 0, "the subscription opened a WebSocket");
    for (const { url } of sockets) assert.equal(new URL(url).host, new URL(origin).host, `a WebSocket to ${url}`);
    assert.deepEqual(problems, [], "errors and warnings in the page");
  });
});
