// Apollo Client 4 with its persisted-query link, run against the service by tests/test_persisted_apollo.py.
//
//   node client.mjs '<plan as JSON>'
//
// plan: {url, link: "sha256" | "manifest" | "none", manifest?: path, get?: bool, headers?: {...},
//        calls: [{file: "operations/x.graphql" | document: "query ...", variables?: {...}}], revalidate?: bool}
// Every HTTP exchange Apollo's HttpLink makes goes through a logging fetch (Node 20's own); the script prints one
// JSON object: {exchanges: [{method, url, body, status, headers, text}], results: [{data} | {error}], revalidation}.
// With revalidate, the last GET is fetched again with If-None-Match set to its ETag, as a browser cache would.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { generatePersistedQueryIdsFromManifest } from "@apollo/persisted-query-lists";

const plan = JSON.parse(process.argv[2]);
const exchanges = [];

async function loggingFetch(input, init = {}) {
  const response = await fetch(input, init);
  exchanges.push({
    method: init.method ?? "GET",
    url: String(input),
    body: typeof init.body === "string" ? JSON.parse(init.body) : null,
    status: response.status,
    headers: Object.fromEntries(response.headers),
    text: await response.clone().text(),
  });
  return response;
}

function persistedLink() {
  const options = { useGETForHashedQueries: Boolean(plan.get) };
  if (plan.link === "sha256") {
    return createPersistedQueryLink({ ...options, sha256: (text) => createHash("sha256").update(text).digest("hex") });
  }
  if (plan.link === "manifest") {
    // Apollo's recommended client side of a safelist: the operation's id is looked up in the manifest by name.
    const ids = generatePersistedQueryIdsFromManifest({
      loadManifest: () => JSON.parse(readFileSync(plan.manifest, "utf8")),
    });
    return createPersistedQueryLink({ ...options, ...ids });
  }
  return null;
}

const http = new HttpLink({ uri: plan.url, fetch: loggingFetch, headers: plan.headers ?? {} });
const link = persistedLink();
const client = new ApolloClient({ cache: new InMemoryCache(), link: link ? ApolloLink.from([link, http]) : http });

function describe(error) {
  return {
    name: error.name,
    message: error.message,
    statusCode: error.statusCode ?? null,
    errors: error.errors ?? null,
    bodyText: error.bodyText ?? null,
  };
}

const results = [];
for (const call of plan.calls) {
  const query = gql(call.file ? readFileSync(call.file, "utf8") : call.document);
  try {
    // network-only: every call reaches the service (Apollo's own cache would answer the repeats otherwise).
    const { data } = await client.query({ query, variables: call.variables ?? {}, fetchPolicy: "network-only" });
    results.push({ data });
  } catch (error) {
    results.push({ error: describe(error) });
  }
}

let revalidation = null;
if (plan.revalidate) {
  const last = exchanges.filter((exchange) => exchange.method === "GET").at(-1);
  const response = await fetch(last.url, { headers: { ...(plan.headers ?? {}), "If-None-Match": last.headers.etag } });
  revalidation = {
    url: last.url,
    status: response.status,
    headers: Object.fromEntries(response.headers),
    text: await response.text(),
  };
}

process.stdout.write(JSON.stringify({ exchanges, results, revalidation }) + "\n");
