import * as lib from 'tensorlake-snapshots';
import { workflowTests } from './workflow.shared.mjs';

workflowTests(lib, 'import');
