// <OTSession>: one native session, connected for as long as the component is mounted with the
// same apiKey, sessionId, token and server. The encryptionSecret prop is applied before
// connecting and again whenever it changes.
import React, {useEffect, useMemo, useRef, useState, type ReactNode} from 'react';
import {View, type StyleProp, type ViewStyle} from 'react-native';

import type {NativeEvent, NativeStream} from './NativeUmbra';
import {native, routeEvents, toUmbraError, type UmbraError} from './native';
import {SessionContext} from './SessionContext';

export type SessionEventHandlers = {
  sessionConnected?: (event: {sessionId: string; connectionId: string}) => void;
  sessionDisconnected?: (event: {sessionId: string}) => void;
  /** Another client's stream appeared (this client's own streams are not reported here). */
  streamCreated?: (stream: NativeStream) => void;
  streamDestroyed?: (stream: NativeStream) => void;
  streamPropertyChanged?: (stream: NativeStream) => void;
  connectionCreated?: (event: {connectionId: string; data: string}) => void;
  connectionDestroyed?: (event: {connectionId: string; data: string}) => void;
  signal?: (event: {type: string; data: string; connectionId?: string}) => void;
  /**
   * The loudest stream of a routed session changed, from the audio levels publishers send (in
   * clear: see OTPublisher's `audioLevel`). Both ids are absent when nobody speaks any more;
   * this client's own stream may be named.
   */
  activeSpeakerChanged?: (event: {streamId?: string; connectionId?: string}) => void;
  /**
   * InvalidEncryptionSecret when the encryptionSecret prop is not 8 to 256 characters (the
   * previous secret, if any, stays); EncryptionSecretMissing after connecting to an end-to-end
   * encrypted session without a secret; AuthorizationFailure, ConnectionFailed, ...
   */
  error?: (error: UmbraError) => void;
};

export type OTSessionProps = {
  apiKey: string;
  sessionId: string;
  token: string;
  /** The secret shared by the participants, 8 to 256 characters. */
  encryptionSecret?: string;
  eventHandlers?: SessionEventHandlers;
  /** `serverUrl`: the `http://host:port` of your `umbra serve` (Umbra is self-hosted). */
  options?: {serverUrl?: string};
  style?: StyleProp<ViewStyle>;
  children?: ReactNode;
};

export function OTSession(props: OTSessionProps) {
  const {apiKey, sessionId, token, encryptionSecret, options, style, children} = props;
  const serverUrl = options?.serverUrl;
  const handlers = useRef(props.eventHandlers);
  handlers.current = props.eventHandlers;
  const [handle, setHandle] = useState<string | null>(null);
  const [connectionId, setConnectionId] = useState<string | null>(null);
  const [streams, setStreams] = useState<NativeStream[]>([]);
  // The secret last given to the native session (successfully or not), so that a change of the
  // prop is applied once and an invalid one is reported once.
  const triedSecret = useRef<string | undefined>(undefined);
  const secret = useRef(encryptionSecret);
  secret.current = encryptionSecret;

  const reportError = (e: unknown) => handlers.current?.error?.(toUmbraError(e));

  const applySecret = (h: string, value: string | undefined) => {
    if (value === undefined || value === triedSecret.current) {
      return;
    }
    triedSecret.current = value;
    try {
      native().setEncryptionSecret(h, value);
    } catch (e) {
      reportError(e);
    }
  };

  useEffect(() => {
    if (!serverUrl) {
      reportError({code: 'InvalidParameter', message: 'options.serverUrl is required: the http://host:port of umbra serve'});
      return;
    }
    let h: string;
    try {
      h = native().createSession(apiKey, sessionId, serverUrl);
    } catch (e) {
      reportError(e);
      return;
    }
    let own: string | null = null;
    const unroute = routeEvents(h, (event: NativeEvent) => {
      const on = handlers.current;
      switch (event.type) {
        case 'sessionConnected':
          own = event.connectionId ?? null;
          setConnectionId(own);
          on?.sessionConnected?.({sessionId, connectionId: own ?? ''});
          break;
        case 'sessionDisconnected':
          own = null;
          setConnectionId(null);
          setStreams([]);
          on?.sessionDisconnected?.({sessionId});
          break;
        case 'error':
          if (event.error) {
            on?.error?.(event.error);
          }
          break;
        case 'streamCreated': {
          const s = event.stream;
          if (s && s.connectionId !== own) {
            setStreams(prev => [...prev.filter(p => p.streamId !== s.streamId), s]);
            on?.streamCreated?.(s);
          }
          break;
        }
        case 'streamDestroyed': {
          const s = event.stream;
          if (s && s.connectionId !== own) {
            setStreams(prev => prev.filter(p => p.streamId !== s.streamId));
            on?.streamDestroyed?.(s);
          }
          break;
        }
        case 'streamPropertyChanged':
          if (event.stream) {
            on?.streamPropertyChanged?.(event.stream);
          }
          break;
        case 'connectionCreated':
        case 'connectionDestroyed':
          on?.[event.type]?.({connectionId: event.connectionId ?? '', data: event.connectionData ?? ''});
          break;
        case 'signal':
          on?.signal?.({type: event.signalType ?? '', data: event.data ?? '', connectionId: event.connectionId});
          break;
        case 'activeSpeakerChanged':
          on?.activeSpeakerChanged?.({streamId: event.streamId ?? undefined, connectionId: event.connectionId ?? undefined});
          break;
      }
    });
    triedSecret.current = undefined;
    applySecret(h, secret.current);
    try {
      native().connect(h, token);
    } catch (e) {
      reportError(e);
    }
    setHandle(h);
    return () => {
      unroute();
      setHandle(null);
      setConnectionId(null);
      setStreams([]);
      try {
        native().destroySession(h);
      } catch {
        // Already gone: nothing to release.
      }
    };
    // The secret is applied by the effect below; changing it must not reconnect.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [apiKey, sessionId, token, serverUrl]);

  useEffect(() => {
    if (handle) {
      applySecret(handle, encryptionSecret);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [handle, encryptionSecret]);

  const value = useMemo(() => ({handle, connectionId, streams}), [handle, connectionId, streams]);
  return (
    <SessionContext.Provider value={value}>
      <View style={style}>{children}</View>
    </SessionContext.Provider>
  );
}
