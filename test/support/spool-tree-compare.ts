// The tree comparison lives with the sandbox, where the demo uses it too.
export { describeTree, treeDiff } from '../../src/sandbox/tree-compare.js';
