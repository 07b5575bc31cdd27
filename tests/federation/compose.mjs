// Compose subgraphs with Apollo's own composition (what rover and GraphOS run) and report the outcome.
//
//   node compose.mjs alipay-miniapp=http://127.0.0.1:8000/graphql checklist=./checklist.graphql
//
// Prints one JSON line {errors: [{code, message}], hints: [{code, message}], supergraphSdl};
// exits 0 when composition succeeded, 1 when it failed, 2 when the subgraphs could not be read.
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

import { loadSubgraph, report, subgraphArgs } from "./subgraphs.mjs";

let subgraphs;
try {
  subgraphs = await Promise.all(subgraphArgs(process.argv.slice(2)).map(loadSubgraph));
} catch (error) {
  process.stderr.write(`compose: ${error.message}\n`);
  process.exit(2);
}

const result = composeServices(subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));
const issues = (list) => (list ?? []).map((item) => ({ code: item.extensions?.code ?? item.definition?.code, message: item.message }));
report({ errors: issues(result.errors), hints: issues(result.hints), supergraphSdl: result.supergraphSdl ?? null });
process.exitCode = result.errors?.length ? 1 : 0;
