// Opens the playground in Debian's headless Chromium the way a person would, runs the operation in the
// editor with the run button, and prints what happened as one JSON object on stdout for the pytest side
// (tests/test_playground.py) to judge: every request URL, failures, console errors, the result text.
//
//   node playground.mjs --url http://127.0.0.1:PORT/graphql --screenshot PATH [--api-key KEY]
//
// playwright-core drives the system browser (executablePath); it never downloads one.
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    screenshot: { type: "string" },
    "api-key": { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    "timeout-ms": { type: "string", default: "30000" },
  },
});
if (!args.url || !args.screenshot) {
  console.error("usage: node playground.mjs --url URL --screenshot PATH [--api-key KEY]");
  process.exit(2);
}
const timeout = Number(args["timeout-ms"]);

const report = {
  requests: [], // {method, url, status, authorization} for every request the page made
  failed: [], // requests that got no answer at all (refused, blocked, aborted)
  consoleErrors: [],
  pageErrors: [],
  title: null,
  placeholder: null,
  result: null,
  error: null, // why the run stopped early, if it did (the report and a screenshot are still written)
};

let page = null;
const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  timeout,
});
try {
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.setDefaultTimeout(timeout);
  page.on("request", (request) => {
    const headers = request.headers();
    report.requests.push({
      method: request.method(),
      url: request.url(),
      status: null,
      authorization: headers.authorization ?? null,
    });
  });
  page.on("response", (response) => {
    const entry = report.requests.findLast((r) => r.url === response.url() && r.status === null);
    if (entry) entry.status = response.status();
  });
  page.on("requestfailed", (request) => {
    report.failed.push({ url: request.url(), error: request.failure()?.errorText ?? "unknown" });
  });
  page.on("console", (message) => {
    if (message.type() === "error") report.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => report.pageErrors.push(String(error)));

  await page.goto(args.url, { waitUntil: "load" });
  report.title = await page.title();
  // GraphiQL has rendered its editors once the query editor holds the example operation.
  await page.waitForFunction(() => {
    const editor = document.querySelector(".graphiql-query-editor .CodeMirror");
    return editor && editor.CodeMirror && editor.CodeMirror.getValue().includes("miniApp {");
  });
  report.placeholder = await page.evaluate(() => document.querySelector("#api-key").placeholder);

  if (args["api-key"]) {
    await page.fill("#api-key", args["api-key"]);
    await page.press("#api-key", "Tab"); // "change" fires on leaving the field: the fetcher now sends the key
  }
  await page.waitForLoadState("networkidle"); // schema introspection done: the explorer and docs are filled
  await page.click(".graphiql-execute-button");
  const resultHandle = await page.waitForFunction(() => {
    const editor = document.querySelector(".result-window .CodeMirror");
    const text = editor && editor.CodeMirror ? editor.CodeMirror.getValue() : "";
    return /"(data|errors)"/.test(text) ? text : false;
  });
  report.result = await resultHandle.jsonValue();
  await page.waitForLoadState("networkidle");
} catch (error) {
  report.error = String(error);
} finally {
  if (page) await page.screenshot({ path: args.screenshot }).catch(() => {});
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exitCode = report.error ? 1 : 0;
