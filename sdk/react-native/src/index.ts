export {OTSession} from './OTSession';
export type {OTSessionProps, SessionEventHandlers} from './OTSession';
export {OTPublisher} from './OTPublisher';
export type {OTPublisherProps, PublisherEventHandlers, PublisherProperties} from './OTPublisher';
export {OTSubscriber} from './OTSubscriber';
export type {OTSubscriberProps, SubscriberEvent, SubscriberEventHandlers, SubscriberProperties} from './OTSubscriber';
export {UmbraVideoView} from './UmbraVideoView';
export type {
  NativeError,
  NativeEvent,
  NativeStream,
  NativeVideoLayer,
  PublisherSettings,
  Spec,
  SubscriberStats,
  VideoSize,
} from './NativeUmbra';
export type {UmbraError} from './native';

import {native} from './native';
import type {SubscriberStats} from './NativeUmbra';

/** Delivery statistics of a subscriber (its handle comes with every subscriber event). */
export function getSubscriberStats(subscriberId: string): SubscriberStats {
  return native().getSubscriberStats(subscriberId);
}

/** The native SDK's version. */
export function sdkVersion(): string {
  return native().sdkVersion();
}
