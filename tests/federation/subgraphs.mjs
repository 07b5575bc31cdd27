// Shared by compose.mjs and gateway.mjs: read a subgraph's SDL from a running instance or from a file.
import { readFile } from "node:fs/promises";

/**
 * Parse `name=http://host/graphql` or `name=path/to/schema.graphql` arguments.
 * @param {string[]} args
 * @returns {{ name: string, where: string }[]}
 */
export function subgraphArgs(args) {
  if (args.length === 0) throw new Error("usage: give subgraphs as NAME=URL or NAME=FILE");
  return args.map((arg) => {
    const at = arg.indexOf("=");
    if (at < 1) throw new Error(`expected NAME=URL or NAME=FILE, got ${JSON.stringify(arg)}`);
    return { name: arg.slice(0, at), where: arg.slice(at + 1) };
  });
}

/** Headers for reading a subgraph's own schema: our service is closed without an API key. */
export function introspectionHeaders() {
  const authorization = process.env.SUBGRAPH_AUTHORIZATION;
  return authorization ? { authorization } : {};
}

/**
 * The SDL a running subgraph publishes as `_service { sdl }` (what rover and the gateway read).
 * @param {string} url
 * @returns {Promise<string>}
 */
export async function fetchSdl(url) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...introspectionHeaders() },
    body: JSON.stringify({ query: "{ _service { sdl } }" }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text);
  if (body.errors?.length || typeof body.data?._service?.sdl !== "string") {
    throw new Error(`${url} gave no _service.sdl: ${text.slice(0, 300)}`);
  }
  return body.data._service.sdl;
}

/**
 * @param {{ name: string, where: string }} subgraph
 * @returns {Promise<{ name: string, url: string, sdl: string }>}
 */
export async function loadSubgraph({ name, where }) {
  if (/^https?:\/\//.test(where)) return { name, url: where, sdl: await fetchSdl(where) };
  // A file is a schema under test, not a deployed service: give it a URL that can never be reached.
  return { name, url: `http://${name}.invalid/graphql`, sdl: await readFile(where, "utf8") };
}

/** One JSON line on stdout: how the Python side reads what a script has to say. */
export function report(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}
