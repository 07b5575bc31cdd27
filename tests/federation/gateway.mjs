// A real Apollo Gateway over running subgraphs, composed at start-up from their `_service { sdl }`.
//
//   SUBGRAPH_AUTHORIZATION='Bearer KEY' node gateway.mjs alipay-miniapp=http://127.0.0.1:8000/graphql checklist=http://...
//
// Prints {"url": "http://127.0.0.1:PORT/"} once it listens. Forwards the caller's Authorization,
// X-Alipay-App-Auth-Token and X-Request-Id to every subgraph, as a production router would be configured to.
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

import { introspectionHeaders, report, subgraphArgs } from "./subgraphs.mjs";

const FORWARDED = ["authorization", "x-alipay-app-auth-token", "x-request-id"];

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    // context is {} while the gateway loads schemas; then introspectionHeaders apply instead.
    for (const name of FORWARDED) {
      const value = context?.headers?.[name];
      if (typeof value === "string") request.http.headers.set(name, value);
    }
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({
    subgraphs: subgraphArgs(process.argv.slice(2)).map(({ name, where }) => ({ name, url: where })),
    introspectionHeaders: introspectionHeaders(),
  }),
  buildService: ({ url }) => new ForwardingDataSource({ url }),
});

const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: 0 },
  context: async ({ req }) => ({ headers: req.headers }),
});
report({ url });
