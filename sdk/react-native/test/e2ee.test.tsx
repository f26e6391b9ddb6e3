// The components against a real `umbra serve`, with the native module backed by the real Rust
// core (crates/umbra-node): test-pattern video published by one OTSession is decrypted and
// decoded by another; changing the subscriber's encryptionSecret prop gives one mismatch, and
// changing it back a match; missing and invalid secrets give the documented errors.
import React from 'react';
import TestRenderer, {type ReactTestRenderer} from 'react-test-renderer';

import {OTPublisher, OTSession, OTSubscriber, UmbraVideoView, getSubscriberStats, sdkVersion} from '../src';
import {createE2eeSession, server, sleep, token, waitFor} from './harness';

// Events come from the core's threads on their own schedule, as on a device: render outside act().
(globalThis as {IS_REACT_ACT_ENVIRONMENT?: boolean}).IS_REACT_ACT_ENVIRONMENT = false;

const SECRET = 'correct horse battery staple';
const OTHER_SECRET = 'a different secret, same length?';

type Logged = {from: string; type: string; code?: string; payload: any};

class Recorder {
  log: Logged[] = [];
  handlers(from: string): Record<string, (e?: any) => void> {
    const types = [
      'sessionConnected', 'sessionDisconnected', 'streamCreated', 'streamDestroyed', 'error',
      'connected', 'disconnected', 'encryptionSecretMismatch', 'encryptionSecretMatch',
    ];
    return Object.fromEntries(
      types.map(type => [type, (e?: any) => this.log.push({from, type, code: e?.code, payload: e})]),
    );
  }
  of(from: string, type?: string): Logged[] {
    return this.log.filter(l => l.from === from && (type === undefined || l.type === type));
  }
  errors(from: string): string[] {
    return this.of(from, 'error').map(l => l.code ?? '?');
  }
}

const mounted: ReactTestRenderer[] = [];
function render(el: React.ReactElement): ReactTestRenderer {
  const r = TestRenderer.create(el);
  mounted.push(r);
  return r;
}

afterAll(async () => {
  for (const r of mounted) {
    r.unmount();
  }
  // Let the sessions' goodbyes reach the server before the process ends.
  await sleep(200);
});

let sessionId: string;
const rec = new Recorder();
let subscriberView: ReactTestRenderer;
let subscriberId: string;
let publisherView: ReactTestRenderer;
let publisherToken: string;

function subscriberSession(secret: string | undefined) {
  return (
    <OTSession
      apiKey={server.apiKey}
      sessionId={sessionId}
      token={subscriberToken}
      encryptionSecret={secret}
      options={{serverUrl: server.url}}
      eventHandlers={rec.handlers('subSession')}>
      <OTSubscriber eventHandlers={rec.handlers('subscriber')} />
    </OTSession>
  );
}
let subscriberToken: string;

function publisherSession(withPublisher: boolean) {
  return (
    <OTSession
      apiKey={server.apiKey}
      sessionId={sessionId}
      token={publisherToken}
      encryptionSecret={SECRET}
      options={{serverUrl: server.url}}
      eventHandlers={rec.handlers('pubSession')}>
      {withPublisher ? (
        <OTPublisher
          properties={{
            name: 'rn-publisher',
            videoSource: 'testPattern',
            audioSource: 'none',
            resolution: {width: 320, height: 240},
            frameRate: 15,
          }}
          eventHandlers={rec.handlers('publisher')}
        />
      ) : null}
    </OTSession>
  );
}

const framesRendered = () => getSubscriberStats(subscriberId).framesRendered;

beforeAll(async () => {
  sessionId = await createE2eeSession();
  subscriberToken = token(sessionId);
});

test('the native module is the Rust core', () => {
  expect(sdkVersion()).toMatch(/^\d+\.\d+\.\d+/);
});

