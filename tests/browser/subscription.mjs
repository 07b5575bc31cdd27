// Runs a subscription in the playground the way a person would (the operation typed into the editor, the run
// button), prints "SUBSCRIBED" once the first state is shown so the pytest side can change the sandbox, then waits
// for the result pane to show the change. The report (one JSON object, the last line on stdout) lists the
// WebSocket frames the page received, console errors and the result text.
//
//   node subscription.mjs --url http://127.0.0.1:PORT/graphql --screenshot PATH --query TEXT --expect TEXT
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    screenshot: { type: "string" },
    query: { type: "string" },
    expect: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    "timeout-ms": { type: "string", default: "30000" },
  },
});
const timeout = Number(args["timeout-ms"]);
const report = {
  stage: "launch", // how far the run got: what a timeout was waiting for
  sockets: [],
  frames: [],
  consoleErrors: [],
  pageErrors: [],
  first: null,
  updated: null,
  error: null,
};

let page = null;
const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  timeout,
});
try {
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.setDefaultTimeout(timeout);
  page.on("console", (message) => {
    if (message.type() === "error") report.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => report.pageErrors.push(String(error)));
  page.on("websocket", (socket) => {
    report.sockets.push(socket.url());
    socket.on("framereceived", (frame) => report.frames.push(typeof frame.payload === "string" ? "text" : "binary"));
  });
  report.stage = "load";
  await page.goto(args.url, { waitUntil: "load" });
  report.stage = "editor";
  await page.waitForFunction(() => {
    const editor = document.querySelector(".graphiql-query-editor .CodeMirror");
    return editor && editor.CodeMirror && editor.CodeMirror.getValue().length > 0;
  });
  report.stage = "schema";
  await page.waitForLoadState("networkidle"); // the schema is in: the editor knows Subscription
  await page.evaluate((query) => {
    document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(query);
  }, args.query);
  report.stage = "first state";
  // The result pane's text once it holds what `expected` matches (functions run in the page: no closures).
  const shown = (expected) =>
    page.waitForFunction((wanted) => {
      const editor = document.querySelector(".result-window .CodeMirror");
      const text = editor && editor.CodeMirror ? editor.CodeMirror.getValue() : "";
      return wanted.some((w) => text.includes(w)) ? text : false;
    }, expected);
  // GraphiQL reads the operation name from the editor a moment after a change: a click before that runs the
  // example's operation name against the new text ("no operation named 'Dashboard'"). Click again then.
  for (let attempt = 0; attempt < 10 && !report.first; attempt++) {
    await page.waitForTimeout(300);
    await page.evaluate(() => document.querySelector(".result-window .CodeMirror").CodeMirror.setValue(""));
    await page.click(".graphiql-execute-button");
    const text = await (await shown(['"miniAppVersionChanged"', "no operation named"])).jsonValue();
    if (text.includes('"miniAppVersionChanged"')) report.first = text;
  }
  process.stdout.write("SUBSCRIBED\n");
  report.stage = "update";
  report.updated = await (await shown([args.expect])).jsonValue();
  report.stage = "done";
} catch (error) {
  report.error = String(error);
} finally {
  if (page) await page.screenshot({ path: args.screenshot }).catch(() => {});
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exitCode = report.error ? 1 : 0;
