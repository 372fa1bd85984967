// Browser test of cioq's dashboard (asynqmon behind basic auth, payloads
// redacted), driven by playwright-core in Debian's headless chromium.
//
// Run by e2e/run.sh, which starts Redis, the sandbox, a worker and `cioq
// serve` and dead-letters one task first. Environment:
//
//   E2E_BASE_URL      http://127.0.0.1:PORT of `cioq serve` (required)
//   E2E_USER          dashboard user            (default e2e)
//   E2E_PASSWORD      dashboard password        (default e2e-secret)
//   E2E_SECRET_EMAIL  an email enqueued in a payload, which must never appear
//   E2E_RESET_KEY     the idempotency key of the delivered password reset
//   E2E_DEAD_TYPE     the dead-lettered task's type (default cio:broadcast_trigger)
//   E2E_DEAD_QUEUE    its queue                 (default bulk)
//   E2E_SCREENSHOTS   where to save PNGs        (default e2e/screenshots)
//   CHROMIUM          browser binary            (default /usr/bin/chromium)
//   E2E_LABEL         word before the closing count (default e2e)
//
// Prints one line per check and closes with "LABEL: N passed, M failed".

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const base = (process.env.E2E_BASE_URL || "").replace(/\/+$/, "");
const user = process.env.E2E_USER || "e2e";
const password = process.env.E2E_PASSWORD || "e2e-secret";
const secretEmail = process.env.E2E_SECRET_EMAIL || "";
const resetKey = process.env.E2E_RESET_KEY || "";
const deadType = process.env.E2E_DEAD_TYPE || "cio:broadcast_trigger";
const deadQueue = process.env.E2E_DEAD_QUEUE || "bulk";
const shots = process.env.E2E_SCREENSHOTS || join(here, "screenshots");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const label = process.env.E2E_LABEL || "e2e";
const queues = ["critical", "default", "bulk"];
const STEP_TIMEOUT = 20_000;

if (!base) {
  console.error("e2e: E2E_BASE_URL is not set (run e2e/run.sh)");
  process.exit(2);
}

let passed = 0;
let failed = 0;
async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err && err.message ? err.message.split("\n")[0] : err}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Everything a person could read on the page, and what its own API returned.
async function pageText(page) {
  return page.evaluate(() => document.body.innerText);
}

mkdirSync(shots, { recursive: true });

// run.sh stops this script with SIGTERM when its time limit is up: say so,
// count it as a failure and exit at once (playwright kills the browser it
// launched when the process exits).
process.on("SIGTERM", () => {
  console.log("FAIL stopped by SIGTERM (e2e/run.sh's time limit) before the checks finished");
  console.log(`${label}: ${passed} passed, ${failed + 1} failed`);
  process.exit(124);
});

const browser = await chromium.launch({
  executablePath,
  headless: true,
  timeout: 30_000,
  handleSIGTERM: false,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // No --user-data-dir: playwright gives each launch a fresh, empty
    // profile in a temporary directory and removes it on close.
  ],
});

// Every response body the dashboard's pages fetched, checked for the email.
const apiBodies = [];