test('a secret-protected publisher is subscribed, decrypted and decoded', async () => {
  publisherToken = token(sessionId);
  publisherView = render(publisherSession(true));
  const created = await waitFor('the publisher stream', () => rec.of('publisher', 'streamCreated')[0]);
  expect(created.payload.stream.e2ee).toBe(true);

  subscriberView = render(subscriberSession(SECRET));
  const connected = await waitFor('the subscriber to connect', () => rec.of('subscriber', 'connected')[0]);
  subscriberId = connected.payload.subscriberId;
  expect(connected.payload.streamId).toBe(created.payload.streamId);
  expect(rec.of('subSession', 'streamCreated').map(l => l.payload.streamId)).toEqual([created.payload.streamId]);

  const stats = await waitFor('10 decoded test-pattern pictures', () => {
    const s = getSubscriberStats(subscriberId);
    return s.framesRendered >= 10 && s.lastTestPatternFrame > 0 && s;
  });
  expect(stats.lastFrameWidth).toBe(320);
  expect(stats.lastFrameHeight).toBe(240);
  expect(stats.decryptFailures).toBe(0);
  // Pictures keep coming, in order: the frame number read back from the picture grows.
  const before = stats.lastTestPatternFrame;
  await waitFor('later pictures', () => getSubscriberStats(subscriberId).lastTestPatternFrame > before + 5);

  // The rendered tree: the subscriber's View for the stream, with a video view on its handle.
  const view = subscriberView.root.findByProps({testID: `umbra-subscriber-${created.payload.streamId}`});
  expect(view.findByType(UmbraVideoView as any).props.subscriberId).toBe(subscriberId);

  expect(rec.errors('pubSession')).toEqual([]);
  expect(rec.errors('publisher')).toEqual([]);
  expect(rec.errors('subSession')).toEqual([]);
  expect(rec.errors('subscriber')).toEqual([]);
});

test('changing the encryptionSecret prop gives one mismatch, changing it back a match', async () => {
  subscriberView.update(subscriberSession(OTHER_SECRET));
  await waitFor('encryptionSecretMismatch', () => rec.of('subscriber', 'encryptionSecretMismatch')[0]);
  expect(rec.errors('subscriber')).toEqual(['EncryptionSecretMismatch']);
  const error = rec.of('subscriber', 'error')[0].payload;
  expect(error.codeValue).toBe(1590);
  expect(error.subscriberId).toBe(subscriberId);

  // Nothing decodes under the wrong secret, and the mismatch is reported once, not per frame.
  const during = framesRendered();
  await sleep(1000);
  expect(framesRendered()).toBeLessThanOrEqual(during + 1);
  expect(getSubscriberStats(subscriberId).decryptFailures).toBeGreaterThan(0);
  expect(rec.of('subscriber', 'encryptionSecretMismatch')).toHaveLength(1);
  expect(rec.errors('subscriber')).toEqual(['EncryptionSecretMismatch']);

  subscriberView.update(subscriberSession(SECRET));
  await waitFor('encryptionSecretMatch', () => rec.of('subscriber', 'encryptionSecretMatch')[0]);
  const after = framesRendered();
  await waitFor('decoding to resume', () => framesRendered() >= after + 5);
  // The session itself did not reconnect for a secret change.
  expect(rec.of('subSession', 'sessionConnected')).toHaveLength(1);
  expect(rec.errors('subSession')).toEqual([]);
});

test('an invalid encryptionSecret prop is an OTSession error and leaves the secret as it was', async () => {
  subscriberView.update(subscriberSession('short'));
  const e = await waitFor('the session error', () => rec.of('subSession', 'error')[0]);
  expect(e.code).toBe('InvalidEncryptionSecret');
  expect(e.payload.codeValue).toBe(1570);
  const before = framesRendered();
  await waitFor('decoding to go on with the old secret', () => framesRendered() >= before + 5);
  expect(rec.of('subscriber', 'encryptionSecretMismatch')).toHaveLength(1);
  expect(rec.errors('subSession')).toEqual(['InvalidEncryptionSecret']);
});

test('no secret: OTSession, OTPublisher and OTSubscriber report EncryptionSecretMissing', async () => {
  const r = new Recorder();
  render(
    <OTSession
      apiKey={server.apiKey}
      sessionId={sessionId}
      token={token(sessionId)}
      options={{serverUrl: server.url}}
      eventHandlers={r.handlers('session')}>
      <OTPublisher properties={{videoSource: 'testPattern', audioSource: 'none'}} eventHandlers={r.handlers('publisher')} />
      <OTSubscriber eventHandlers={r.handlers('subscriber')} />
    </OTSession>,
  );
  await waitFor('the session error', () => r.errors('session').length > 0);
  await waitFor('the publisher error', () => r.errors('publisher').length > 0);
  await waitFor('the subscriber error', () => r.errors('subscriber').length > 0);
  await sleep(300);
  expect(r.of('session', 'sessionConnected')).toHaveLength(1);
  expect(r.errors('session')).toEqual(['EncryptionSecretMissing']);
  expect(r.errors('publisher')).toEqual(['EncryptionSecretMissing']);
  expect(r.errors('subscriber')).toEqual(['EncryptionSecretMissing']);
  expect(r.of('publisher', 'streamCreated')).toHaveLength(0);
  expect(r.of('subscriber', 'connected')).toHaveLength(0);
});

