export * from './journal.js';
export * from './state.js';
export * from './incident.js';
export * from './report.js';
