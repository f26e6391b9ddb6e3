// <OTSubscriber>: subscribes to every other client's stream in the enclosing OTSession (or to
// the one `streamId` names) and shows each in an UmbraVideoView.
import React, {useContext, useEffect, useRef, useState} from 'react';
import {View, type StyleProp, type ViewStyle} from 'react-native';

import type {NativeStream, NativeVideoLayer} from './NativeUmbra';
import {native, routeEvents, toUmbraError, type UmbraError} from './native';
import {SessionContext} from './SessionContext';
import {UmbraVideoView} from './UmbraVideoView';

/** Every subscriber event names its stream and the subscriber's handle (for getSubscriberStats). */
export type SubscriberEvent = {streamId: string; subscriberId: string; stream: NativeStream};

export type SubscriberEventHandlers = {
  /** Media flows. */
  connected?: (event: SubscriberEvent) => void;
  disconnected?: (event: SubscriberEvent) => void;
  /**
   * EncryptionSecretMismatch once when the stream does not decrypt with this session's secret,
   * EncryptionSecretMissing when the session has none, DecryptionInternalError,
   * StreamNotEncrypted, ...
   */
  error?: (error: UmbraError & {streamId: string; subscriberId: string}) => void;
  /** The stream does not decrypt with this secret (after the error above). */
  encryptionSecretMismatch?: (event: SubscriberEvent) => void;
  /** It decrypts again. */
  encryptionSecretMatch?: (event: SubscriberEvent) => void;
  /** What the router now forwards of the video (routed sessions), after a property below or a bandwidth change. */
  videoLayerChanged?: (event: SubscriberEvent & {layer: NativeVideoLayer}) => void;
};

/** What each subscriber asks of its stream's video; changes apply to live subscriptions. */
export type SubscriberProperties = {
  /** The largest picture wanted; the router forwards the smallest simulcast layer at least this large. */
  preferredResolution?: {width: number; height: number};
  /** The most frames per second wanted (fractions round up). */
  preferredFrameRate?: number;
  /** false: no video at all (audio continues). Default true. */
  subscribeToVideo?: boolean;
};

export type OTSubscriberProps = {
  eventHandlers?: SubscriberEventHandlers;
  properties?: SubscriberProperties;
  /** Only this stream; every other client's stream when absent. */
  streamId?: string;
  style?: StyleProp<ViewStyle>;
};

export function OTSubscriber(props: OTSubscriberProps) {
  const session = useContext(SessionContext);
  const handlers = useRef(props.eventHandlers);
  handlers.current = props.eventHandlers;
  const streams = session.streams.filter(s => props.streamId === undefined || s.streamId === props.streamId);
  return (
    <View style={props.style}>
      {session.handle
        ? streams.map(s => (
            <StreamSubscriber
              key={s.streamId}
              session={session.handle!}
              stream={s}
              handlers={handlers}
              properties={props.properties}
            />
          ))
        : null}
    </View>
  );
}

type StreamSubscriberProps = {
  session: string;
  stream: NativeStream;
  handlers: React.RefObject<SubscriberEventHandlers | undefined>;
  properties?: SubscriberProperties;
};

/** Hands the properties to the native subscriber; a refused value is the subscriber's error event. */
function applyProperties(
  h: string,
  p: SubscriberProperties | undefined,
  report: (e: unknown) => void,
) {
  const calls = [
    () => native().setPreferredResolution(h, p?.preferredResolution ?? null),
    () => native().setPreferredFrameRate(h, p?.preferredFrameRate ?? null),
    () => native().setSubscribeToVideo(h, p?.subscribeToVideo ?? true),
  ];
  for (const call of calls) {
    try {
      call();
    } catch (e) {
      report(e);
    }
  }
}

function StreamSubscriber({session, stream, handlers, properties}: StreamSubscriberProps) {
  const [handle, setHandle] = useState<string | null>(null);
  const streamId = stream.streamId;
  const props = useRef(properties);
  props.current = properties;
  const report = (h: string) => (e: unknown) => handlers.current?.error?.({...toUmbraError(e), streamId, subscriberId: h});

  useEffect(() => {
    let h: string;
    try {
      h = native().createSubscriber(session, streamId);
    } catch (e) {
      handlers.current?.error?.({...toUmbraError(e), streamId, subscriberId: ''});
      return;
    }
    const unroute = routeEvents(h, event => {
      const on = handlers.current;
      const base = {streamId, subscriberId: h, stream: event.stream ?? stream};
      switch (event.type) {
        case 'connected':
        case 'disconnected':
        case 'encryptionSecretMismatch':
        case 'encryptionSecretMatch':
          on?.[event.type]?.(base);
          break;
        case 'error':
          if (event.error) {
            on?.error?.({...event.error, streamId, subscriberId: h});
          }
          break;
        case 'videoLayerChanged':
          if (event.videoLayer) {
            on?.videoLayerChanged?.({...base, layer: event.videoLayer});
          }
          break;
      }
    });
    // Before subscribing, so the router starts with the wanted layer.
    applyProperties(h, props.current, report(h));
    try {
      native().subscribe(session, h);
    } catch {
      // Reported by the subscriber's error event as well.
    }
    setHandle(h);
    return () => {
      unroute();
      try {
        native().unsubscribe(session, h);
      } catch {
        // Not subscribed (it failed) or the session is gone.
      }
      try {
        native().destroySubscriber(h);
      } catch {
        // Already released.
      }
    };
    // One subscription per mounted stream: the stream's later property changes do not resubscribe.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [session, streamId]);

  // Later changes, compared by value: a new object literal each render must not resend them.
  const res = properties?.preferredResolution;
  const key = [res?.width, res?.height, properties?.preferredFrameRate, properties?.subscribeToVideo].join();
  const applied = useRef<string | null>(null);
  useEffect(() => {
    if (!handle) {
      return;
    }
    if (applied.current !== null && applied.current !== key) {
      applyProperties(handle, props.current, report(handle));
    }
    applied.current = key;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [handle, key]);

  return (
    <View testID={`umbra-subscriber-${streamId}`} style={{flex: 1}}>
      {handle ? <UmbraVideoView subscriberId={handle} style={{flex: 1}} /> : null}
    </View>
  );
}
