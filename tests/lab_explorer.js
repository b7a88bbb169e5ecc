// Drives the explorer notebook in a running JupyterLab with Debian's Chromium (tests/test_lab.py).
//
//   node tests/lab_explorer.js PLAYWRIGHT_CORE_DIR BASE_URL TOKEN SCREENSHOT_DIR CHROMIUM
//
// Opens explore.ipynb, runs all cells from the Run menu, reads the figure's data from the
// plotly graph div (gd.data, what plotly drew from), changes the profile dropdown, facets
// and unfacets, clicks the save button, and prints one JSON object with what it saw at
// each step; the Python test asserts on it. Every wait is for a state in the page (or the
// server's sessions), never a fixed sleep. Exits non-zero (with the error) when a step times out.
"use strict";

const [playwrightDir, baseUrl, token, shots, chromiumPath] = process.argv.slice(2);
const { chromium } = require(playwrightDir);

const STEP_MS = Number(process.env.LAB_STEP_MS || 180000);

// What the figure shows: traces, bars, y tick labels (as the browser renders them:
// textContent, i.e. text, never markup), subplots drawn, and whether it is the same graph
// div as before (a FigureWidget updated in place keeps its div).
function figureState() {
  const gd = document.querySelector(".slimlab-explorer .js-plotly-plot");
  if (!gd || !gd.data) return null;
  const same = gd.__slimlabMark === 1;
  gd.__slimlabMark = 1;
  return {
    traces: gd.data.length,
    bars: gd.data.reduce((n, t) => n + (t.y ? t.y.length : 0), 0),
    names: gd.data.map((t) => t.name),
    values: gd.data.flatMap((t) => Array.from(t.x || [])),
    ticks: Array.from(gd.querySelectorAll(".ytick text")).map((e) => e.textContent),
    subplots: gd.querySelectorAll(".cartesianlayer .subplot").length,
    title: (gd.querySelector(".gtitle") || {}).textContent || "",
    width: gd.getBoundingClientRect().width,
    outputWidth: gd.closest(".jp-OutputArea-output").getBoundingClientRect().width,
    sameDiv: same,
  };
}

// Polls ``check`` (which may be async: waitForFunction does not await a promise) in the page.
async function until(page, check, what) {
  const deadline = Date.now() + STEP_MS;
  while (!(await page.evaluate(check))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${STEP_MS} ms waiting for ${what}`);
    await page.waitForTimeout(250);
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: chromiumPath || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const out = { console: [], pageErrors: [], steps: [], kernelRequests: [] };
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    page.setDefaultTimeout(STEP_MS);
    page.on("console", (m) => { if (m.type() === "error") out.console.push(m.text()); });
    page.on("pageerror", (e) => out.pageErrors.push(String(e)));
    const started = Date.now();
    const step = (name) => out.steps.push([name, Date.now() - started]);
    // Sessions and kernels the page starts, changes or restarts: a failure's first suspect.
    page.on("request", (r) => {
      if (/\/api\/(sessions|kernels)/.test(r.url()) && r.method() !== "GET") {
        out.kernelRequests.push([Date.now() - started, r.method(), r.url().replace(/^.*\/api\//, "").slice(0, 80)]);
      }
    });
    // Open JupyterLab first and the notebook once the launcher lists the Python kernel: a
    // notebook opened before the kernelspecs have loaded (a busy host) makes JupyterLab start
    // a kernel and also ask which one to start, and answering starts a second one.
    await page.goto(`${baseUrl}/lab?token=${token}`);
    await page.locator(".jp-LauncherCard", { hasText: "Python 3" }).first().waitFor();
    step("opening");
    await page.locator(".jp-DirListing-item", { hasText: "explore.ipynb" }).dblclick();
    await page.locator(".jp-NotebookPanel").first().waitFor();
    await until(page, async () => {
      const indicator = document.querySelector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator");
      const sessions = await (await fetch("/api/sessions")).json();
      return sessions.some((s) => s.path.endsWith("explore.ipynb") && s.kernel && s.kernel.execution_state === "idle")
        && indicator !== null && indicator.getAttribute("data-status") === "idle";
    }, "the notebook's kernel to be up and idle");
    out.kernelDialogs = await page.locator(".jp-Dialog").count();
    step("kernel idle");
    out.openMs = Date.now() - started;

    await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Run$/ }).click();
    await page.locator(".lm-Menu-itemLabel", { hasText: /^Run All Cells$/ }).click();
    step("run all clicked");
    await page.waitForFunction(() => {
      const gd = document.querySelector(".slimlab-explorer .js-plotly-plot");
      return gd && gd.data && gd.querySelector(".main-svg .ytick");
    });
    out.ranMs = Date.now() - started;
    out.before = await page.evaluate(figureState);
    out.profileOptions = await page.locator(".slimlab-filter-profile select option").allTextContents();
    out.tableBefore = await page.locator(".slimlab-table").innerText();

    // A filter: only the "stripped" profile. The figure keeps its div and shows fewer bars.
    await page.locator(".slimlab-filter-profile select").selectOption({ label: "stripped" });
    await page.waitForFunction((n) => {
      const gd = document.querySelector(".slimlab-explorer .js-plotly-plot");
      return gd && gd.data.reduce((k, t) => k + (t.y ? t.y.length : 0), 0) !== n;
    }, out.before.bars);
    out.filtered = await page.evaluate(figureState);
    out.tableFiltered = await page.locator(".slimlab-table").innerText();

    // Facet by workload: one subplot each; back to none: one subplot, the old axes gone.
    await page.locator(".slimlab-facet select").selectOption({ label: "Workload" });
    await page.waitForFunction(() => document.querySelectorAll(
      ".slimlab-explorer .js-plotly-plot .cartesianlayer .subplot").length > 1);
    out.faceted = await page.evaluate(figureState);
    await page.locator(".slimlab-facet select").selectOption({ label: "none" });
    await page.waitForFunction(() => document.querySelectorAll(
      ".slimlab-explorer .js-plotly-plot .cartesianlayer .subplot").length === 1);
    out.unfaceted = await page.evaluate(figureState);

    await page.locator(".slimlab-save button, button.slimlab-save").first().click();
    await page.waitForFunction(() => /Saved|Not saved/.test(
      (document.querySelector(".slimlab-message") || {}).textContent || ""));
    out.saveMessage = await page.locator(".slimlab-message").innerText();

    out.xss = await page.evaluate(() => typeof window.__xss);
    out.injectedImages = await page.evaluate(() => document.querySelectorAll('img[src="x"]').length);
    out.totalMs = Date.now() - started;
    if (shots) await page.screenshot({ path: `${shots}/lab-explorer.png` });
  } catch (err) {
    // What the page showed and said when a step failed: the test prints it.
    if (shots) await page.screenshot({ path: `${shots}/lab-explorer-failed.png` }).catch(() => {});
    process.stderr.write(`${JSON.stringify(out)}\n`);
    throw err;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
