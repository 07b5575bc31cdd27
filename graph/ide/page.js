// The playground: GraphiQL with the explorer plugin, opened on an example operation, and an API key box
// whose key is sent as `Authorization: Bearer <key>` (headers typed in GraphiQL's Headers tab win over it).
// The key stays in this page's memory: never in storage, never in the URL. Subscriptions go over a WebSocket to
// the same /graphql (graphql-transport-ws, through the graphql-ws client GraphiQL's build carries); the headers
// travel in its connection_init payload, where the service reads the key and the merchant token.
(function () {
  "use strict";
  var example = JSON.parse(document.getElementById("graphiql-example").textContent);
  var endpoint = window.location.href.split(/[?#]/)[0];
  var socketEndpoint = endpoint.replace(/^http/, "ws"); // http → ws, https → wss
  var explorer = GraphiQLPluginExplorer.explorerPlugin();
  var keyInput = document.getElementById("api-key");
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));

  function fetcherFor(apiKey) {
    var base = GraphiQL.createFetcher({ url: endpoint, subscriptionUrl: socketEndpoint });
    return function (params, options) {
      var headers = apiKey ? { Authorization: "Bearer " + apiKey } : {};
      Object.assign(headers, options && options.headers);
      return base(params, Object.assign({}, options, { headers: headers }));
    };
  }

  function render(apiKey) {
    // A new fetcher makes GraphiQL fetch the schema again, now with the key.
    root.render(
      React.createElement(GraphiQL, {
        fetcher: fetcherFor(apiKey),
        defaultQuery: example,
        plugins: [explorer],
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: false,
        inputValueDeprecation: true,
      })
    );
  }

  keyInput.addEventListener("change", function () {
    render(keyInput.value.trim());
  });
  render(keyInput.value.trim());
})();
