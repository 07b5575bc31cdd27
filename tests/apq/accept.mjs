// Apollo Client 4's HttpLink with its default headers, run against the service by tests/test_http_spec.py.
//
//   node accept.mjs URL
//
// Runs two queries through a plain HttpLink (its default Accept comes from `fallbackHttpConfig`:
// "application/graphql-response+json,application/json;q=0.9"): one the service answers, one it refuses as invalid.
// A fetch wrapper records what went out and came back; the script prints one JSON object:
// {exchanges: [{accept, status, contentType, text}], results: [{data} | {error}]}.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";

const url = process.argv[2];
const exchanges = [];

async function recordingFetch(input, init = {}) {
  const response = await fetch(input, init);
  exchanges.push({
    accept: new Headers(init.headers).get("accept"),
    status: response.status,
    contentType: response.headers.get("content-type"),
    text: await response.clone().text(),
  });
  return response;
}

const client = new ApolloClient({ cache: new InMemoryCache(), link: new HttpLink({ uri: url, fetch: recordingFetch }) });

const queries = [
  gql`
    query AcceptStatus($v: String!) {
      miniAppVersion(appVersion: $v) {
        appVersion
        status
      }
    }
  `,
  gql`
    query AcceptInvalid {
      noSuchField
    }
  `,
];

const results = [];
for (const query of queries) {
  try {
    const { data } = await client.query({ query, variables: { v: "0.0.1" }, fetchPolicy: "network-only" });
    results.push({ data });
  } catch (error) {
    results.push({ error: { name: error.name, message: error.message, statusCode: error.statusCode ?? null } });
  }
}

process.stdout.write(JSON.stringify({ exchanges, results }) + "\n");
