// Compose subgraphs with The Guild's composition (@theguild/federation-composition: what GraphQL Hive's registry
// and Mesh Compose run) and report the outcome: compose.mjs's command line and output, with another composer.
//
//   node compose-hive.mjs alipay-miniapp=http://127.0.0.1:8000/graphql checklist=./checklist.graphql
//
// Prints one JSON line {errors: [{code, message}], hints: [], supergraphSdl} (this composer gives no hints);
// exits 0 when composition succeeded, 1 when it failed, 2 when the subgraphs could not be read.
import { composeServices } from "@theguild/federation-composition";
import { parse } from "graphql";

import { loadSubgraph, report, subgraphArgs } from "./subgraphs.mjs";

let subgraphs;
try {
  subgraphs = await Promise.all(subgraphArgs(process.argv.slice(2)).map(loadSubgraph));
} catch (error) {
  process.stderr.write(`compose-hive: ${error.message}\n`);
  process.exit(2);
}

const result = composeServices(subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));
const errors = (result.errors ?? []).map((error) => ({ code: error.extensions?.code, message: error.message }));
report({ errors, hints: [], supergraphSdl: result.supergraphSdl ?? null });
process.exitCode = errors.length ? 1 : 0;
