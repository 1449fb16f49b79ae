// The ops console in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Signs in (after a refused attempt), reads the overview,
// finds the rules in priority order and switches one off and on, triggers
// a job and waits for it to succeed, and opens the bundles page. Any
// console error (a CSP violation, a script error) fails the test.
//
// Env: CONSOLE_URL (http://127.0.0.1:PORT), CONSOLE_EMAIL, CONSOLE_PASSWORD,
// CHROMIUM (default /usr/bin/chromium), SCREENSHOT (optional PNG path).
import { chromium } from "playwright-core";

const base = process.env.CONSOLE_URL;
const email = process.env.CONSOLE_EMAIL;
const password = process.env.CONSOLE_PASSWORD;
if (!base || !email || !password) {
  console.error("set CONSOLE_URL, CONSOLE_EMAIL and CONSOLE_PASSWORD");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // This machine has no internet: without these Chromium keeps trying to
  // reach Google's services.
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const problems = [];
const step = (what) => console.log(`- ${what}`);
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  // Failed responses are judged by URL below; every other console error
  // (a CSP violation, a script error) is a problem.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
  });
  // 404 from the shadow report just means no shadow evaluation is running.
  page.on("response", (r) => {
    const expected = r.status() === 404 && r.url().endsWith("/rules/bundles/shadow");
    if (r.status() >= 400 && !expected) problems.push(`HTTP ${r.status()} from ${r.url()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  await page.goto(`${base}/console`);
  step("the sign-in form is shown");
  await page.waitForSelector("#login-form");

  await page.fill("#email", email);
  await page.fill("#password", "not-the-password");
  await page.click("#sign-in");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0);
  step(`a wrong password is refused: "${await page.textContent("#login-error")}"`);
  // The refused login logs a 401 in the console; that one is expected.
  problems.length = 0;

  await page.fill("#password", password);
  await page.click("#sign-in");
  await page.waitForSelector("#tabs:not([hidden])");
  step(`signed in as ${await page.textContent("#who")}`);
  await page.waitForFunction(() => document.querySelector("#k-model").textContent !== "–");
  step(`overview: model version ${await page.textContent("#k-model")}, users ${await page.textContent("#k-users")}`);

  await page.click('#tabs button[data-tab="rules"]');
  await page.waitForSelector("#rules-table tbody tr[data-rule]");
  const rules = await page.$$eval("#rules-table tbody tr[data-rule]", (rows) =>
    rows.map((r) => ({ name: r.dataset.rule, priority: Number(r.querySelector("input.priority").value) })));
  if (rules.length < 1) throw new Error("no rules listed");
  for (let i = 1; i < rules.length; i++) {
    if (rules[i].priority > rules[i - 1].priority) throw new Error(`rules out of priority order: ${JSON.stringify(rules)}`);
  }
  step(`rules listed in priority order: ${rules.map((r) => `${r.name}(${r.priority})`).join(", ")}`);
  const first = rules[0].name;
  const box = `#rules-table tr[data-rule="${first}"] input.enabled`;
  const wasOn = await page.isChecked(box);
  await page.click(box);
  await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.checked === want &&
    document.querySelector("#rules-message").textContent.includes("saved"), [box, !wasOn]);
  await page.click(box);
  await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.checked === want, [box, wasOn]);
  step(`rule ${first} switched ${wasOn ? "off and on" : "on and off"} again`);

  await page.click('#tabs button[data-tab="jobs"]');
  const trigger = 'tr[data-job="update_metrics"] button.trigger';
  await page.waitForSelector(trigger);
  await page.click(trigger);
  await page.waitForSelector('#runs-table tr[data-job="update_metrics"][data-status="SUCCESS"]');
  const result = await page.textContent('#runs-table tr[data-job="update_metrics"][data-status="SUCCESS"] pre');
  step(`update_metrics triggered and succeeded: ${result.replace(/\s+/g, " ")}`);

  await page.click('#tabs button[data-tab="bundles"]');
  await page.waitForFunction(() => document.querySelector("#bundles-list").textContent.length > 0);
  step(`bundles: ${(await page.textContent("#bundles-list")).slice(0, 80)}`);
  // With CONSOLE_BUNDLE and CONSOLE_ROLLBACK_TO: roll that bundle back to
  // that revision with the page's button (accepting its confirmation).
  const bundle = process.env.CONSOLE_BUNDLE, target = process.env.CONSOLE_ROLLBACK_TO;
  if (bundle && target) {
    page.once("dialog", (d) => d.accept());
    await page.click(`[data-bundle="${bundle}"] tr[data-revision="${target}"] button`);
    await page.waitForFunction((t) => document.querySelector("#bundles-message").textContent.includes(`revision ${t} is active`), target);
    await page.waitForFunction(([b, t]) => document.querySelector(`[data-bundle="${b}"] tr[data-revision="${t}"]`)?.textContent.includes("active"), [bundle, target]);
    step(`bundle ${bundle} rolled back to revision ${target}`);
  }

  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  if (problems.length) throw new Error(`the page reported errors:\n${problems.join("\n")}`);
  console.log("console browser test passed");
} catch (e) {
  console.error(`console browser test FAILED: ${e.message}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
