// The addon the tests inject is exactly the spec's module: every method and event emitter that
// src/NativeUmbra.ts declares is there, and nothing else is (so the components cannot come to
// depend on something the Kotlin and Swift modules do not have).
import {readFileSync} from 'fs';
import {join} from 'path';

function specMembers(): string[] {
  const src = readFileSync(join(__dirname, '../src/NativeUmbra.ts'), 'utf8');
  const body = /export interface Spec extends TurboModule \{([\s\S]*?)\n\}/.exec(src)?.[1];
  if (!body) {
    throw new Error('no Spec interface in NativeUmbra.ts');
  }
  const members = [...body.matchAll(/^\s+(?:readonly\s+)?(\w+)\s*[(:]/gm)].map(m => m[1]);
  return members.sort();
}

test('the native module has exactly the members of the Spec', () => {
  const module = (globalThis as any).__turboModuleProxy('Umbra');
  const members = specMembers();
  expect(members.length).toBeGreaterThan(15);
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
    }),
  ).toThrow(expect.objectContaining({code: 'InvalidParameter'}));
  const s = module.createSession('key', 'id', 'http://127.0.0.1:1');
  expect(() => module.setEncryptionSecret(s, 'x'.repeat(257))).toThrow(
    expect.objectContaining({code: 'InvalidEncryptionSecret'}),
  );
  expect(() => module.createSubscriber(s, 'no-such-stream')).toThrow(expect.objectContaining({code: 'StreamNotFound'}));
  module.destroySession(s);
  expect(() => module.destroySession(s)).toThrow(expect.objectContaining({code: 'InvalidParameter'}));
});
