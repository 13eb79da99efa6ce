// Node entry (require and import both end here, so there is one copy of every class).
// The glue loads the shared .wasm synchronously with fs, so the exports are ready at once.
'use strict';
const glue = require('./glue.cjs');
const { nodeFetch } = require('./transport.cjs');
// createError is the wasm module's factory, not part of the API.
const { createError, ...errors } = require('./errors.cjs');

// In Node, requests go through our HTTP/1.1 transport over node:net (see transport.cjs). Bun and Deno also
// load this entry, but their own fetch is native and fast, so they keep it.
if (!process.versions.bun && typeof Deno === 'undefined') glue.__setDefaultFetch(nodeFetch);

const { __setDefaultFetch, ...api } = glue;
module.exports = { ...api, ...errors };
