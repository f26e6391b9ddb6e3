// The spec is what React Native's codegen accepts (parsed here with @react-native/codegen, the
// parser the app build runs), and the addon the tests inject is exactly that module: every
// method and event emitter the spec declares, and nothing else (so the components cannot come to
// depend on something the Kotlin and Swift modules do not have).
import {join} from 'path';

type Schema = {
  moduleName: string;
  spec: {methods: {name: string}[]; eventEmitters: {name: string}[]};
};

function parseSpec(): Schema {
  const {TypeScriptParser} = require('@react-native/codegen/lib/parsers/typescript/parser');
  const schema = new TypeScriptParser().parseFile(join(__dirname, '../src/NativeUmbra.ts'));
  return schema.modules.NativeUmbra;
}

test('codegen accepts the spec: module Umbra, its methods and the onEvent emitter', () => {
  const m = parseSpec();
  expect(m.moduleName).toBe('Umbra');
  expect(m.spec.eventEmitters.map(e => e.name)).toEqual(['onEvent']);
  expect(m.spec.methods.length).toBeGreaterThan(15);
});

test('the native module has exactly the members of the spec', () => {
  const module = (globalThis as any).__turboModuleProxy('Umbra');
  const m = parseSpec();
  const members = [...m.spec.methods.map(x => x.name), ...m.spec.eventEmitters.map(x => x.name)].sort();
  const functions = Object.keys(module)
    .filter(k => typeof module[k] === 'function' && !/^[A-Z]/.test(k))
    .sort();
  expect(functions).toEqual(members);
});

test('onEvent returns a subscription that can be removed', () => {
  const module = (globalThis as any).__turboModuleProxy('Umbra');
  const sub = module.onEvent(() => {});
  expect(typeof sub.remove).toBe('function');
  sub.remove();
  sub.remove();
});

test('a bad handle or argument is an Error with the binding code', () => {
  const module = (globalThis as any).__turboModuleProxy('Umbra');
  expect(() => module.connect('session-nope', 'token')).toThrow(expect.objectContaining({code: 'InvalidParameter'}));
  expect(() => module.createSession('', 'id', 'http://127.0.0.1:1')).toThrow(
    expect.objectContaining({code: 'InvalidParameter'}),
  );
  expect(() =>
    module.createPublisher({
      name: '', videoSource: 'hologram', videoWidth: 320, videoHeight: 240, videoFps: 15,
      audioSource: 'none', toneHz: 440, videoBitrateKbps: 300, publishAudio: true, publishVideo: true,
      videoCodec: 'vp8',
    }),
  ).toThrow(expect.objectContaining({code: 'InvalidParameter'}));
  expect(() =>
    module.createPublisher({
      name: '', videoSource: 'none', videoWidth: 320, videoHeight: 240, videoFps: 15,
      audioSource: 'none', toneHz: 440, videoBitrateKbps: 300, publishAudio: true, publishVideo: true,
      videoCodec: 'theora',
    }),
  ).toThrow(expect.objectContaining({code: 'InvalidParameter'}));
  const s = module.createSession('key', 'id', 'http://127.0.0.1:1');
  expect(() => module.setEncryptionSecret(s, 'x'.repeat(257))).toThrow(
    expect.objectContaining({code: 'InvalidEncryptionSecret'}),
  );
  expect(() => module.createSubscriber(s, 'no-such-stream')).toThrow(expect.objectContaining({code: 'StreamNotFound'}));
  expect(() => module.setPreferredResolution('subscriber-nope', {width: 160, height: 90})).toThrow(
    expect.objectContaining({code: 'InvalidParameter'}),
  );
  module.destroySession(s);
  expect(() => module.destroySession(s)).toThrow(expect.objectContaining({code: 'InvalidParameter'}));
});
