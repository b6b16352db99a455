// Drives Debian's Chromium (never a downloaded browser) through the metrics
// service's dashboard for the Rust test `dashboard::the_page_shows_the_api_numbers_and_updates_live`.
//
//   node dashboard.mjs URL
//
// Prints one JSON line with what the page shows once loaded, then waits for
// a line on stdin (the test published a new deployment), waits for the page
// to show more deployments without reloading, and prints a second line.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const url = process.argv[2];
const executablePath = process.env.CONVEYOR_CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  const failed = [];
  page.on("requestfailed", (r) => failed.push(r.url()));
  await page.goto(url);
  await page.waitForFunction(() => Number(document.body.dataset.renders || 0) >= 1);
  await page.waitForFunction(() => document.getElementById("live").classList.contains("on"));
  const read = () => page.evaluate(() => {
    const value = (name) => document.querySelector(`[data-test="${name}"] .value`).dataset.value;
    return {
      pageId: window.conveyorDashboard.id,
      renders: window.conveyorDashboard.renders,
      deployments: value("deployments"),
      leadTimeMedianSeconds: value("lead-time"),
      changeFailureRate: value("change-failure-rate"),
      recoveryMedianSeconds: value("recovery-time"),
      deploymentRows: document.querySelectorAll("#deployments tbody tr").length,
      pipelines: [...document.querySelectorAll("#pipelines tbody tr")].map((r) => ({
        name: r.dataset.pipeline,
        health: r.querySelector('[data-test="health"]').textContent,
      })),
    };
  });
  const before = await read();
  console.log(JSON.stringify({ ...before, failedRequests: failed }));
  const lines = createInterface({ input: process.stdin });
  for await (const _ of lines) break;
  lines.close();
  process.stdin.destroy(); // or the open pipe keeps node running
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-test="deployments"] .value').dataset.value) > n,
    Number(before.deployments), { timeout: 20000 });
  console.log(JSON.stringify(await read()));
} finally {
  await browser.close();
}
