// Accessibility: axe-core (pinned in package.json) audits the demo page and `<belfry-inbox>`
// against the WCAG 2.0/2.1 A and AA rules, descending into the element's open shadow root, in
// each state a person sees: the closed bell with its badge, the toasts with an urgent one, the
// open dropdown, the settings (with quiet hours now, a digest, and an error in each form), and
// the dropdown at a phone's width. Each state is audited in the element's light and dark theme (chosen in the demo
// page's own settings, on the light page).
// Any violation fails. Run by `scripts/e2e` on both backends, like inbox.test.js; on Postgres
// in a database of its own, since it adds to the demo user's notifications that one counts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import { BACKEND, demoCredentials, graphql, ownDatabase, startServer } from "./server.js";

/** The axe-core that package-lock.json pins; the page must run this one. */
const AXE_VERSION = "4.14.1";
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const WAIT = 15_000;

const SEND = `mutation($input: SendNotificationInput!) {
  sendNotification(input: $input) { deliveries { notificationId } }
}`;
const MARK_READ = `mutation($id: ID!) { markRead(id: $id) { id } }`;
const SET_QUIET_HOURS = `mutation($windows: [QuietWindowInput!]!) { setQuietHours(windows: $windows) { quietUntil } }`;
const SET_DIGEST = `mutation($category: String!, $channel: Channel!, $schedule: DigestScheduleInput) {
  setDigest(category: $category, channel: $channel, schedule: $schedule) { timeZone }
}`;
// Email configured, so the settings offer digests; the demo user has no address, so none is sent.
const SMTP = { BELFRY_SMTP: '{ host = "127.0.0.1", port = 2525, tls = "none", from = "Belfry <noreply@belfry.test>" }' };

/**
 * Runs axe on the whole page and fails on any violation, naming each node and why, and on any
 * check inside the element that axe leaves undecided.
 * @param {import("playwright-core").Page} page @param {string} state
 */
async function audit(page, state) {
  // Measured mid-animation, colours are blends of two frames (the dropdown fades in). The
  // document's animations leave out those inside shadow roots; the looping ones never end.
  await page.evaluate(() => {
    const roots = [document, ...[...document.querySelectorAll("*")].flatMap((el) => (el.shadowRoot ? [el.shadowRoot] : []))];
    const finite = roots.flatMap((root) => root.getAnimations()).filter((a) => a.effect?.getComputedTiming().iterations !== Infinity);
    return Promise.all(finite.map((a) => a.finished.catch(() => undefined)));
  });
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ content: AXE_SOURCE });
  const version = await page.evaluate(() => /** @type {any} */ (window).axe.version);
  assert.equal(version, AXE_VERSION, "the page runs the pinned axe-core");
  const results = await page.evaluate(
    (tags) => /** @type {any} */ (window).axe.run(document, { runOnly: { type: "tag", values: tags } }),
    TAGS,
  );
  const report = results.violations.flatMap((/** @type {any} */ v) =>
    v.nodes.map((/** @type {any} */ n) => `${v.id} (${v.impact}) ${JSON.stringify(n.target)}: ${n.failureSummary}`),
  );
  assert.deepEqual(report, [], `axe ${version} finds no WCAG A/AA violation: ${state}`);
  // What axe cannot decide it leaves for review: a one-digit badge below 4.5:1 is such a case.
  // The page's own text under the open dropdown may be; nothing inside the element may.
  const undecided = results.incomplete.flatMap((/** @type {any} */ r) =>
    r.nodes
      .filter((/** @type {any} */ n) => Array.isArray(n.target[0])) // a path into a shadow root
      .map((/** @type {any} */ n) => `${r.id} ${JSON.stringify(n.target)}: ${n.failureSummary}`),
  );
  assert.deepEqual(undecided, [], `axe ${version} decides every check inside the element: ${state}`);
  return results;
}

/**
 * How many `flag` chips (`HIGH` or `URGENT`) axe measured the contrast of and passed, in the
 * audits `results`, where the node's selector (through the shadow root) contains `within`:
 * the audit must have reached them, not skipped them.
 * @param {any[]} results @param {string} flag @param {string} within
 */
