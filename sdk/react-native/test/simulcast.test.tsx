// Subscriber video properties and active speakers through the real router of a real
// `umbra serve`, end-to-end encrypted, with the native module backed by the real Rust core
// (the checks of crates/umbra-client/tests/simulcast.rs, through the components).
import React from 'react';
import TestRenderer, {type ReactTestRenderer} from 'react-test-renderer';

import {OTPublisher, OTSession, OTSubscriber, getSubscriberStats, type SubscriberProperties} from '../src';
import {createE2eeSession, server, sleep, token, waitFor} from './harness';

(globalThis as {IS_REACT_ACT_ENVIRONMENT?: boolean}).IS_REACT_ACT_ENVIRONMENT = false;

const SECRET = 'correct horse battery staple';

type Logged = {type: string; payload: any};
const log: Logged[] = [];
const record = (type: string) => (payload?: any) => log.push({type, payload});
const of = (type: string) => log.filter(l => l.type === type).map(l => l.payload);

const mounted: ReactTestRenderer[] = [];
afterAll(async () => {
  for (const r of mounted) {
    r.unmount();
  }
  await sleep(200);
});

let sessionId: string;
let subscriberToken: string;

function subscriberTree(properties: SubscriberProperties) {
  return (
    <OTSession
      apiKey={server.apiKey}
      sessionId={sessionId}
      token={subscriberToken}
      encryptionSecret={SECRET}
      options={{serverUrl: server.url}}
      eventHandlers={{activeSpeakerChanged: record('activeSpeakerChanged'), error: record('sessionError')}}>
      <OTSubscriber
        properties={properties}
        eventHandlers={{
          connected: record('connected'),
          error: record('subscriberError'),
          videoLayerChanged: record('videoLayerChanged'),
        }}
      />
    </OTSession>
  );
}

test('preferredResolution picks the simulcast layer, subscribeToVideo pauses it, the publisher is the active speaker', async () => {
  sessionId = await createE2eeSession();
  subscriberToken = token(sessionId);
  // The subscribing side first: it hears every active speaker change from the start.
  const sub = TestRenderer.create(subscriberTree({preferredResolution: {width: 320, height: 180}}));
  mounted.push(sub);
  mounted.push(
    TestRenderer.create(
      <OTSession
        apiKey={server.apiKey}
        sessionId={sessionId}
        token={token(sessionId)}
        encryptionSecret={SECRET}
        options={{serverUrl: server.url}}
        eventHandlers={{sessionConnected: record('pubConnected')}}>
        <OTPublisher
          properties={{videoSource: 'testPattern', audioSource: 'tone', resolution: {width: 640, height: 360}, frameRate: 30}}
          eventHandlers={{streamCreated: record('streamCreated'), error: record('publisherError')}}
        />
      </OTSession>,
    ),
  );
  const created = await waitFor('the publisher stream', () => of('streamCreated')[0]);
  const connected = await waitFor('the subscriber to connect', () => of('connected')[0]);
  const subscriberId: string = connected.subscriberId;
  const layer = (rid: string) => of('videoLayerChanged').some(e => e.layer.rid === rid && !e.layer.paused);
  const width = () => getSubscriberStats(subscriberId).lastFrameWidth;

  await waitFor('layer h and a 320-wide picture', () => layer('h') && width() === 320, 30000);
  expect(of('videoLayerChanged')[0].streamId).toBe(created.streamId);

  sub.update(subscriberTree({preferredResolution: {width: 160, height: 90}}));
  await waitFor('layer q and a 160-wide picture', () => layer('q') && width() === 160, 15000);
  const before = getSubscriberStats(subscriberId).framesRendered;
  for (let i = 0; i < 10; i++) {
    await sleep(200);
    expect([getSubscriberStats(subscriberId).lastFrameWidth, getSubscriberStats(subscriberId).lastFrameHeight]).toEqual([160, 90]);
  }
  expect(getSubscriberStats(subscriberId).framesRendered).toBeGreaterThanOrEqual(before + 20);

  sub.update(subscriberTree({preferredResolution: {width: 160, height: 90}, subscribeToVideo: false}));
  const last = () => of('videoLayerChanged').slice(-1)[0];
  await waitFor('a paused layer', () => last()?.layer.paused === true, 15000);
  await sleep(500);
  const paused = getSubscriberStats(subscriberId).framesRendered;
  await sleep(1500);
  expect(getSubscriberStats(subscriberId).framesRendered).toBeLessThanOrEqual(paused + 1);

  // The publisher sends a tone with audio levels (the default): it is named, with its connection.
  const pubConnection: string = (await waitFor('the publisher session', () => of('pubConnected')[0])).connectionId;
  await waitFor('activeSpeakerChanged naming the publisher', () =>
    of('activeSpeakerChanged').some(e => e.streamId === created.streamId && e.connectionId === pubConnection),
  );

  // A refused value is the subscriber's error event, with the binding's code.
  sub.update(subscriberTree({preferredResolution: {width: 160, height: 90}, subscribeToVideo: false, preferredFrameRate: 0}));
  const e = await waitFor('the subscriber error', () => of('subscriberError')[0]);
  expect([e.code, e.codeValue, e.subscriberId]).toEqual(['InvalidParameter', 1011, subscriberId]);
  expect(of('subscriberError')).toHaveLength(1);
  expect([...of('sessionError'), ...of('publisherError')]).toEqual([]);
});
