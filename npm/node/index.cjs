// Node entry (require and import both end here, so there is one copy of every class).
// wasm-bindgen's nodejs glue loads the shared .wasm synchronously with fs, so the exports are
// ready at once.
'use strict';
const glue = require('../tensorlake_snapshots.js');
const { nodeFetch, transport } = require('./transport.cjs');
// createError is the wasm module's factory, not part of the API.
const { createError, ...errors } = require('./errors.cjs');

// In Node, requests go through node:http / node:https with keep-alive agents (see
// transport.cjs). Bun and Deno also load this entry, but their own fetch is native and fast, so
// they keep it; a client given `httpAgent` goes through node:http in all three.
const native = process.versions.bun !== undefined || typeof Deno !== 'undefined';
glue.__setDefaultFetch(native ? undefined : nodeFetch, transport);

const { __setDefaultFetch, ...api } = glue;
module.exports = { ...api, ...errors };
