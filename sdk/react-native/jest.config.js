// React Native's own jest preset (its module mocks and environment), with the native module
// provided by the Node addon over the real Rust core (test/native-module.js) instead of a
// device's. The preset is spread rather than named so that the addon is installed before the
// preset's setup loads React Native.
const preset = require('@react-native/jest-preset');

module.exports = {
  ...preset,
  rootDir: __dirname,
  setupFiles: [require.resolve('./test/native-module.js'), ...preset.setupFiles],
  testMatch: ['<rootDir>/test/**/*.test.tsx'],
  // PBKDF2 (600 000 iterations) per secret and real media over a real router.
  testTimeout: 60000,
};
