// Installs the native module the way a React Native app finds a TurboModule: through
// global.__turboModuleProxy, which TurboModuleRegistry reads when it is first loaded (so this
// runs before React Native's own jest setup). The module is crates/umbra-node's addon, i.e. the
// real Rust core; its path comes from UMBRA_NODE_ADDON (scripts/test.d/80-react-native.sh).
const path = process.env.UMBRA_NODE_ADDON;
if (!path) {
  throw new Error('UMBRA_NODE_ADDON is not set: run the tests with scripts/test.d/80-react-native.sh');
}
const addon = {exports: {}};
// process.dlopen, not require: jest's module registry does not load native addons.
process.dlopen(addon, path);
global.__turboModuleProxy = name => (name === 'Umbra' ? addon.exports : null);
