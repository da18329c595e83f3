// End to end: the real `belfry serve`, its demo page in headless Chromium, and the
// `<belfry-inbox>` element driven the way a person would. Run by `scripts/e2e`:
//
//   BELFRY_BIN=target/debug/belfry BELFRY_E2E_BACKEND=sqlite node --test web/e2e/
//
// Environment:
//   BELFRY_BIN               the server binary (required)
//   BELFRY_E2E_BACKEND       `sqlite` (embedded default, demo on by itself) or `postgres`
//   BELFRY_E2E_DATABASE_URL  a fresh, empty Postgres database (postgres only)
//   BELFRY_E2E_SCREENSHOTS   where screenshots go (default: artifacts/screenshots)
//   BELFRY_CHROMIUM          the browser (default: /usr/bin/chromium)
//
// The page is loaded through a TCP proxy in this process, so the test can cut the browser's
// connections (and refuse new ones) while the server keeps running.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { startServer, BACKEND, demoCredentials, graphql, ownDatabase } from "./server.js";

const SHOTS = resolve(process.env.BELFRY_E2E_SCREENSHOTS ?? "artifacts/screenshots");
/// How long to wait for something that should happen; a failure, never a pause.
const WAIT = 15_000;

/**
 * Headless Chromium, closed after test `t`, with one page whose uncaught errors are collected.
 * @param {import("node:test").TestContext} t
 */
