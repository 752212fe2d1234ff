/** The simulated cluster's entry points (see types.ts for the API). */
export { startSimulator, SimStartError } from './cluster.js';
export { listScenarios, loadScenario, ScenarioError } from './scenario.js';
export * from './types.js';
