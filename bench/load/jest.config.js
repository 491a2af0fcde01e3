// `just load`: the integration project's setup (PostgreSQL, seeded registry), rooted in bench/load.
const root = require('../../jest.config.js');
const integration = root.projects.find((p) => p.displayName === 'integration');
module.exports = {
  ...integration,
  displayName: 'load',
  roots: ['<rootDir>/bench/load'],
  testMatch: ['**/*.load.ts'],
};
