// The GraphQL over HTTP working group's server audits (graphql-http's serverAudits), run against one endpoint by
// tests/test_graphql_http_audits.py.
//
//   AUDIT_AUTHORIZATION='Bearer ...' node audit.mjs http://127.0.0.1:PORT/graphql
//
// AUDIT_AUTHORIZATION (optional, from the environment, never argv: it is a secret) is sent as the Authorization
// header of every request. AUDIT_TIMEOUT_MS (default 10000) bounds each audit, its request and its body included.
// Prints one JSON array, in graphql-http's order: [{id, name, status, reason, response}], where status is
// graphql-http's own: 'ok', or for a failed audit 'error' (MUST), 'warn' (SHOULD), 'notice' (MAY). An audit that could
// not run at all (no answer in time, connection refused) is 'error' whatever its level, its reason saying why.
// A failed audit's response is what the server answered: {status, contentType, body (its first 300 characters)};
// it is null otherwise.
import { serverAudits } from "graphql-http";

const BODY_CHARS = 300;
const url = process.argv[2];
if (!url || process.argv.length !== 3) {
  process.stderr.write("audit: usage: node audit.mjs URL   (Authorization from env AUDIT_AUTHORIZATION)\n");
  process.exit(2);
}
const authorization = process.env.AUDIT_AUTHORIZATION || null;
const timeoutMs = Number(process.env.AUDIT_TIMEOUT_MS || 10000);

// Each audit gets its own fetch, which adds the Authorization header, bounds the request by the audit's time limit
// (connection and body included), and keeps what the server answered: graphql-http may have read the body already.
function recordingFetch(answer) {
  return async (input, init = {}) => {
    const headers = new Headers(init.headers);
    if (authorization !== null) headers.set("authorization", authorization);
    const response = await fetch(input, { ...init, headers, signal: AbortSignal.timeout(timeoutMs) });
    const body = await response.clone().text();
    Object.assign(answer, {
      status: response.status,
      contentType: response.headers.get("content-type"),
      body: body.slice(0, BODY_CHARS),
    });
    return response;
  };
}

// Belt and braces: the request's own signal should end a slow audit, this ends it even if something else stalls.
function bounded(promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${timeoutMs} ms`)), timeoutMs + 1000);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function run(index) {
  const answer = {};
  const { id, name, fn } = serverAudits({ url, fetchFn: recordingFetch(answer) })[index];
  try {
    const result = await bounded(fn());
    if (result.status === "ok") return { id, name, status: "ok", reason: null, response: null };
    return { id, name, status: result.status, reason: result.reason, response: "status" in answer ? answer : null };
  } catch (error) {
    // graphql-http throws only when an audit cannot run: that is no pass, whatever the audit's level.
    const why = error.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : error.message;
    const cause = error.cause?.message ? ` (${error.cause.message})` : "";
    return { id, name, status: "error", reason: `audit could not run: ${why}${cause}`, response: null };
  }
}

// serverAudits gives the same audits in the same order on every call: one call per audit, each with its own fetch.
const count = serverAudits({ url }).length;
const results = await Promise.all(Array.from({ length: count }, (_, index) => run(index)));
process.stdout.write(`${JSON.stringify(results)}\n`, () => process.exit(0));
