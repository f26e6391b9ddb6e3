// The server's signaling protocol, version 1 (docs/signaling.md), as the client sees it.

export const SIGNALING_VERSION = 1;

export interface WireConnection {
  connection_id: string;
  data: string | null;
  created_at: number;
}

export interface WireStream {
  stream_id: string;
  connection_id: string;
  name: string;
  has_audio: boolean;
  has_video: boolean;
  video_type: "camera" | "screen" | "custom";
  video_dimensions: { width: number; height: number } | null;
  e2ee: boolean;
  cipher_suite: number | null;
  created_at: number;
  layout_class_list: string[];
}

export interface Welcome {
  type: "welcome";
  v: number;
  session_id: string;
  connection_id: string;
  resume_token: string;
  role: "publisher" | "subscriber" | "moderator" | "publisheronly";
  connection_data: string | null;
  media_mode: "routed" | "relayed";
  archive_mode: string;
  e2ee: boolean;
  cipher_suite: number | null;
  heartbeat_interval_ms: number;
  heartbeat_timeout_ms: number;
  resume_window_ms: number;
  connections: WireConnection[];
  streams: WireStream[];
}

/** A server event: anything with a `seq`. */
export interface ServerEvent {
  type: string;
  seq: number;
  [field: string]: unknown;
}

export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
}
