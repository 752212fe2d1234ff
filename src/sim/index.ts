/** The simulated cluster's entry points (see types.ts for the API). */
export { startSimulator } from './start.js';
export { SimStartError } from './start-error.js';
export { listScenarios, loadScenario, ScenarioError } from './scenario.js';
export * from './types.js';
