// The native view that shows a publisher's or a subscriber's video. The device modules
// (not built here) register it under this name and attach the handle's renderer to it.
import {requireNativeComponent, type HostComponent, type ViewProps} from 'react-native';

export type UmbraVideoViewProps = ViewProps & {
  /** The subscriber handle whose pictures to show. */
  subscriberId?: string;
  /** The publisher handle whose preview to show. */
  publisherId?: string;
};

export const UmbraVideoView: HostComponent<UmbraVideoViewProps> =
  requireNativeComponent<UmbraVideoViewProps>('UmbraVideoView');
