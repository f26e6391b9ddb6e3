using System;

namespace Umbra
{
    public sealed partial class Session
    {
        /// <summary>
        /// Umbra's (the vendor's Windows SDK has none): the loudest stream of a routed session
        /// changed, ranked by the audio levels publishers send. Those levels travel in clear,
        /// outside end-to-end encryption (see <see cref="Publisher"/>'s audio-level option).
        /// Both ids are null when nobody speaks any more; this client's own stream may be named.
        /// Raised like the other events (through <see cref="EventContext"/>).
        /// </summary>
        public event EventHandler<ActiveSpeakerEventArgs> ActiveSpeakerChanged;

        internal void OnActiveSpeakerChanged(string streamId, string connectionId)
        {
            var args = new ActiveSpeakerEventArgs(streamId, connectionId);
            Raise(this, "Session.ActiveSpeakerChanged", () => { var h = ActiveSpeakerChanged; if (h != null) h(this, args); });
        }

        public sealed class ActiveSpeakerEventArgs : EventArgs
        {
            internal ActiveSpeakerEventArgs(string streamId, string connectionId)
            {
                StreamId = streamId;
                ConnectionId = connectionId;
            }

            /// <summary>The speaking stream's id; null when nobody speaks.</summary>
            public string StreamId { get; private set; }
            /// <summary>The connection that publishes it; null when nobody speaks.</summary>
            public string ConnectionId { get; private set; }
        }
    }
}
