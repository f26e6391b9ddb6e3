import {createContext} from 'react';

import type {NativeStream} from './NativeUmbra';

/** What an OTSession gives the OTPublisher and OTSubscriber inside it. */
export type SessionState = {
  /** The native session's handle; null before it exists or after it failed. */
  handle: string | null;
  /** This client's connection id while connected. */
  connectionId: string | null;
  /** Other clients' streams, in the order they appeared. */
  streams: NativeStream[];
};

export const SessionContext = createContext<SessionState>({handle: null, connectionId: null, streams: []});
