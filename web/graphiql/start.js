// Starts the playground on the page that src/api/graphiql.rs serves, with the copies of React,
// ReactDOM and GraphiQL it serves beside it (loaded before this file, as globals). A file of its
// own rather than an inline script, so the page's Content-Security-Policy can allow this
// origin's scripts and nothing else.
//
// Queries and mutations go over HTTP, subscriptions over graphql-transport-ws. GraphiQL's
// fetcher sends the Headers tab with every HTTP request and, for a subscription, merges it into
// the `connection_init` payload: `{"Authorization": "Bearer <token>"}` there serves both.
//
// The schema (documentation, completion, validation) is built from the server's SDL rather
// than from GraphiQL's introspection query, whose type references nest deeper than the
// server's query depth limit allows. Should the SDL not load, GraphiQL introspects as usual.
"use strict";
(() => {
  const root = document.getElementById("graphiql");
  if (!root) return;
  const { endpoint, subscriptionEndpoint, schema: sdlPath } = root.dataset;
  const url = new URL(endpoint ?? "/graphql", location.href);
  const subscriptionUrl = new URL(subscriptionEndpoint ?? "/graphql", location.href);
  subscriptionUrl.protocol = subscriptionUrl.protocol === "https:" ? "wss:" : "ws:";
  const fetcher = GraphiQL.createFetcher({ url: url.href, subscriptionUrl: subscriptionUrl.href });

  const render = (schema) =>
    ReactDOM.createRoot(root).render(
      React.createElement(GraphiQL, { fetcher, schema, defaultEditorToolsVisibility: true }),
    );
  fetch(new URL(sdlPath ?? "/schema.graphql", location.href))
    .then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.text();
    })
    .then((sdl) => GraphiQL.GraphQL.buildSchema(sdl))
    .then(render, (error) => {
      console.warn("GraphiQL: the schema's SDL did not load, introspecting instead:", error);
      render(undefined);
    });
})();
