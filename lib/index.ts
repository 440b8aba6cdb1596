/** The public CDK API of converge. */
export * from './constructs/converge-function';
export * from './constructs/converge-rotation';
export * from './constructs/convergence-monitoring';
export * from './constructs/rotation-schedule-expression';
export * from './stacks/example-stack';