async function openPage(t) {
  const browser = await chromium.launch({
    executablePath: process.env.BELFRY_CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  /** @type {string[]} */
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.setDefaultTimeout(WAIT);
  return { browser, page, pageErrors };
}

// Email and a webhook endpoint configured, so the settings offer those channels too. No send
// here is routed to them: neither server is ever contacted.
const DELIVERING = {
  BELFRY_SMTP: '{ host = "127.0.0.1", port = 2525, tls = "none", from = "Belfry <noreply@belfry.test>" }',
  BELFRY_WEBHOOKS: `[{ url = "http://127.0.0.1:9/hooks", secrets = ["whsec_${Buffer.alloc(32, 7).toString("base64")}"] }]`,
};

/** The channels of the switches in `category`'s row of the settings, in order. */
const switchesOf = (inbox, category) =>
  inbox
    .locator(`input[part="switch"][data-category="${category}"]`)
    .evaluateAll((inputs) => inputs.map((input) => input.getAttribute("data-channel")));
/** The settings' column headings. */
const headings = (inbox) => inbox.locator('[part="preferences"] thead th').allTextContents();

/** A TCP proxy to `port` whose connections can be cut, and new ones refused, at will. */
async function startProxy(port) {
  const open = new Set();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(port, "127.0.0.1");
    const pair = { client, upstream };
    open.add(pair);
    const drop = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const address = server.address();
  assert.ok(address && typeof address === "object");
  return {
    url: `http://127.0.0.1:${address.port}`,
    /** Drops every open connection and refuses new ones, like a network outage. */
    cut() {
      refusing = true;
      for (const { client, upstream } of open) {
        client.destroy();
        upstream.destroy();
      }
      open.clear();
    },
    restore() {
      refusing = false;
    },
    close() {
      this.cut();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
}

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
const COUNTS = `{ counts { unread unseen } }`;
const PREFERENCES = `{ preferences { category channel enabled } }`;

test(`the inbox component works end to end (${BACKEND})`, async (t) => {
  await mkdir(SHOTS, { recursive: true });
  const server = await startServer(DELIVERING);
  t.after(() => server.stop());
  const proxy = await startProxy(Number(new URL(server.url).port));
  t.after(() => proxy.close());
  const demo = await demoCredentials(server);

  const send = async (title, extra = {}) => {
    const data = await graphql(server, demo.serviceKey, SEND, {
      input: { recipients: [demo.user], title, category: "general", ...extra },
    });
    return data.sendNotification.deliveries[0].notificationId;
  };
  const counts = async () => (await graphql(server, demo.token, COUNTS)).counts;

  const { browser, page, pageErrors } = await openPage(t);

  const inbox = page.locator("belfry-inbox");
  const bell = inbox.locator('button[part="bell"]');
  const badge = inbox.locator('[part="badge"]');
  const panel = inbox.locator('[part="panel"]');
  const item = (id) => inbox.locator(`[part~="item"][data-id="${id}"]`);
  const itemsTitled = (title) =>
    inbox.locator('[part~="item"]').filter({ has: page.locator('[part="item-title"]', { hasText: title }) });
  const live = () => inbox.locator('[part="status"][data-state="live"]').waitFor({ state: "attached" });
  const readItem = (id) => inbox.locator(`[part~="item"][data-id="${id}"][data-read="true"]`);

  await page.goto(`${proxy.url}/`);
  await live();

  await t.test("the closed bell shows no badge for an empty inbox", async () => {
    await assert.rejects(badge.waitFor({ state: "visible", timeout: 300 }));
    await page.screenshot({ path: join(SHOTS, `${BACKEND}-bell-closed.png`), animations: "disabled" });
  });

  let first;
  let second;
  await t.test("a send reaches the badge and a toast within one second", async () => {
    const start = performance.now();
    first = await send("First e2e notification", { body: "Sent from the end-to-end test." });
    await badge.filter({ hasText: /^1$/ }).waitFor({ timeout: 1000 });
    await inbox.locator(`[part~="toast"][data-id="${first}"]`).waitFor({ timeout: 1000 });
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 1000, `badge and toast after ${elapsed.toFixed(0)} ms`);
    second = await send("Second e2e notification", { priority: "HIGH", category: "billing" });
    await badge.filter({ hasText: /^2$/ }).waitFor();
  });

  await t.test("opening the dropdown lists them and marks them seen", async () => {
    await bell.click();
    await panel.waitFor({ state: "visible" });
    assert.equal(await bell.getAttribute("aria-expanded"), "true");
    await item(first).waitFor();
    await item(second).waitFor();
    assert.equal(await item(second).getAttribute("data-priority"), "HIGH");
    assert.equal(await item(first).getAttribute("data-read"), "false");
    await badge.waitFor({ state: "hidden" });
    await eventually(async () => (await counts()).unseen === 0, "the server has them seen");
    assert.deepEqual(await counts(), { unread: 2, unseen: 0 });
    await page.screenshot({ path: join(SHOTS, `${BACKEND}-dropdown-open.png`), animations: "disabled" });
  });

  await t.test("clicking one marks it read and the unread count drops", async () => {
    await item(first).locator('[part="item-open"]').click();
    await readItem(first).waitFor();
    // The element shows it read at once; the server confirms it a moment later.
    await eventually(async () => (await counts()).unread === 1, "unread drops to 1");
    const allTab = inbox.locator('[part~="tab"][data-category=""] [part="tab-count"]');
    await allTab.filter({ hasText: /^1$/ }).waitFor();
  });

  await t.test("mark all read", async () => {
    if (!(await panel.isVisible())) await bell.click();
    await inbox.locator('button[part="mark-all-read"]').click();
    await readItem(second).waitFor();
    await eventually(async () => (await counts()).unread === 0, "unread drops to 0");
    assert.deepEqual(await counts(), { unread: 0, unseen: 0 });
  });

  await t.test("the settings offer only the channels this server delivers on", async () => {
    if (!(await panel.isVisible())) await bell.click();
    await inbox.locator('button[part="preferences-button"]').click();
    await inbox.locator('input[part="switch"][data-category="billing"]').first().waitFor();
    assert.deepEqual(await switchesOf(inbox, "billing"), ["IN_APP", "EMAIL", "WEBHOOK"]);
    assert.deepEqual(await switchesOf(inbox, "general"), ["IN_APP", "EMAIL", "WEBHOOK"]);
    assert.deepEqual(await headings(inbox), ["Category", "In-app", "Email", "Webhook"]);
    await inbox.locator('button[part="preferences-back"]').click();
  });

  await t.test("a preference switch persists across a reload", async () => {
    if (!(await panel.isVisible())) await bell.click();
    await inbox.locator('button[part="preferences-button"]').click();
    await inbox.locator('[part="preferences"]').waitFor({ state: "visible" });
    const billingEmail = inbox.locator('input[part="switch"][data-category="billing"][data-channel="EMAIL"]');
    assert.equal(await billingEmail.isChecked(), true, "everything is on by default");
    await page.screenshot({ path: join(SHOTS, `${BACKEND}-preferences.png`), animations: "disabled" });
    await billingEmail.click();
    const saved = async () =>
      (await graphql(server, demo.token, PREFERENCES)).preferences.some(
        (p) => p.category === "billing" && p.channel === "EMAIL" && p.enabled === false,
      );
    await eventually(saved, "the switch is saved");
    await page.reload();
    await live();
    await bell.click();
    await inbox.locator('button[part="preferences-button"]').click();
    await billingEmail.waitFor();
    assert.equal(await billingEmail.isChecked(), false, "the switch is off after a reload");
    assert.equal(
      await inbox.locator('input[part="switch"][data-category="billing"][data-channel="IN_APP"]').isChecked(),
      true,
    );
    await inbox.locator('button[part="preferences-back"]').click();
  });

  await t.test("after a cut connection it resumes: 3 missed sends appear exactly once", async () => {
    if (!(await panel.isVisible())) await bell.click();
    proxy.cut();
    await inbox.locator('[part="status"]:is([data-state="offline"], [data-state="connecting"])').waitFor({ state: "attached" });
    const titles = ["Missed one", "Missed two", "Missed three"];
    const ids = [];
    for (const title of titles) ids.push(await send(title));
    proxy.restore();
    await live();
    for (const id of ids) await item(id).waitFor();
    // Anything sent twice would arrive before a later send: wait for one, then count.
    const marker = await send("After the outage");
    await item(marker).waitFor();
    for (const title of titles) assert.equal(await itemsTitled(title).count(), 1, `${title} shows once`);
    assert.equal(await inbox.locator('[part~="item"]').count(), 6);
    const { unread } = await counts();
    assert.equal(unread, 4);
  });

  await t.test("the demo form sends through the API", async () => {
    await page.locator("#send-title").fill("Sent from the demo form");
    await page.locator("#send-button").click();
    await page.locator("#send-status").filter({ hasText: "Sent to 1" }).waitFor();
    // Clicking the page closed the dropdown; the toast shows it arrived.
    await inbox.locator('[part~="toast"]').filter({ hasText: "Sent from the demo form" }).waitFor();
    await itemsTitled("Sent from the demo form").waitFor({ state: "attached" });
    await bell.click();
    await itemsTitled("Sent from the demo form").waitFor();
  });

  await t.test("an urgent toast is an alert and stays until dismissed", async () => {
    const urgent = await send("Server on fire", { priority: "URGENT" });
    const toast = inbox.locator(`[part~="toast"][data-id="${urgent}"]`);
    await toast.waitFor();
    assert.equal(await toast.getAttribute("role"), "alert");
    assert.equal(await toast.getAttribute("data-priority"), "URGENT");
    await toast.locator('[part="toast-dismiss"]').click();
    await toast.waitFor({ state: "detached" });
  });

  await t.test("the keyboard opens, walks and closes the dropdown", async () => {
    await page.reload();
    await live();
    await bell.focus();
    await page.keyboard.press("Enter");
    await panel.waitFor({ state: "visible" });
    const focused = () =>
      page.evaluate(() => {
        const el = document.querySelector("belfry-inbox")?.shadowRoot?.activeElement;
        return el ? { part: el.getAttribute("part"), id: el.closest("[data-id]")?.getAttribute("data-id") ?? null } : null;
      });
    const inside = await focused();
    assert.ok(inside && inside.part !== "bell", `focus moved into the dialog (${JSON.stringify(inside)})`);
    // Walk to the list, then down it: each Arrow Down focuses the next notification.
    await inbox.locator('[part~="item"]').first().locator('[part="item-open"]').focus();
    const top = (await focused())?.id;
    await page.keyboard.press("ArrowDown");
    const next = (await focused())?.id;
    assert.ok(top && next && top !== next, "Arrow Down moves to the next notification");
    const ids = await inbox.locator('[part~="item"]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-id")));
    assert.equal(ids.indexOf(next), ids.indexOf(top) + 1);
    await page.keyboard.press("Escape");
    await panel.waitFor({ state: "hidden" });
    assert.equal((await focused())?.part, "bell", "Escape returns focus to the bell");
    assert.equal(await bell.getAttribute("aria-expanded"), "false");
  });

  await t.test("scrolling the dropdown loads the next page", async () => {
    for (let i = 1; i <= 25; i++) await send(`Paged ${i}`);
    await page.reload();
    await live();
    await bell.click();
    const rows = inbox.locator('[part~="item"]');
    await itemsTitled("Paged 25").waitFor();
    assert.equal(await rows.count(), 20, "the first page holds page-size notifications");
    const total = 1 + 7 + 25; // the urgent one, the seven before it, and these
    await eventually(async () => {
      await rows.last().scrollIntoViewIfNeeded();
      return (await rows.count()) === total;
    }, `all ${total} are listed after scrolling`);
    const listed = await rows.evaluateAll((r) => r.map((row) => row.getAttribute("data-id")));
    assert.equal(new Set(listed).size, total, "no notification is listed twice");
  });

  await t.test("relative times move on while the dropdown is open", async () => {
    // A page of its own whose clock the test moves: five minutes pass at once.
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    try {
      const clocked = await context.newPage();
      clocked.on("pageerror", (error) => pageErrors.push(error.message));
      await clocked.clock.install();
      await clocked.goto(`${proxy.url}/`);
      const element = clocked.locator("belfry-inbox");
      await element.locator('[part="status"][data-state="live"]').waitFor({ state: "attached" });
      await element.locator('button[part="bell"]').click();
      const id = await send("Fresh off the press");
      const time = element.locator(`[part~="item"][data-id="${id}"] time`);
      await time.waitFor();
      // What the page's own locale calls "now" and "5 minutes ago".
      const [now, fiveAgo] = await clocked.evaluate(() => {
        const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
        return [format.format(0, "second"), format.format(-5, "minute")];
      });
      assert.equal(await time.textContent(), now);
      await clocked.clock.fastForward("05:00");
      await eventually(async () => (await time.textContent()) === fiveAgo, `the time reads "${fiveAgo}"`);
    } finally {
      await context.close();
    }
  });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
});

test(`with neither email nor webhooks configured the settings offer in-app only (${BACKEND})`, async (t) => {
  await mkdir(SHOTS, { recursive: true });
  const database = ownDatabase("channels");
  if (database) t.after(() => database.drop());
  const server = await startServer(database ? { BELFRY_DATABASE_URL: database.url } : {});
  t.after(() => server.stop());
  const { page, pageErrors } = await openPage(t);

  await page.goto(`${server.url}/`);
  const inbox = page.locator("belfry-inbox");
  await inbox.locator('[part="status"][data-state="live"]').waitFor({ state: "attached" });
  await inbox.locator('button[part="bell"]').click();
  await inbox.locator('button[part="preferences-button"]').click();
  await inbox.locator('input[part="switch"][data-category="general"]').waitFor();
  assert.deepEqual(await switchesOf(inbox, "general"), ["IN_APP"]);
  assert.deepEqual(await headings(inbox), ["Category", "In-app"]);
  await page.screenshot({ path: join(SHOTS, `${BACKEND}-preferences-in-app-only.png`), animations: "disabled" });
  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
});

const QUIET_HOURS = `{ quietHours { windows { days start end } timeZone quietUntil } }`;
const SET_QUIET_HOURS = `mutation($windows: [QuietWindowInput!]!) { setQuietHours(windows: $windows) { windows { days } quietUntil } }`;
const QUIET_FLAGS = `{ notifications(first: 10) { edges { node { id quiet } } } }`;

test(`quiet hours are set in the settings, and what arrives inside them gets no toast (${BACKEND})`, async (t) => {
  await mkdir(SHOTS, { recursive: true });
  const database = ownDatabase("quiet");
  if (database) t.after(() => database.drop());
  const server = await startServer(database ? { BELFRY_DATABASE_URL: database.url } : {});
  t.after(() => server.stop());
  const demo = await demoCredentials(server);
  const { page, pageErrors } = await openPage(t);
  const quietHours = async () => (await graphql(server, demo.token, QUIET_HOURS)).quietHours;
  const setQuietHours = async (windows) => (await graphql(server, demo.token, SET_QUIET_HOURS, { windows })).setQuietHours;
  const send = async (title) => {
    const data = await graphql(server, demo.serviceKey, SEND, { input: { recipients: [demo.user], title, category: "general" } });
    return data.sendNotification.deliveries[0].notificationId;
  };

  await page.goto(`${server.url}/`);
  const inbox = page.locator("belfry-inbox");
  await inbox.locator('[part="status"][data-state="live"]').waitFor({ state: "attached" });
  await inbox.locator('button[part="bell"]').click();
  const openSettings = () => inbox.locator('button[part="preferences-button"]').click();
  const back = () => inbox.locator('button[part="preferences-back"]').click();
  const section = inbox.locator('[part="quiet-hours"]');
  const windows = section.locator('[part="quiet-window"]');
  const save = async () => {
    await section.locator('button[part="quiet-save"]').click();
    await section.locator('[part="quiet-saved"]').filter({ hasText: /^Saved$/ }).waitFor();
  };
  /** Fills the form in as a person would and adds the window to the list. */
  const addWindow = async (days, start, end) => {
    for (const day of days) await section.getByLabel(day, { exact: true }).check();
    await section.getByLabel("From", { exact: true }).fill(start);
    await section.getByLabel("To", { exact: true }).fill(end);
    await section.locator('button[part="quiet-add"]').click();
  };
  await openSettings();
  // The demo user has no time zone in their profile.
  await section.locator('[part="quiet-zone"]').filter({ hasText: /^UTC$/ }).waitFor();

  await t.test("a window added in the settings is on the server once saved", async () => {
    await addWindow(["Sat", "Sun"], "22:00", "07:00");
    await windows.filter({ hasText: "Sat, Sun, 22:00–07:00 next day" }).waitFor();
    assert.deepEqual((await quietHours()).windows, [], "nothing is sent before Save");
    await save();
    const saved = await quietHours();
    assert.deepEqual(saved.windows, [{ days: ["SAT", "SUN"], start: "22:00", end: "07:00" }]);
    assert.equal(saved.timeZone, "UTC");
    await page.screenshot({ path: join(SHOTS, `${BACKEND}-quiet-hours.png`), animations: "disabled" });
  });

  await t.test("the server's refusal shows in the settings, and nothing changes", async () => {
    await addWindow(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "00:00", "00:00");
    await section.locator('button[part="quiet-save"]').click();
    await section.locator('[part="quiet-error"]').filter({ hasText: "the windows cover the whole week" }).waitFor();
    assert.equal((await quietHours()).windows.length, 1, "the saved window stays, alone");
    await section.getByRole("button", { name: "Remove Every day, all day" }).click();
    await section.locator('[part="quiet-error"]').waitFor({ state: "hidden" });
  });

  await t.test("a window removed in the settings is gone from the server once saved", async () => {
    await section.getByRole("button", { name: "Remove Sat, Sun, 22:00–07:00 next day" }).click();
    await windows.first().waitFor({ state: "detached" });
    await save();
    assert.deepEqual((await quietHours()).windows, []);
  });

  await t.test("inside quiet hours a notification is listed live but gets no toast; outside, it gets one", async () => {
    // From an hour ago to an hour ahead, in UTC (the demo user's zone), on the day it starts.
    const from = new Date(Date.now() - 3_600_000);
    const to = new Date(Date.now() + 3_600_000);
    const time = (date) => date.toISOString().slice(11, 16);
    const day = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"][from.getUTCDay()];
    assert.ok((await setQuietHours([{ days: [day], start: time(from), end: time(to) }])).quietUntil, "quiet now");
    await back();
    await openSettings();
    await section.locator('[part="quiet-until"]').filter({ hasText: new RegExp(`^Quiet until (\\w{3} )?${time(to)}$`) }).waitFor();
    await back();

    const quiet = await send("Sent in quiet hours");
    const item = (id) => inbox.locator(`[part~="item"][data-id="${id}"]`);
    const toast = (id) => inbox.locator(`[part~="toast"][data-id="${id}"]`);
    await item(quiet).waitFor();
    assert.equal((await setQuietHours([])).quietUntil, null, "quiet hours are over");
    const loud = await send("Sent outside quiet hours");
    await toast(loud).waitFor();
    await item(loud).waitFor();
    // The live stream is in order: the quiet one was handled before the loud one's toast showed.
    assert.equal(await toast(quiet).count(), 0, "no toast for the one sent in quiet hours");
    const flags = (await graphql(server, demo.token, QUIET_FLAGS)).notifications.edges.map(({ node }) => node);
    assert.deepEqual(flags, [{ id: loud, quiet: false }, { id: quiet, quiet: true }]);
  });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
});

const DIGESTS = `{ digests { settings { category channel schedule { frequency at day } nextAt } timeZone } }`;
const SET_DIGEST = `mutation($category: String!, $channel: Channel!, $schedule: DigestScheduleInput) {
  setDigest(category: $category, channel: $channel, schedule: $schedule) { timeZone }
}`;

test(`digests are set in the settings, kept on the server, and refused in the server's words (${BACKEND})`, async (t) => {
  await mkdir(SHOTS, { recursive: true });
  const database = ownDatabase("digests");
  if (database) t.after(() => database.drop());
  const server = await startServer({ ...DELIVERING, ...(database ? { BELFRY_DATABASE_URL: database.url } : {}) });
  t.after(() => server.stop());
  const demo = await demoCredentials(server);
  const { page, pageErrors } = await openPage(t);
  const digests = async () => (await graphql(server, demo.token, DIGESTS)).digests;
  /** What the API itself answers to a digest it refuses: its code and message. */
  const refusal = async (variables) => {
    const response = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${demo.token}` },
      body: JSON.stringify({ query: SET_DIGEST, variables }),
    });
    const [error] = (await response.json()).errors ?? [];
    assert.equal(error?.extensions?.code, "BAD_USER_INPUT", `refused: ${JSON.stringify(variables)}`);
    return error.message;
  };

  const inbox = page.locator("belfry-inbox");
  const section = inbox.locator('[part="digests"]');
  const choice = (name) => section.getByRole("combobox", { name, exact: true });
  const at = section.getByLabel("At", { exact: true });
  const saved = section.locator('[part="digest-saved"]').filter({ hasText: /^Saved$/ });
  const error = section.locator('[part="digest-error"]');
  const listed = section.locator('[part="digest"]');
  const openSettings = async () => {
    await inbox.locator('[part="status"][data-state="live"]').waitFor({ state: "attached" });
    await inbox.locator('button[part="bell"]').click();
    await inbox.locator('button[part="preferences-button"]').click();
    // The demo user has no time zone in their profile.
    await section.locator('[part="digest-zone"]').filter({ hasText: /^UTC$/ }).waitFor();
  };
  /** Chooses a category and channel in the form as a person would, and a frequency. */
  const choose = async (category, channel, frequency) => {
    await choice("Category").selectOption(category);
    await choice("Channel").selectOption(channel);
    await choice("Send").selectOption(frequency);
  };
  await page.goto(`${server.url}/`);
  await openSettings();

  await t.test("the form offers the channels besides in-app that this server delivers on", async () => {
    const channels = await choice("Channel").evaluate((select) => [...select.options].map((o) => [o.value, o.text]));
    assert.deepEqual(channels, [["EMAIL", "Email"], ["WEBHOOK", "Webhook"]]);
    await listed.first().waitFor({ state: "detached" });
    await section.getByText("None: each notification goes on its own.").waitFor();
  });

  await t.test("a daily digest at 09:00 for billing on email, saved in the settings, is on the server", async () => {
    await choose("billing", "EMAIL", "DAILY");
    assert.equal(await choice("On").isVisible(), false, "a daily digest has no day");
    await at.fill("09:00");
    assert.deepEqual((await digests()).settings, [], "nothing is sent before Save");
    await section.locator('button[part="digest-save"]').click();
    await saved.waitFor();
    const { settings, timeZone } = await digests();
    assert.equal(timeZone, "UTC");
    assert.deepEqual(
      settings.map(({ category, channel, schedule }) => ({ category, channel, schedule })),
      [{ category: "billing", channel: "EMAIL", schedule: { frequency: "DAILY", at: "09:00", day: null } }],
    );
    const next = new Date(settings[0].nextAt);
    assert.equal(next.toISOString().slice(11, 16), "09:00", "it closes at 09:00 UTC");
    assert.ok(next.getTime() > Date.now() && next.getTime() <= Date.now() + 86_400_000, `next within a day: ${settings[0].nextAt}`);
    await listed.filter({ hasText: /^billing, Email: Daily at 09:00, next (\w{3} )?09:00$/ }).waitFor();
    await page.screenshot({ path: join(SHOTS, `${BACKEND}-digests.png`), animations: "disabled" });
  });

  await t.test("after a reload the settings show it as the server kept it", async () => {
    await page.reload();
    await openSettings();
    await listed.filter({ hasText: "billing, Email: Daily at 09:00" }).waitFor();
    await choice("Category").selectOption("billing");
    await choice("Channel").selectOption("EMAIL");
    assert.equal(await choice("Send").inputValue(), "DAILY");
    assert.equal(await at.inputValue(), "09:00");
    await choice("Channel").selectOption("WEBHOOK");
    assert.equal(await choice("Send").inputValue(), "", "billing has no webhook digest");
  });

  await t.test("the server's refusal shows in the settings in its own words, and nothing changes", async () => {
    await choose("billing", "WEBHOOK", "WEEKLY");
    await choice("On").selectOption("FRI");
    await at.fill("");
    await section.locator('button[part="digest-save"]').click();
    const message = await refusal({ category: "billing", channel: "WEBHOOK", schedule: { frequency: "WEEKLY", at: null, day: "FRI" } });
    await error.filter({ hasText: message }).waitFor();
    assert.equal((await error.textContent())?.trim(), message);
    assert.equal((await digests()).settings.length, 1, "the daily one stays, alone");
    // Corrected and sent from the keyboard: Enter in the time field saves.
    await at.fill("18:30");
    await at.press("Enter");
    await saved.waitFor();
    await error.waitFor({ state: "hidden" });
    const weekly = (await digests()).settings.find((s) => s.channel === "WEBHOOK");
    assert.deepEqual(weekly?.schedule, { frequency: "WEEKLY", at: "18:30", day: "FRI" });
    assert.equal(new Date(weekly.nextAt).getUTCDay(), 5, "it closes on a Friday");
    await listed.filter({ hasText: /^billing, Webhook: Weekly on Fri at 18:30, next/ }).waitFor();
  });

  await t.test("switched off in the settings, each is gone from the server", async () => {
    for (const channel of ["EMAIL", "WEBHOOK"]) {
      await choose("billing", channel, "");
      assert.equal(await at.isVisible(), false, "off has no time");
      await section.locator('button[part="digest-save"]').click();
      await saved.waitFor();
    }
    assert.deepEqual((await digests()).settings, []);
    await section.getByText("None: each notification goes on its own.").waitFor();
  });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
});
