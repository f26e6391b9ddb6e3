// OpenTok.js-shaped Connection and Stream objects, built from the server's wire objects.

import type { ConnectionInfo, StreamInfo, VideoDimensions, VideoType } from "./signaling-types.js";

export interface Connection {
  readonly connectionId: string;
  readonly creationTime: number;
  readonly data: string;
}

export interface Stream {
  readonly streamId: string;
  readonly connection: Connection;
  readonly name: string;
  hasAudio: boolean;
  hasVideo: boolean;
  readonly videoType: VideoType;
  videoDimensions: VideoDimensions | null;
  readonly creationTime: number;
  /** Whether the stream's frames are end-to-end encrypted, and with which SFrame suite. */
  readonly e2ee: boolean;
  readonly cipherSuite: number | null;
}

export function toConnection(c: ConnectionInfo): Connection {
  return { connectionId: c.connection_id, creationTime: c.created_at, data: c.data ?? "" };
}

export function toStream(s: StreamInfo, connection: Connection): Stream {
  return {
    streamId: s.stream_id,
    connection,
    name: s.name,
    hasAudio: s.has_audio,
    hasVideo: s.has_video,
    videoType: s.video_type,
    videoDimensions: s.video_dimensions,
    creationTime: s.created_at,
    e2ee: s.e2ee,
    cipherSuite: s.cipher_suite,
  };
}
