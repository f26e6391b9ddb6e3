// <OTPublisher>: publishes into the enclosing OTSession once it is connected, and unpublishes
// when unmounted.
import React, {useContext, useEffect, useRef, useState} from 'react';
import {View, type StyleProp, type ViewStyle} from 'react-native';

import type {NativeStream, PublisherSettings} from './NativeUmbra';
import {native, routeEvents, toUmbraError, type UmbraError} from './native';
import {SessionContext} from './SessionContext';
import {UmbraVideoView} from './UmbraVideoView';

export type PublisherProperties = {
  name?: string;
  publishAudio?: boolean;
  publishVideo?: boolean;
  /** "camera" (default; device modules), "testPattern" (the core's moving pattern) or "none". */
  videoSource?: 'camera' | 'testPattern' | 'none';
  /** "microphone" (default; device modules), "tone" or "none". */
  audioSource?: 'microphone' | 'tone' | 'none';
  resolution?: {width: number; height: number};
  frameRate?: number;
  toneHz?: number;
  videoBitrateKbps?: number;
  /** The codec the video is encoded with (OpenTok's preferred video codec): VP8 (default), VP9 or H264. */
  videoCodec?: 'VP8' | 'VP9' | 'H264';
  /** Up to three simulcast layers in routed sessions, so subscribers can ask for smaller ones (default true). */
  simulcast?: boolean;
  /**
   * Send the level of each audio frame for active-speaker detection (default true). Levels
   * travel in clear, outside end-to-end encryption: the router sees how loudly you speak.
   */
  audioLevel?: boolean;
};

export type PublisherEventHandlers = {
  streamCreated?: (event: {streamId: string; stream: NativeStream}) => void;
  streamDestroyed?: (event: {streamId: string; stream: NativeStream}) => void;
  /** EncryptionSecretMissing when the session has no secret, EncryptionInternalError, ... */
  error?: (error: UmbraError) => void;
  muteForced?: () => void;
};

export type OTPublisherProps = {
  properties?: PublisherProperties;
  eventHandlers?: PublisherEventHandlers;
  style?: StyleProp<ViewStyle>;
};

function settingsOf(p: PublisherProperties): PublisherSettings {
  return {
    name: p.name ?? '',
    videoSource: p.videoSource ?? 'camera',
    videoWidth: p.resolution?.width ?? 640,
    videoHeight: p.resolution?.height ?? 480,
    videoFps: p.frameRate ?? 30,
    audioSource: p.audioSource ?? 'microphone',
    toneHz: p.toneHz ?? 440,
    videoBitrateKbps: p.videoBitrateKbps ?? 600,
    publishAudio: p.publishAudio ?? true,
    publishVideo: p.publishVideo ?? true,
    videoCodec: (p.videoCodec ?? 'VP8').toLowerCase(),
    simulcast: p.simulcast ?? true,
    audioLevel: p.audioLevel ?? true,
  };
}

export function OTPublisher(props: OTPublisherProps) {
  const session = useContext(SessionContext);
  const handlers = useRef(props.eventHandlers);
  handlers.current = props.eventHandlers;
  const properties = useRef(props.properties ?? {});
  properties.current = props.properties ?? {};
  const [handle, setHandle] = useState<string | null>(null);
  const connected = session.connectionId !== null;

  useEffect(() => {
    if (!session.handle || !connected) {
      return;
    }
    const sessionHandle = session.handle;
    let h: string;
    try {
      h = native().createPublisher(settingsOf(properties.current));
    } catch (e) {
      handlers.current?.error?.(toUmbraError(e));
      return;
    }
    let published = false;
    let unmounted = false;
    const unroute = routeEvents(h, event => {
      const on = handlers.current;
      if ((event.type === 'streamCreated' || event.type === 'streamDestroyed') && event.stream) {
        published = event.type === 'streamCreated';
        on?.[event.type]?.({streamId: event.stream.streamId, stream: event.stream});
        if (unmounted && !published) {
          unroute();
        }
      } else if (event.type === 'error' && event.error) {
        on?.error?.(event.error);
      } else if (event.type === 'muteForced') {
        on?.muteForced?.();
      }
    });
    try {
      native().publish(sessionHandle, h);
    } catch {
      // Reported by the publisher's error event as well.
    }
    setHandle(h);
    return () => {
      setHandle(null);
      try {
        native().unpublish(sessionHandle, h);
      } catch {
        // Not published (it failed) or the session is gone.
      }
      // A published stream's streamDestroyed follows the unpublish, as OpenTok reports it:
      // keep the route until it arrives.
      unmounted = true;
      if (!published) {
        unroute();
      }
      try {
        native().destroyPublisher(h);
      } catch {
        // Already released.
      }
    };
  }, [session.handle, connected]);

  const publishAudio = props.properties?.publishAudio ?? true;
  const publishVideo = props.properties?.publishVideo ?? true;
  useEffect(() => {
    if (handle) {
      try {
        native().setPublishAudio(handle, publishAudio);
        native().setPublishVideo(handle, publishVideo);
      } catch (e) {
        handlers.current?.error?.(toUmbraError(e));
      }
    }
  }, [handle, publishAudio, publishVideo]);

  return (
    <View style={props.style}>
      {handle ? <UmbraVideoView publisherId={handle} style={{flex: 1}} /> : null}
    </View>
  );
}
