// The second subgraph: a small release-checklist service that extends MiniAppVersion by its key alone.
//
//   node checklist.mjs        prints {"url": "http://127.0.0.1:PORT/"} once it listens (port 0: a free one)
import { readFileSync } from "node:fs";

import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginInlineTraceDisabled } from "@apollo/server/plugin/disabled";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";

import { report } from "./subgraphs.mjs";

// The SDL lives in its own file so tests can compose copies of it with deliberate mistakes.
const typeDefs = parse(readFileSync(new URL("./checklist.graphql", import.meta.url), "utf8"));

/**
 * What to do before a version goes live on a client: derived from the entity key only.
 * @param {{ appVersion: string, bundleId: string }} key
 * @returns {string[]}
 */
export function releaseChecklist({ appVersion, bundleId }) {
  return [
    `submit ${appVersion} for review on ${bundleId}`,
    `grey-release ${appVersion} to 10% on ${bundleId}`,
    `release ${appVersion} on ${bundleId}`,
  ];
}

const resolvers = {
  Query: {
    releaseTrain: (_, { appVersions, bundleIds }) =>
      appVersions.flatMap((appVersion) => bundleIds.map((bundleId) => ({ appVersion, bundleId }))),
  },
  MiniAppVersion: {
    __resolveReference: ({ appVersion, bundleId }) => ({ appVersion, bundleId }),
    releaseChecklist,
  },
};

const server = new ApolloServer({
  schema: buildSubgraphSchema({ typeDefs, resolvers }),
  plugins: [ApolloServerPluginInlineTraceDisabled()], // traces are for Apollo's cloud, and it would log a line
});
const { url } = await startStandaloneServer(server, { listen: { host: "127.0.0.1", port: 0 } });
report({ url });
