/**
 * globalSetup of the jest project pg17 (jest.config.js): the shared ./global-setup.ts under a path of
 * its own, because jest runs each distinct globalSetup path only once for all projects.
 */
export { default } from './global-setup';