function flagsPassed(results, flag, within) {
  const nodes = results.flatMap((r) => r.passes.find((/** @type {any} */ p) => p.id === "color-contrast")?.nodes ?? []);
  return nodes.filter(
    (/** @type {any} */ n) => n.html.includes(`class="flag ${flag}"`) && n.target.join(" ").includes(within),
  ).length;
}

test(`the inbox component passes axe's WCAG A/AA audit (${BACKEND})`, async (t) => {
  const database = ownDatabase("a11y");
  if (database) t.after(() => database.drop());
  const server = await startServer({ ...SMTP, ...(database ? { BELFRY_DATABASE_URL: database.url } : {}) });
  t.after(() => server.stop());
  t.diagnostic(`axe-core ${AXE_VERSION}, rules tagged ${TAGS.join(", ")}`);

  const demo = await demoCredentials(server);
  /** @param {string} title @param {Record<string, unknown>} extra */
  const send = async (title, extra) => {
    const data = await graphql(server, demo.serviceKey, SEND, { input: { recipients: [demo.user], title, ...extra } });
    return /** @type {string} */ (data.sendNotification.deliveries[0].notificationId);
  };

  // Every look an item can have: each priority, read and unread, with and without a body.
  const body = "Something happened that you may want to look at.";
  for (const [priority, category] of [["LOW", "social"], ["NORMAL", "general"], ["HIGH", "billing"], ["URGENT", "security"]]) {
    const read = await send(`${priority} read`, { priority, category, body });
    await graphql(server, demo.token, MARK_READ, { id: read });
    await send(`${priority} unread`, { priority, category, body });
  }

  const browser = await chromium.launch({
    executablePath: process.env.BELFRY_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());

  for (const theme of /** @type {const} */ (["light", "dark"])) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, colorScheme: "light" });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    /** @type {string[]} */
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    const inbox = page.locator("belfry-inbox");
    const bell = inbox.locator('button[part="bell"]');
    const panel = inbox.locator('[part="panel"]');

    // Unseen, so the closed bell shows its badge (the other theme's visit saw the rest).
    await send(`Waiting in the ${theme} theme`, { category: "general" });
    await page.goto(`${server.url}/`);
    await inbox.locator('[part="status"][data-state="live"]').waitFor({ state: "attached" });
    await page.locator("#theme").selectOption(theme);
    assert.equal(
      await inbox.evaluate((el) => getComputedStyle(el).colorScheme),
      theme,
      `the element is in its ${theme} theme`,
    );

    await t.test(`${theme}: the closed bell and its badge`, async () => {
      await inbox.locator('[part="badge"]').waitFor({ state: "visible" });
      await audit(page, `${theme}, bell closed`);
    });

    await t.test(`${theme}: the toasts, an urgent one among them`, async () => {
      const high = await send(`High toast (${theme})`, { priority: "HIGH", category: "billing", body });
      const urgent = await send(`Urgent toast (${theme})`, { priority: "URGENT", category: "security", body });
      const highToast = inbox.locator(`[part~="toast"][data-id="${high}"]`);
      const urgentToast = inbox.locator(`[part~="toast"][data-id="${urgent}"][role="alert"]`);
      await urgentToast.waitFor();
      // The pointer on it keeps the high one from timing out during the audit.
      await highToast.hover();
      const results = await audit(page, `${theme}, toasts`);
      for (const flag of ["HIGH", "URGENT"]) {
        assert.equal(flagsPassed([results], flag, 'part="toast-open"'), 1, `the contrast of the toast's ${flag} flag was measured`);
      }
      await urgentToast.locator('[part="toast-dismiss"]').click();
      await highToast.locator('[part="toast-dismiss"]').click();
      await inbox.locator('[part~="toast"]').first().waitFor({ state: "detached" });
    });

    await t.test(`${theme}: the open dropdown`, async () => {
      await bell.click();
      await panel.waitFor({ state: "visible" });
      await inbox.locator('[part~="item"][data-priority="URGENT"][data-read="false"]').first().waitFor();
      await inbox.locator('[part~="tab"] [part="tab-count"]').first().waitFor();
      // Rows scrolled out of the list are not on screen, so axe leaves them out: audit every
      // screenful, down to the end.
      const audits = [];
      const list = inbox.locator(".scroll");
      for (let screen = 1; ; screen++) {
        audits.push(await audit(page, `${theme}, dropdown open, screen ${screen} of the list`));
        const scrolled = await list.evaluate((el) => {
          const before = el.scrollTop;
          el.scrollBy(0, el.clientHeight);
          return el.scrollTop > before;
        });
        if (!scrolled) break;
      }
      // A tab is named by what it shows, so saying "All" or "All 7" reaches it (WCAG 2.5.3).
      await inbox.getByRole("tab", { name: /^All \d+ unread$/ }).waitFor();
      for (const flag of ["HIGH", "URGENT"]) {
        for (const row of ["read", "unread"]) {
          const measured = flagsPassed(audits, flag, `"item ${row} `);
          assert.ok(measured >= 1, `the contrast of the ${flag} flag on ${row} items was measured`);
        }
      }
    });

    await t.test(`${theme}: the settings, with quiet hours now, a digest, and an error in each form`, async () => {
      // Quiet from an hour ago to an hour ahead (UTC, the demo user's zone), so the settings say
      // until when; cleared after, so later sends still toast.
      const from = new Date(Date.now() - 3_600_000);
      const time = (/** @type {Date} */ date) => date.toISOString().slice(11, 16);
      const day = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"][from.getUTCDay()];
      const windows = [{ days: [day], start: time(from), end: time(new Date(Date.now() + 3_600_000)) }];
      await graphql(server, demo.token, SET_QUIET_HOURS, { windows });
      const daily = { category: "billing", channel: "EMAIL", schedule: { frequency: "DAILY", at: "09:00" } };
      await graphql(server, demo.token, SET_DIGEST, daily);
      await inbox.locator('button[part="preferences-button"]').click();
      await inbox.locator('input[part="switch"]').first().waitFor();
      await inbox.locator('[part="quiet-until"]').waitFor();
      await inbox.locator('[part="quiet-remove"]').waitFor();
      // Adding a window without a day says why it cannot.
      await inbox.locator('button[part="quiet-add"]').click();
      await inbox.locator('[part="quiet-error"]').waitFor();
      // A weekly digest without a time: the server's refusal shows under the digest form.
      const digests = inbox.locator('[part="digests"]');
      await digests.locator('[part="digest"]').waitFor();
      await digests.getByRole("combobox", { name: "Send", exact: true }).selectOption("WEEKLY");
      await digests.getByLabel("At", { exact: true }).fill("");
      await digests.locator('button[part="digest-save"]').click();
      await digests.locator('[part="digest-error"]').waitFor();
      await inbox.locator('[part="preferences"]').evaluate((el) => (el.scrollTop = 0));
      await audit(page, `${theme}, preferences open`);
      // What is scrolled out of the settings is not on screen, so axe leaves it out: scroll down.
      const scrolled = await inbox.locator('[part="preferences"]').evaluate((el) => {
        el.scrollTop = el.scrollHeight;
        return el.scrollTop > 0;
      });
      if (scrolled) await audit(page, `${theme}, preferences scrolled to quiet hours`);
      await graphql(server, demo.token, SET_QUIET_HOURS, { windows: [] });
      await graphql(server, demo.token, SET_DIGEST, { ...daily, schedule: null });
      await inbox.locator('button[part="preferences-back"]').click();
    });

    await t.test(`${theme}: at a phone's width the dropdown fits and its tabs scroll sideways`, async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      // The resize event comes before the next frame is drawn.
      await page.evaluate(() => new Promise(requestAnimationFrame));
      await panel.waitFor({ state: "visible" });
      const box = await panel.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the dropdown fits in 390 px: ${JSON.stringify(box)}`);
      const tabs = await inbox.locator('[part="tabs"]').evaluate((el) => ({
        scrollWidth: el.scrollWidth,
        clientWidth: el.clientWidth,
        overflowX: getComputedStyle(el).overflowX,
      }));
      assert.equal(tabs.overflowX, "auto");
      assert.ok(tabs.scrollWidth > tabs.clientWidth, `the tabs are wider than the dropdown: ${JSON.stringify(tabs)}`);
      await audit(page, `${theme}, dropdown open at 390 px`);
    });

    assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
    await context.close();
  }
});