try {
  await check("unauthenticated /dashboard gets 401 with a basic-auth challenge", async () => {
    const ctx = await browser.newContext();
    try {
      const res = await ctx.request.get(`${base}/dashboard/`, { maxRedirects: 0 });
      assert(res.status() === 401, `status ${res.status()}, want 401`);
      const challenge = res.headers()["www-authenticate"] || "";
      assert(/^basic/i.test(challenge), `WWW-Authenticate ${JSON.stringify(challenge)}, want Basic`);
      const api = await ctx.request.get(`${base}/dashboard/api/queues`);
      assert(api.status() === 401, `/dashboard/api/queues status ${api.status()}, want 401`);
    } finally {
      await ctx.close();
    }
  });

  await check("wrong password gets 401", async () => {
    const ctx = await browser.newContext({ httpCredentials: { username: user, password: password + "x" } });
    try {
      const res = await ctx.request.get(`${base}/dashboard/api/queues`);
      assert(res.status() === 401, `status ${res.status()}, want 401`);
    } finally {
      await ctx.close();
    }
  });

  const ctx = await browser.newContext({
    httpCredentials: { username: user, password },
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
  });
  ctx.setDefaultTimeout(STEP_TIMEOUT);
  // The network is closed but for cioq: asynqmon's page asks for web fonts
  // from a CDN, which would only fail after a DNS lookup. Refuse at once.
  await ctx.route((url) => !url.href.startsWith(base), (route) => route.abort("blockedbyclient"));
  const page = await ctx.newPage();
  // A script or style the Content-Security-Policy blocks is a page error.
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });
  // The page's own errors: console errors other than failed resource loads
  // (reported below with their URL), uncaught exceptions, and requests to
  // cioq that failed or answered >= 400.
  const pageErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => pageErrors.push(`exception: ${e.message}`));
  page.on("requestfailed", (r) => {
    if (r.url().startsWith(base)) pageErrors.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`);
  });
  page.on("response", async (res) => {
    if (res.url().startsWith(base) && res.status() >= 400) pageErrors.push(`HTTP ${res.status()}: ${res.url()}`);
    if (!res.url().includes("/dashboard/api/")) return;
    try {
      apiBodies.push({ url: res.url(), body: await res.text() });
    } catch {
      // a body that went away with a navigation
    }
  });

  await check("logged in, /dashboard lists the critical, default and bulk queues", async () => {
    const res = await page.goto(`${base}/dashboard`, { waitUntil: "domcontentloaded" });
    assert(res && res.status() === 200, `status ${res && res.status()}, want 200`);
    // asynqmon's home page: a table with one row per queue, each name a link
    // to /dashboard/queues/NAME.
    for (const q of queues) {
      await page.locator(`a[href$="/dashboard/queues/${q}"]`).first().waitFor({ state: "visible" });
    }
    const table = page.locator("table").filter({ hasText: "critical" }).first();
    await table.waitFor({ state: "visible" });
    const text = await table.innerText();
    for (const q of queues) assert(text.includes(q), `queue ${q} missing from the queues table`);
    // Let the charts finish their first animation before the screenshot.
    await page.waitForTimeout(1200);
    await page.screenshot({ path: join(shots, "queues.png") });
  });

  await check(`the dead-lettered ${deadType} is in the ${deadQueue} queue's archived tab`, async () => {
    await page.goto(`${base}/dashboard/queues/${deadQueue}?status=archived`, { waitUntil: "domcontentloaded" });
    await page.getByText(deadType, { exact: true }).first().waitFor({ state: "visible" });
    const rows = page.locator("table tbody tr").filter({ hasText: deadType });
    assert((await rows.count()) >= 1, `no table row with ${deadType}`);
    // The worker's last error names Customer.io's answer (the sandbox's 404
    // for an unknown broadcast), redacted like the payload.
    const rowText = await rows.first().innerText();
    assert(/404/.test(rowText), `the row's last error does not mention the 404: ${JSON.stringify(rowText.slice(0, 200))}`);
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(shots, "dead-letter.png") });
  });

  await check("the task's detail page opens and hides its payload", async () => {
    // The archived tab's row links to the task page (/queues/Q/tasks/ID).
    const row = page.locator("table tbody tr").filter({ hasText: deadType }).first();
    await row.getByText(deadType, { exact: true }).click();
    await page.waitForURL(/\/dashboard\/queues\/[^/]+\/tasks\/[^/?]+/);
    await page.getByText(deadType).first().waitFor({ state: "visible" });
    await page.getByText("[redacted]").first().waitFor({ state: "visible" });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(shots, "task.png"), fullPage: true });
  });

  await check("the link on asynqmon's pages opens the timeline page; the key form finds the delivered password reset", async () => {
    assert(resetKey !== "", "E2E_RESET_KEY is not set");
    await page.goto(`${base}/dashboard`, { waitUntil: "domcontentloaded" });
    const link = page.locator("#cioq-timeline-link");
    await link.waitFor({ state: "visible" });
    await link.click();
    await page.waitForURL(/\/dashboard\/timeline$/);
    // The key is posted (same origin: the dashboard's checks let it
    // through) and answered 303 to the task's page, whose URL holds only
    // the task id.
    await page.fill("#key", resetKey);
    await Promise.all([page.waitForURL(/\/dashboard\/timeline\?task=[^&]+$/), page.click("#key-submit")]);
    assert(!page.url().includes(encodeURIComponent(resetKey)) && !page.url().includes(resetKey), `the key is in the URL ${page.url()}`);
    const facts = await page.locator("#facts").innerText();
    assert(/State\s+delivered \(final\)/.test(facts), `state: ${JSON.stringify(facts)}`);
    assert(/password_reset/.test(facts) && /cio:send_email/.test(facts), `facts: ${JSON.stringify(facts)}`);
    const entries = await page.locator("#entries").innerText();
    for (const kind of ["enqueued", "accepted", "sent", "delivered"]) {
      assert(new RegExp(`\\b${kind}\\b`).test(entries), `no ${kind} entry: ${JSON.stringify(entries)}`);
    }
    assert(/webhook/.test(entries), `no entry from a reporting webhook: ${JSON.stringify(entries)}`);
    const text = await pageText(page);
    assert(!text.toLowerCase().includes(secretEmail.toLowerCase()), "the timeline page shows the recipient's email");
    await page.screenshot({ path: join(shots, "timeline.png"), fullPage: true });
  });

  await check("redaction: no enqueued email on any page or in any API response", async () => {
    assert(secretEmail !== "", "E2E_SECRET_EMAIL is not set");
    const seen = [];
    for (const q of queues) {
      for (const status of ["pending", "scheduled", "retry", "archived", "completed"]) {
        await page.goto(`${base}/dashboard/queues/${q}?status=${status}`, { waitUntil: "domcontentloaded" });
        await page.locator("table, [role=alert], .MuiAlert-root").first().waitFor({ state: "attached" }).catch(() => {});
        await page.waitForLoadState("networkidle").catch(() => {});
        const text = await pageText(page);
        if (text.toLowerCase().includes(secretEmail.toLowerCase())) seen.push(`page ${q}?status=${status}`);
      }
    }
    for (const { url, body } of apiBodies) {
      if (body.toLowerCase().includes(secretEmail.toLowerCase())) seen.push(`API ${url}`);
    }
    assert(apiBodies.length > 0, "the dashboard made no API request");
    assert(seen.length === 0, `email visible in: ${seen.join(", ")}`);
  });

  await check("the dashboard's responses carry a Content-Security-Policy allowing only its own scripts", async () => {
    for (const path of ["/dashboard/", "/dashboard/api/queues", "/dashboard/timeline"]) {
      const res = await ctx.request.get(`${base}${path}`);
      const csp = res.headers()["content-security-policy"] || "";
      assert(/(^|; )script-src 'self'( 'sha256-[A-Za-z0-9+/=]+')+;/.test(csp), `${path}: script-src of ${JSON.stringify(csp)}`);
      assert(/frame-ancestors 'none'/.test(csp) && !/unsafe-eval/.test(csp), `${path}: ${JSON.stringify(csp)}`);
    }
  });

  await check("pausing and resuming the default queue from the page works (bodiless POSTs pass the checks)", async () => {
    await page.goto(`${base}/dashboard`, { waitUntil: "domcontentloaded" });
    const row = page.locator("table tbody tr").filter({ has: page.locator('a[href$="/dashboard/queues/default"]') }).first();
    await row.waitFor({ state: "visible" });
    const actions = row.locator("td").last();
    for (const [action, shown] of [["pause", "paused"], ["resume", "run"]]) {
      await actions.hover();
      const answered = page.waitForResponse(
        (r) => r.url().endsWith(`/dashboard/api/queues/default:${action}`) && r.request().method() === "POST",
      );
      await actions.locator("button").first().click();
      const res = await answered;
      assert(res.status() === 204, `${action}: status ${res.status()}, want 204`);
      // The first cell is the name (a th), the first td the state.
      await row.locator("td").first().getByText(shown, { exact: true }).waitFor({ state: "visible" });
    }
  });

  await check("deleting the scheduled task from its tab works (a JSON batch_delete passes the checks)", async () => {
    await page.goto(`${base}/dashboard/queues/default?status=scheduled`, { waitUntil: "domcontentloaded" });
    const rows = page.locator('table[aria-label="scheduled tasks table"] tbody tr');
    await rows.first().waitFor({ state: "visible" });
    const before = await rows.count();
    await rows.first().locator('input[type="checkbox"]').check();
    const answered = page.waitForResponse((r) => r.url().endsWith("/dashboard/api/queues/default/scheduled_tasks:batch_delete"));
    await page.getByRole("button", { name: "Delete", exact: true }).first().click();
    const res = await answered;
    const ctype = res.request().headers()["content-type"] || "";
    assert(res.status() === 200, `batch_delete: status ${res.status()}, want 200`);
    assert(ctype.startsWith("application/json"), `batch_delete sent Content-Type ${JSON.stringify(ctype)}`);
    const api = await ctx.request.get(`${base}/dashboard/api/queues/default/scheduled_tasks`);
    const left = ((await api.json()).tasks || []).length;
    assert(left === before - 1, `${left} scheduled tasks left, want ${before - 1}`);
  });

  await check("a cross-site form cannot pause a queue (403; the queue keeps running)", async () => {
    // A page of another origin, served by the browser's router, that posts
    // a form to the dashboard as soon as it loads.
    const evilOrigin = "http://evil.test";
    await ctx.route(`${evilOrigin}/**`, (route) =>
      route.fulfill({
        contentType: "text/html",
        body:
          `<form method="POST" action="${base}/dashboard/api/queues/default:pause"><input name="x" value="1"></form>` +
          "<script>document.forms[0].submit()</script>",
      }),
    );
    const evil = await ctx.newPage();
    try {
      const answered = evil.waitForResponse((r) => r.url().endsWith("/dashboard/api/queues/default:pause"));
      await evil.goto(`${evilOrigin}/attack.html`);
      const res = await answered;
      assert(res.status() === 403, `cross-site form POST: status ${res.status()}, want 403`);
    } finally {
      await evil.close();
    }
    const q = await ctx.request.get(`${base}/dashboard/api/queues/default`);
    const info = await q.json();
    assert(info.current && info.current.paused === false, `queue default after the form: ${JSON.stringify(info.current)}`);
  });

  await check("no errors on the dashboard's pages (console, exceptions, failed requests to cioq)", async () => {
    assert(pageErrors.length === 0, pageErrors.slice(0, 3).join(" | "));
  });

  await ctx.close();
} catch (err) {
  failed++;
  console.log(`FAIL setup: ${err && err.message ? err.message : err}`);
} finally {
  await browser.close().catch(() => {});
}

console.log(`${label}: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
