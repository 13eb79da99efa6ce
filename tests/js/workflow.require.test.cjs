// The same workflow through require(): the package's CommonJS entry.
const lib = require('tensorlake-snapshots');

import('./workflow.shared.mjs').then(({ workflowTests }) => workflowTests(lib, 'require'));