test('an invalid secret on connect: InvalidEncryptionSecret, then EncryptionSecretMissing', async () => {
  const r = new Recorder();
  render(
    <OTSession
      apiKey={server.apiKey}
      sessionId={sessionId}
      token={token(sessionId)}
      encryptionSecret="seven77"
      options={{serverUrl: server.url}}
      eventHandlers={r.handlers('session')}
    />,
  );
  await waitFor('two session errors', () => r.errors('session').length >= 2);
  await sleep(300);
  expect(r.errors('session')).toEqual(['InvalidEncryptionSecret', 'EncryptionSecretMissing']);
  expect(r.of('session', 'sessionConnected')).toHaveLength(1);
});

test('unmounting OTPublisher unpublishes: its streamDestroyed, the subscriber side sees the stream go', async () => {
  const streamId = rec.of('publisher', 'streamCreated')[0].payload.streamId;
  publisherView.update(publisherSession(false));
  const destroyed = await waitFor('the publisher streamDestroyed', () => rec.of('publisher', 'streamDestroyed')[0]);
  expect(destroyed.payload.streamId).toBe(streamId);
  await waitFor('the subscriber session streamDestroyed', () => rec.of('subSession', 'streamDestroyed')[0]);
  await waitFor('the subscriber view to go', () =>
    subscriberView.root.findAllByProps({testID: `umbra-subscriber-${streamId}`}).length === 0,
  );
  expect(rec.of('pubSession', 'sessionDisconnected')).toHaveLength(0);
});

test('an OTSession without options.serverUrl reports InvalidParameter and creates nothing', async () => {
  const r = new Recorder();
  render(<OTSession apiKey={server.apiKey} sessionId={sessionId} token="unused" eventHandlers={r.handlers('session')} />);
  await sleep(200);
  expect(r.errors('session')).toEqual(['InvalidParameter']);
  expect(r.of('session', 'sessionConnected')).toHaveLength(0);
});

test.each(['VP9', 'H264'] as const)('a %s publisher is decrypted and decoded', async codec => {
  const own = new Recorder();
  const id = await createE2eeSession();
  const session = (name: string, child: React.ReactElement) => (
    <OTSession
      apiKey={server.apiKey}
      sessionId={id}
      token={token(id)}
      encryptionSecret={SECRET}
      options={{serverUrl: server.url}}
      eventHandlers={own.handlers(`${name}Session`)}>
      {child}
    </OTSession>
  );
  const pub = render(
    session(
      'pub',
      <OTPublisher
        properties={{videoSource: 'testPattern', audioSource: 'none', resolution: {width: 320, height: 240}, frameRate: 15, videoCodec: codec}}
        eventHandlers={own.handlers('publisher')}
      />,
    ),
  );
  await waitFor(`the ${codec} stream`, () => own.of('publisher', 'streamCreated')[0]);
  const sub = render(session('sub', <OTSubscriber eventHandlers={own.handlers('subscriber')} />));
  const connected = await waitFor('the subscriber to connect', () => own.of('subscriber', 'connected')[0]);
  const stats = await waitFor(`10 decoded ${codec} pictures`, () => {
    const s = getSubscriberStats(connected.payload.subscriberId);
    return s.framesRendered >= 10 && s.lastTestPatternFrame > 0 && s;
  });
  expect([stats.lastFrameWidth, stats.lastFrameHeight, stats.decryptFailures]).toEqual([320, 240, 0]);
  expect([...own.errors('publisher'), ...own.errors('subscriber')]).toEqual([]);
  // afterAll unmounts both (and every other tree) at the end.
  expect([pub, sub].every(r => mounted.includes(r))).toBe(true);
});
