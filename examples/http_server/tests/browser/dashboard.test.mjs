// Browser test of the dashboard (CTest label `browser`): headless Chromium
// (Debian package `chromium`) driven by playwright-core, which the
// http_browser_setup fixture npm-installs into JOBTRACK_BROWSER_DIR.
//
// Environment: JOBTRACK_HTTP_SERVER (the server binary), JOBTRACK_BROWSER_DIR
// (node_modules and the screenshot go there), CHROMIUM_PATH (default
// /usr/bin/chromium; the test is skipped when it is missing).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { test } from "node:test";

const serverBinary = process.env.JOBTRACK_HTTP_SERVER;
const browserDir = process.env.JOBTRACK_BROWSER_DIR;
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const chromiumFlags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Starts the server on a free port; resolves once it prints its address. */
function startServer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(serverBinary, ["--port", "0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));
    const timer = setTimeout(() => reject(new Error("the server did not start in 30 s")), 30_000);
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the server exited early (${code})`)));
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      const match = /^listening on (http:\/\/\S+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve({ child, exited, url: match[1] });
      }
    });
  });
}

const rowSelector = (id) => `tr[data-job-id="${id}"]`;

/** Submits a form and returns the job id from the 202 answer. */
async function startFromForm(page, formId, endpoint) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === endpoint),
    page.click(`#${formId} button[type=submit]`),
  ]);
  assert.equal(response.status(), 202);
  assert.match(response.headers()["location"], /^\/api\/jobs\//);
  return (await response.json()).jobId;
}

test("dashboard: start from the form, watch progress, cancel", {
  skip: existsSync(chromiumPath) ? false : `chromium is not installed (${chromiumPath})`,
  timeout: 180_000,
}, async (t) => {
  assert.ok(serverBinary, "JOBTRACK_HTTP_SERVER must name the server binary");
  assert.ok(browserDir, "JOBTRACK_BROWSER_DIR must name the npm install folder");
  const { chromium } = createRequire(path.join(browserDir, "package.json"))("playwright-core");

  // time-scale 2: a hello job takes 4 s, several dashboard refreshes.
  const server = await startServer(["--time-scale", "2"]);
  t.after(async () => {
    server.child.kill("SIGTERM");
    const { code } = await server.exited;
    assert.equal(code, 0, "the server exits 0 on SIGTERM");
  });

  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumFlags });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    // The browser logs every 4xx fetch; the rejected form below makes one on purpose.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      pageErrors.push(message.text());
    }
  });

  await page.goto(server.url);
  assert.equal(await page.title(), "jobtrack dashboard");

  // 1. Start a hello job from the form; its progress bar moves; it completes.
  await page.fill("#hello-name", "john");
  const helloId = await startFromForm(page, "hello-form", "/api/hello");
  const hello = page.locator(rowSelector(helloId));
  await hello.waitFor();
  await page.waitForFunction((selector) => {
    const bar = document.querySelector(`${selector} progress`);
    return bar && bar.value > 0 && bar.value < 100;
  }, rowSelector(helloId), { timeout: 60_000 });
  const firstValue = await hello.locator("progress").evaluate((bar) => bar.value);
  await page.waitForFunction(([selector, before]) => {
    const bar = document.querySelector(`${selector} progress`);
    return bar && bar.value > before;
  }, [rowSelector(helloId), firstValue], { timeout: 60_000 });
  await page.waitForFunction((selector) => document.querySelector(selector)?.dataset.status === "COMPLETED",
    rowSelector(helloId), { timeout: 60_000 });
  assert.equal(await hello.locator(".status").textContent(), "COMPLETED");
  assert.equal(await hello.locator(".outcome").textContent(), "Hello, John!");
  assert.equal(await hello.locator("progress").evaluate((bar) => bar.value), 100);
  assert.equal(await hello.locator("button.cancel").isVisible(), false);

  // 2. Start another (named like markup: it must show as text), cancel it.
  const hostileName = "<script>window.pwned = true</script><img src=x onerror=\"window.pwned = true\">";
  await page.fill("#compose-name", hostileName);
  const composeId = await startFromForm(page, "compose-form", "/api/hello/compose");
  const compose = page.locator(rowSelector(composeId));
  await page.waitForFunction((selector) => document.querySelector(selector)?.dataset.status === "RUNNING",
    rowSelector(composeId), { timeout: 60_000 });
  assert.equal(await compose.locator(".name").textContent(), "compose:" + hostileName);
  await compose.locator("button.cancel").click();
  await page.waitForFunction((selector) => document.querySelector(selector)?.dataset.status === "CANCELLED",
    rowSelector(composeId), { timeout: 60_000 });
  assert.equal(await compose.locator(".status").textContent(), "CANCELLED");
  assert.equal(await compose.locator("button.cancel").isVisible(), false);

  // 3. The hostile name stayed text: no element was created from it.
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal(await page.locator("#jobs script, #jobs img").count(), 0);

  // 4. A rejected form shows the problem's detail.
  await page.fill("#hello-name", "x".repeat(100));
  await page.evaluate(() => { document.getElementById("hello-name").value = "   "; });
  const [rejected] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST"),
    page.click("#hello-form button[type=submit]"),
  ]);
  assert.equal(rejected.status(), 400);
  await page.waitForFunction(() => document.getElementById("notice").textContent.includes("must not be empty"));

  const screenshot = path.join(browserDir, "dashboard.png");
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
  assert.deepEqual(pageErrors, []);
});
