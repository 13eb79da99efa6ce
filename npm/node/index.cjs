// Node entry (require and import both end here, so there is one copy of every class).
// The glue loads the shared .wasm synchronously with fs, so the exports are ready at once.
'use strict';
const glue = require('./glue.cjs');
// createError is the wasm module's factory, not part of the API.
const { createError, ...errors } = require('./errors.cjs');
module.exports = { ...glue, ...errors };
