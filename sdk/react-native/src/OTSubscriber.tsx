// <OTSubscriber>: subscribes to every other client's stream in the enclosing OTSession (or to
// the one `streamId` names) and shows each in an UmbraVideoView.
import React, {useContext, useEffect, useRef, useState} from 'react';
import {View, type StyleProp, type ViewStyle} from 'react-native';

import type {NativeStream} from './NativeUmbra';
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
};

export type OTSubscriberProps = {
  eventHandlers?: SubscriberEventHandlers;
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
            <StreamSubscriber key={s.streamId} session={session.handle!} stream={s} handlers={handlers} />
          ))
        : null}
    </View>
  );
}

type StreamSubscriberProps = {
  session: string;
  stream: NativeStream;
  handlers: React.RefObject<SubscriberEventHandlers | undefined>;
};

function StreamSubscriber({session, stream, handlers}: StreamSubscriberProps) {
  const [handle, setHandle] = useState<string | null>(null);
  const streamId = stream.streamId;

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
      }
    });
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

  return (
    <View testID={`umbra-subscriber-${streamId}`} style={{flex: 1}}>
      {handle ? <UmbraVideoView subscriberId={handle} style={{flex: 1}} /> : null}
    </View>
  );
}
